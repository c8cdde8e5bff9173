"""Channels of the ZeroMQ transport: what user code holds; the reactor does the I/O.

- `ZmqChannel`: one session; on a DEALER (from `connect`) or a virtual channel on a
  listener's ROUTER (from `accept`, or the first end of `pipe()`).
- `PipeEnd`: the second end of `pipe()`. It connects (a DEALER to this process's pipe
  hub, claiming a one-time ticket) on first use in whatever process uses it, so it can be
  passed to `Transport.start()` by address rather than by file descriptor.

Incoming messages wait in an `Inbox` (see `inbox.py`); `fileno()` gives an eventfd that
is readable exactly while a message or a close is waiting, for `select`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from ...errors import ChannelClosed, TransportError
from ..base import Buffer, Channel, Frames
from .bulk import BulkError, BulkFrames, resolve
from .inbox import Inbox
from .protocol import DATA

__all__ = ["ZmqChannel", "PipeEnd", "launching", "pickled_for_launch"]

_launch = threading.local()


def launching() -> bool:
    """True while `ZmqTransport.start()` pickles a child's arguments in this thread."""
    return getattr(_launch, "active", False)


class pickled_for_launch:
    """`with pickled_for_launch():` around pickling a child's arguments: pipe ends (and a
    transport's keys) may be pickled only then."""

    def __enter__(self) -> None:
        self.outer = launching()
        _launch.active = True

    def __exit__(self, *exc_info: Any) -> None:
        _launch.active = self.outer


class ZmqChannel(Channel):
    """One end of a signed, heartbeated session; see the package docstring.

    `send` may return before the bytes are on the wire (ZeroMQ sends from its own
    thread): do not modify a frame after sending it. It blocks while `hwm` messages are
    still queued for a slow peer, and raises `ChannelClosed` once the peer is gone.
    """

    def __init__(self, reactor: Any, hwm: int = 1000):
        self._reactor = reactor
        self._hwm = hwm
        self._inbox = Inbox()
        self._link: Any = None
        self._lock = threading.Lock()
        self._pending: list[list[Buffer]] = []  # sends before the peer joined (pipe hub side)
        self._closed = False
        self.joined = threading.Event()
        self.peer = ""

    # -- called by the reactor thread ----------------------------------------------------
    def _join(self, link: Any) -> None:
        with self._lock:
            for frames in self._pending:  # in order, before any send that follows
                link.submit(DATA, frames)
            self._pending.clear()
            link.channel = self
            self.peer = link.address
            self._link = link
            closed = self._closed
        self.joined.set()
        if closed:  # closed before the peer came: it still gets what was sent, then BYE
            self._reactor.end_link(link, "the peer closed the channel", True)

    def _deliver(self, frames: Frames) -> None:
        self._inbox.put(frames)

    def _peer_gone(self, why: str) -> None:
        self._inbox.close(why)

    # -- the Channel interface -----------------------------------------------------------
    def send(self, frames: Sequence[Buffer]) -> None:
        link = self._link
        if link is None:
            with self._lock:
                link = self._link
                if link is None:
                    self._check_open()
                    self._pending.append(list(frames))
                    return
        if link.outstanding >= self._hwm:
            self._wait_for_room(link)
        if self._closed:
            raise ChannelClosed("send on a closed channel")
        link.submit(DATA, frames)

    def _wait_for_room(self, link: Any) -> None:
        # The reactor refuses nothing; this is where a fast sender waits for a slow peer.
        delay = 0.0002
        while link.outstanding >= self._hwm and link.alive:
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    def _check_open(self) -> None:
        if self._closed:
            raise ChannelClosed("send on a closed channel")
        if self._inbox.why is not None:
            raise ChannelClosed(self._inbox.why)

    def recv(self, timeout: float | None = None) -> Frames | None:
        if self._closed:
            raise ChannelClosed("recv on a closed channel")
        frames = self._inbox.get(timeout)
        if type(frames) is BulkFrames:  # large frames from a same-host peer: read them here
            try:
                return resolve(frames)
            except (OSError, BulkError) as exc:  # a message is lost: the channel cannot go on
                self.close()
                raise ChannelClosed(f"a message could not be read: {exc}") from None
        return frames

    def poll(self, timeout: float | None = 0.0) -> bool:
        if self._closed:
            raise ChannelClosed("poll on a closed channel")
        return self._inbox.wait(timeout)

    def ready(self) -> bool:
        """True when `recv()` returns at once (used by `ZmqTransport.wait`)."""
        return self._inbox.ready()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            link = self._link
        self._inbox.close("the channel was closed here")
        if link is not None:
            self._reactor.post(self._reactor.end_link, link, "the peer closed the channel", True)
        # else: a pipe's first end whose peer has not come yet; `_join` finishes the close

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int:
        return self._inbox.fileno()

    def __del__(self) -> None:
        # A channel dropped without close(): end its session like a socket's close would.
        try:
            if not self._closed and self._link is not None:
                self._reactor.post(self._reactor.end_link, self._link, "the peer closed the channel", True)
        except Exception:
            pass

    def __reduce__(self):
        raise TypeError("a connected ZeroMQ channel cannot travel to another process; pass the "
                        "second end of pipe() to Transport.start(), or connect() in the child")

    def __repr__(self) -> str:
        state = "closed" if self._closed else (self._inbox.why and "peer gone") or "open"
        return f"<ZmqChannel {self.peer or 'unjoined'} {state}>"


class PipeEnd(Channel):
    """The travelling end of a ZeroMQ `pipe()`: connects on first use, in any process.

    It carries the hub address, a one-time ticket and the pipe's key; it can be pickled
    only by `ZmqTransport.start()` (the key must not leak into other serialized data).
    """

    def __init__(self, transport: Any, address: str, ticket: bytes):
        self._transport = transport
        self._address = address
        self._ticket = ticket
        self._channel: ZmqChannel | None = None
        self._lock = threading.Lock()
        self._exported = False
        self._closed = False

    def _open(self) -> ZmqChannel:
        channel = self._channel
        if channel is not None:
            return channel
        with self._lock:
            if self._closed:
                raise ChannelClosed("this pipe end is closed")
            if self._exported:
                raise TransportError("this pipe end was passed to another process; use it there")
            if self._channel is None:
                self._channel = self._transport._connect_pipe(self._address, self._ticket)
            return self._channel

    def send(self, frames: Sequence[Buffer]) -> None:
        self._open().send(frames)

    def recv(self, timeout: float | None = None) -> Frames | None:
        return self._open().recv(timeout)

    def poll(self, timeout: float | None = 0.0) -> bool:
        return self._open().poll(timeout)

    def ready(self) -> bool:
        return self._open().ready()

    @property
    def _inbox(self) -> Inbox:
        return self._open()._inbox

    def fileno(self) -> int:
        return self._open().fileno()

    def close(self) -> None:
        # Closing the parent's copy of an exported end is a no-op: the child owns it now.
        with self._lock:
            if self._closed:
                return
            self._closed = True
            channel = self._channel
        if channel is not None:
            channel.close()
        elif not self._exported:
            self._transport._abandon_ticket(self._ticket)

    @property
    def closed(self) -> bool:
        return self._closed

    def _export(self) -> tuple:
        with self._lock:
            if self._channel is not None or self._closed or self._exported:
                raise TypeError("only a fresh pipe end (not used, closed or passed on "
                                "before) can be passed to a new process")
            self._exported = True
        return self._transport._pipe_token(self._address, self._ticket)

    def __reduce__(self):
        if not launching():
            raise TypeError("a pipe end can only be passed to a process through Transport.start()")
        return self._transport.rebuild_pipe_end, self._export()  # (its class's, by reference)

    def __del__(self) -> None:
        try:
            if not self._closed and self._channel is None and not self._exported:
                self._transport._abandon_ticket(self._ticket)
        except Exception:
            pass
