"""`Pipe`: a direct, fast channel between a process and one subprocess.

    anchor, point = Pipe.pair()          # one_way=True: the anchor sends, the point receives
    worker.pipe = point                  # the point travels (an Skprocess attribute, an argument)
    anchor.send(job); anchor.recv()      # in the worker: self.pipe.recv(); self.pipe.send(...)

The anchor stays where it was made: it is always locked and cannot be serialized. It
listens on a fresh transport address; the point carries only that address (channel ends
cannot be pickled) and connects back on first use in whichever process it lands in. A
point that has connected, or that was `lock()`ed, cannot be serialized any more. Objects
travel through the chosen serializer plugin (`Pipe.pair(serializer="pickle")`).
"""

from __future__ import annotations

import threading
from typing import Any

from .._deadline import Deadline
from .._seconds import seconds
from ..errors import PipeEndpointError
from ..serializers.codec import Codec
from ..transports import get_transport
from ..transports.base import Channel, Frames, Listener, Transport
from ._held import send_held
from .share._protocol import Wire

__all__ = ["Pipe", "PipeEndpointError"]

_DATA = 1  # codec kind of a message
_CONNECT_TIMEOUT = 10.0


class _End:
    """What both ends share: a codec, a direction, a channel once connected."""

    _role = "end"

    def __init__(self, codec: Codec | Wire, can_send: bool, can_recv: bool):
        self._codec = codec
        self._can_send = can_send
        self._can_recv = can_recv
        self._channel: Channel | None = None
        self._locked = False
        self._closed = False

    # -- messages ----------------------------------------------------------------------------
    def send(self, obj: Any) -> None:
        """Send `obj` (serialized with the pipe's serializer). Raises EOFError (ChannelClosed)
        once the other end is gone, PipeEndpointError on a receive-only end."""
        if not self._can_send:
            raise PipeEndpointError(f"this one-way pipe's {self._role} only receives")
        frames = self._codec.encode(_DATA, obj)
        send_held()  # behind this process's held Share writes (see core/_held.py)
        channel = self._channel
        if channel is None:
            self._send_unconnected(frames)
        else:
            channel.send(frames)

    def recv(self, timeout: float | None = None) -> Any:
        """The next object; blocks (at most `timeout` seconds, then TimeoutError).
        Raises EOFError (ChannelClosed) when the other end is gone."""
        if not self._can_recv:
            raise PipeEndpointError(f"this one-way pipe's {self._role} only sends")
        timeout = seconds("Pipe.recv(timeout)", timeout, zero=True)
        deadline = Deadline(timeout)
        channel = self._channel or self._connect(timeout)
        frames = channel.recv(deadline.remaining())  # the connect's wait counts against the same timeout
        if frames is None:
            raise TimeoutError(f"nothing arrived on the pipe within {timeout:g} s")
        return self._codec.decode(frames)[1]

    def poll(self, timeout: float | None = 0.0) -> bool:
        """True when `recv()` would not block."""
        timeout = seconds("Pipe.poll(timeout)", timeout, zero=True)
        deadline = Deadline(timeout)
        channel = self._channel or self._connect(timeout)
        return channel.poll(deadline.remaining())

    def close(self) -> None:
        """Close this end; the other end's `recv()` then raises EOFError."""
        self._closed = True
        if self._channel is not None:
            self._channel.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- locking -----------------------------------------------------------------------------
    def lock(self) -> None:
        """Keep this end in this process: serializing it now raises PipeEndpointError."""
        self._locked = True

    def unlock(self) -> None:
        """Allow this end to be serialized (passed to another process) again."""
        self._locked = False

    @property
    def locked(self) -> bool:
        return self._locked

    def __enter__(self) -> _End:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- connection, per role ----------------------------------------------------------------
    def _connect(self, timeout: float | None) -> Channel:
        raise NotImplementedError

    def _send_unconnected(self, frames: Frames) -> None:
        self._connect(_CONNECT_TIMEOUT).send(frames)

    def _check_open(self) -> None:
        if self._closed:
            raise PipeEndpointError(f"this pipe {self._role} is closed")


class Anchor(_End):
    """The end that stays: always locked. Accepts the point's connection when it comes;
    objects sent before that wait here and go first."""

    _role = "anchor"

    def __init__(self, listener: Listener, codec: Codec | Wire, can_send: bool, can_recv: bool):
        super().__init__(codec, can_send, can_recv)
        self._locked = True
        self._listener = listener
        self._pending: list[Frames] = []
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._accepter: threading.Thread | None = None

    def unlock(self) -> None:
        raise PipeEndpointError("a pipe anchor is always locked: it stays in the process that "
                                "made it (pass the point instead)")

    def _send_unconnected(self, frames: Frames) -> None:
        with self._lock:
            if self._channel is None:
                self._pending.append(frames)
                self._start_accepting()
                return
        self._channel.send(frames)

    def _connect(self, timeout: float | None) -> Channel:
        self._check_open()
        with self._lock:
            self._start_accepting()
        if not self._connected.wait(timeout):
            raise TimeoutError(f"the pipe's point did not connect within {timeout:g} s")
        if self._channel is None:
            raise PipeEndpointError("this pipe anchor was closed before its point connected")
        return self._channel

    def _start_accepting(self) -> None:
        # A thread, so sends made before the point connects are delivered even if this
        # process never calls recv().
        if self._accepter is None:
            self._accepter = threading.Thread(target=self._accept, name="pipe-accept", daemon=True)
            self._accepter.start()

    def _accept(self) -> None:
        channel = None
        try:
            while channel is None and not self._closed:
                channel = self._listener.accept(timeout=0.25)
        except Exception:
            channel = None  # the listener was closed with the anchor
        with self._lock:
            if channel is not None:
                for frames in self._pending:
                    channel.send(frames)
                self._pending.clear()
                self._channel = channel
            self._listener.close()  # one point per pipe
        self._connected.set()

    def close(self) -> None:
        super().close()
        with self._lock:
            if self._accepter is None:
                self._listener.close()

    def __reduce__(self):
        raise PipeEndpointError("a pipe anchor cannot be serialized: it is always locked and stays "
                                "in the process that made it (pass the point instead)")


class Point(_End):
    """The end that travels. It connects back to its anchor on first use."""

    _role = "point"

    def __init__(self, address: str, transport_spec: Any, codec: Codec | Wire, can_send: bool,
                 can_recv: bool):
        super().__init__(codec, can_send, can_recv)
        self._address = address
        self._transport_spec = transport_spec
        self._lock = threading.Lock()

    def _connect(self, timeout: float | None) -> Channel:
        self._check_open()
        with self._lock:
            if self._channel is None:
                transport = get_transport(self._transport_spec)
                self._channel = transport.connect(self._address, timeout=_CONNECT_TIMEOUT)
        return self._channel

    def __reduce__(self):
        if self._locked:
            raise PipeEndpointError("this pipe point is locked: it cannot be serialized or passed "
                                    "to another process (call unlock() first)")
        if self._channel is not None:
            raise PipeEndpointError("this pipe point is already connected in this process; it "
                                    "cannot move to another")
        return (Point, (self._address, self._transport_spec, self._codec_token(),
                        self._can_send, self._can_recv))

    def _codec_token(self) -> Any:
        return _CodecToken(self._codec.token(), isinstance(self._codec, Wire))


class _CodecToken:
    """Rebuilds the codec when unpickled (so a point carries a name, not a serializer)."""

    def __init__(self, token: Any, wire: bool):
        self.token = token
        self.wire = wire

    def __reduce__(self):
        return (_codec_from_token, (self.token, self.wire))


def _codec_from_token(token: Any, wire: bool) -> Codec | Wire:
    codec = Codec.from_token(token)
    return Wire(codec) if wire else codec


class Pipe:
    """`Pipe.pair(one_way=False, *, transport=None, serializer=None) -> (anchor, point)`."""

    Anchor = Anchor
    Point = Point

    @staticmethod
    def pair(one_way: bool = False, *, transport: str | Transport | None = None,
             serializer: Any = None) -> tuple[Anchor, Point]:
        """A connected pair. With `one_way`, the anchor only sends and the point only receives."""
        chosen = get_transport(transport)
        spec = transport if transport is None or isinstance(transport, str) else transport.spec()
        # With the default serializer, plain data (numbers, strings, lists, dicts of them)
        # travels by marshal, which is several times cheaper; a chosen serializer is used as is.
        codec = Wire(Codec(serializer)) if serializer is None else Codec(serializer)
        listener = chosen.listen()
        anchor = Anchor(listener, codec, True, not one_way)
        point = Point(listener.address, spec, codec, not one_way, True)
        return anchor, point
