"""A Channel over a stream socket (Unix or TCP), with length-prefixed multi-frame messages.

Wire format of one message: `<u32 nframes><u64 len>*nframes` then the frames back to back,
written with one `sendmsg` (scatter-gather, so frames are never joined) and read through
a small buffer (so a small message costs one `recv`). Frames of 64 KiB or more are read
straight into their own `bytearray`, never through the buffer.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Sequence

from ..errors import ChannelClosed
from ._wait import readable
from .base import Buffer, Channel, Frames

_COUNT = struct.Struct("<I")
_READ_SIZE = 1 << 16
_DIRECT = 1 << 16  # frames this large bypass the read buffer
_MAX_IOV = 1000  # below the kernel's IOV_MAX of 1024
_MAX_FRAMES = 1 << 16  # far above any real message; guards the allocation a header asks for
_JOIN_BELOW = 1 << 14  # messages this small are joined and sent with one plain send


def _nbytes(frame: Buffer) -> int:
    return frame.nbytes if isinstance(frame, memoryview) else len(frame)


_headers: dict[int, struct.Struct] = {}
_lengths: dict[int, struct.Struct] = {}


def _header(count: int) -> struct.Struct:
    """`<u32 count><u64 len>*count`, cached per count (most messages have 1 to 3 frames)."""
    found = _headers.get(count)
    if found is None:
        found = _headers[count] = struct.Struct(f"<I{count}Q")
    return found


def _length_table(count: int) -> struct.Struct:
    found = _lengths.get(count)
    if found is None:
        found = _lengths[count] = struct.Struct(f"<{count}Q")
    return found


class SocketChannel(Channel):
    """A `Channel` on a connected stream socket. Thread-safe for one sender and one receiver."""

    def __init__(self, sock: socket.socket):
        sock.setblocking(True)
        self._sock = sock
        self._buf = bytearray(_READ_SIZE)
        self._view = memoryview(self._buf)
        self._start = self._end = 0
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._closed = False

    # -- sending ---------------------------------------------------------------------------
    def send(self, frames: Sequence[Buffer]) -> None:
        lengths = [_nbytes(f) for f in frames]
        header = _header(len(lengths)).pack(len(lengths), *lengths)
        parts = [header, *frames]
        total = len(header) + sum(lengths)
        if self._closed:
            raise ChannelClosed("send on a closed channel")
        with self._send_lock:
            try:
                if total <= _JOIN_BELOW:
                    self._sock.sendall(b"".join(parts))  # one small copy beats a scatter list
                    return
                sent = self._sock.sendmsg(parts) if len(parts) <= _MAX_IOV else 0
                if sent < total:
                    self._send_rest(parts, sent)
            except (BrokenPipeError, ConnectionResetError, OSError) as exc:
                raise ChannelClosed(f"peer is gone ({exc})") from exc

    def _send_rest(self, parts: list[Buffer], skip: int) -> None:
        for part in parts:
            view = memoryview(part).cast("B")
            if skip >= view.nbytes:
                skip -= view.nbytes
                continue
            self._sock.sendall(view[skip:])
            skip = 0

    # -- receiving -------------------------------------------------------------------------
    # Received bytes live in self._buf[self._start:self._end]; the buffer is reused, so a
    # small message costs one recv_into and no allocation beyond its frames.
    def recv(self, timeout: float | None = None) -> Frames | None:
        with self._recv_lock:
            if timeout is not None and not self._readable(timeout):
                return None
            self._ensure(_COUNT.size)
            (count,) = _COUNT.unpack_from(self._buf, self._start)
            if count > _MAX_FRAMES:
                self.close()  # the stream cannot be trusted past a corrupt header
                raise ChannelClosed(f"corrupt message header ({count} frames); channel closed")
            self._ensure(_COUNT.size + 8 * count)
            lengths = _length_table(count).unpack_from(self._buf, self._start + _COUNT.size)
            self._start += _COUNT.size + 8 * count
            return [self._take(n) for n in lengths]

    def poll(self, timeout: float | None = 0.0) -> bool:
        return self._readable(timeout)

    def ready(self) -> bool:
        """True when a message (or its start) is already read into the buffer."""
        return self._start < self._end

    def _readable(self, timeout: float | None) -> bool:
        if self.ready():
            return True
        if self._closed:
            raise ChannelClosed("recv on a closed channel")
        return bool(readable([self._sock], timeout))

    def _ensure(self, size: int) -> None:
        if size > len(self._buf):
            self._grow(size)
        while self._end - self._start < size:
            self._fill()

    def _take(self, size: int) -> bytes | bytearray:
        available = self._end - self._start
        if size >= _DIRECT and size > available:
            return self._take_direct(size, available)
        if available < size:
            self._ensure(size)
        out = bytes(self._view[self._start:self._start + size])
        self._start += size
        return out

    def _take_direct(self, size: int, available: int) -> bytearray:
        out = bytearray(size)
        view = memoryview(out)
        view[:available] = self._view[self._start:self._end]
        self._start = self._end = 0
        got = available
        while got < size:
            got += self._recv_into(view[got:])
        return out

    def _fill(self) -> None:
        if self._start == self._end:
            self._start = self._end = 0
        elif self._end == len(self._buf):  # full at the back: move the partial message forward
            kept = self._end - self._start
            self._view[:kept] = self._view[self._start:self._end]
            self._start, self._end = 0, kept
        self._end += self._recv_into(self._view[self._end:])

    def _grow(self, size: int) -> None:
        kept = bytes(self._view[self._start:self._end])
        self._view.release()
        self._buf = bytearray(max(size, 2 * len(self._buf)))
        self._view = memoryview(self._buf)
        self._view[:len(kept)] = kept
        self._start, self._end = 0, len(kept)

    def _recv_into(self, view: memoryview) -> int:
        try:
            n = self._sock.recv_into(view)
        except (ConnectionResetError, OSError) as exc:
            raise ChannelClosed(f"peer is gone ({exc})") from exc
        if not n:
            raise ChannelClosed("peer closed the channel")
        return n

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        if not self._closed:
            self._closed = True
            # Not shutdown(): it acts on the socket, not this descriptor, and would also cut
            # the copy a child process holds (the parent closes its copy after start()).
            self._sock.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int:
        return self._sock.fileno()

    def __reduce__(self):
        raise TypeError("a channel end can only be passed to a process through Transport.start()")
