"""A Channel over a stream socket (Unix or TCP), with length-prefixed multi-frame messages.

Wire format of one message: `<u32 nframes><u64 len>*nframes` then the frames back to back,
written with one `sendmsg` (scatter-gather, so frames are never joined) and read through
a small buffer (so a small message costs one `recv`). Frames of 64 KiB or more are read
straight into their own `bytearray`, never through the buffer.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from collections.abc import Sequence

from ..errors import ChannelClosed
from .base import Buffer, Channel, Frames

_COUNT = struct.Struct("<I")
_READ_SIZE = 1 << 16
_DIRECT = 1 << 16  # frames this large bypass the read buffer
_MAX_IOV = 1000  # below the kernel's IOV_MAX of 1024


def _nbytes(frame: Buffer) -> int:
    return frame.nbytes if isinstance(frame, memoryview) else len(frame)


class SocketChannel(Channel):
    """A `Channel` on a connected stream socket. Thread-safe for one sender and one receiver."""

    def __init__(self, sock: socket.socket):
        sock.setblocking(True)
        self._sock = sock
        self._buf = bytearray()
        self._pos = 0
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._closed = False

    # -- sending ---------------------------------------------------------------------------
    def send(self, frames: Sequence[Buffer]) -> None:
        lengths = [_nbytes(f) for f in frames]
        header = struct.pack(f"<I{len(lengths)}Q", len(lengths), *lengths)
        parts = [header, *frames]
        total = len(header) + sum(lengths)
        if self._closed:
            raise ChannelClosed("send on a closed channel")
        with self._send_lock:
            try:
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
    def recv(self, timeout: float | None = None) -> Frames | None:
        with self._recv_lock:
            if timeout is not None and not self._readable(timeout):
                return None
            (count,) = _COUNT.unpack(self._take(4))
            lengths = struct.unpack(f"<{count}Q", self._take(8 * count))
            return [self._take(n) for n in lengths]

    def poll(self, timeout: float | None = 0.0) -> bool:
        return self._readable(timeout)

    def buffered(self) -> bool:
        """True when a message (or its start) is already read into the buffer."""
        return self._pos < len(self._buf)

    def _readable(self, timeout: float | None) -> bool:
        if self.buffered():
            return True
        if self._closed:
            raise ChannelClosed("recv on a closed channel")
        ready, _, _ = select.select([self._sock], [], [], timeout)
        return bool(ready)

    def _take(self, size: int) -> bytes | bytearray:
        available = len(self._buf) - self._pos
        if size >= _DIRECT and size > available:
            return self._take_direct(size, available)
        while available < size:
            self._fill()
            available = len(self._buf) - self._pos
        out = bytes(self._buf[self._pos:self._pos + size])
        self._pos += size
        return out

    def _take_direct(self, size: int, available: int) -> bytearray:
        out = bytearray(size)
        view = memoryview(out)
        view[:available] = self._buf[self._pos:]
        self._buf.clear()
        self._pos = 0
        got = available
        while got < size:
            n = self._recv_into(view[got:])
            got += n
        return out

    def _fill(self) -> None:
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
        try:
            data = self._sock.recv(_READ_SIZE)
        except (ConnectionResetError, OSError) as exc:
            raise ChannelClosed(f"peer is gone ({exc})") from exc
        if not data:
            raise ChannelClosed("peer closed the channel")
        self._buf += data

    def _recv_into(self, view: memoryview) -> int:
        try:
            n = self._sock.recv_into(view)
        except (ConnectionResetError, OSError) as exc:
            raise ChannelClosed(f"peer is gone ({exc})") from exc
        if not n:
            raise ChannelClosed("peer closed the channel mid-message")
        return n

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sock.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int:
        return self._sock.fileno()

    def __reduce__(self):
        raise TypeError("a channel end can only be passed to a process through Transport.start()")
