"""The local transport: processes on this machine. The default; nothing to configure.

URL: `local://` (or no transport at all). Listener addresses look like `local://@name`
(a Linux abstract Unix socket) or `local:///path/to.sock` (a socket file).

- channels: Unix stream socket pairs (`SocketChannel`), passed to children as file descriptors
- shared integers (`shared_int`): one shared-memory cell each (`_cells.SharedCell`); a read is a memory load
- processes: forked by this process's launcher (`_launcher.py`), a clean single-threaded
  process, so a parent with threads or an open ZeroMQ context starts children safely
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import TransportError
from ._cells import SharedCell
from ._launcher import LaunchedProcess, PassedByFd, get_launcher
from ._sockets import SocketChannel
from ._wait import readable
from .base import Capability, Channel, Listener, SharedInt, Transport

__all__ = ["LocalTransport", "LocalChannel", "SharedCell", "LocalListener"]

_ABSTRACT = sys.platform.startswith("linux")
_names = itertools.count()


class LocalChannel(SocketChannel, PassedByFd):
    """A SocketChannel on a Unix socket that can travel to a child started by the launcher."""

    def _export_fd(self) -> tuple[int, None]:
        return self._sock.fileno(), None

    @classmethod
    def _import_fd(cls, fd: int, state: None) -> LocalChannel:
        return cls(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=fd))


class LocalListener(Listener):
    """Accepts `LocalChannel`s on a Unix socket address."""

    def __init__(self, address: str | None = None):
        self.address = address or _fresh_address()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(_socket_path(self.address))
        self._sock.listen(128)

    def accept(self, timeout: float | None = None) -> Channel | None:
        """The next channel from a process of this user, or None after `timeout`.

        Abstract Unix socket names are visible to every user (/proc/net/unix) and carry no
        permissions, so a connection from another user is closed unread: what arrives on a
        channel gets deserialized, and that must never be a stranger's bytes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not readable([self._sock], left):
                return None
            conn, _ = self._sock.accept()
            if _same_user(conn):
                return LocalChannel(conn)
            conn.close()
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        self._sock.close()
        path = _socket_path(self.address)
        if not path.startswith("\0"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def fileno(self) -> int:
        return self._sock.fileno()


_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


def _same_user(conn: socket.socket) -> bool:
    if not hasattr(socket, "SO_PEERCRED"):
        return True  # no way to ask on this platform; socket files are then 0700 below
    _, uid, _ = _CREDENTIALS.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                    _CREDENTIALS.size))
    return uid == os.geteuid()


def _fresh_address() -> str:
    name = f"skprocessing-{os.getpid()}-{next(_names)}-{os.urandom(4).hex()}"
    if _ABSTRACT:
        return f"local://@{name}"
    return f"local://{os.path.join(tempfile.gettempdir(), name + '.sock')}"


def _socket_path(address: str) -> str:
    if not address.startswith("local://"):
        raise TransportError(f"not a local address: {address!r} (expected local://@name or local:///path)")
    rest = address[len("local://"):]
    return "\0" + rest[1:] if rest.startswith("@") else rest


class LocalTransport(Transport):
    """Processes on this machine; see the module docstring."""

    name = "local"
    # A Unix socket send lands in the peer's buffer; a dead process's sockets close at once.
    capabilities = frozenset({Capability.IMMEDIATE_DELIVERY, Capability.DEATH_CLOSES_CHANNELS,
                              Capability.SAME_HOST_MEMORY, Capability.SELECTABLE_FDS})

    def __init__(self, url: str | None = None):
        self.url = url or "local://"

    def pipe(self, duplex: bool = True) -> tuple[Channel, Channel]:
        # Unix stream sockets are always duplex; a one-way pipe simply never sends back.
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return LocalChannel(a), LocalChannel(b)

    def shared_int(self) -> SharedInt:
        return SharedCell()

    def listen(self, address: str | None = None) -> Listener:
        """At `address`; a fresh private one for None or a bare `local://`."""
        return LocalListener(None if address in (None, "", "local://") else address)

    def connect(self, address: str, timeout: float | None = None) -> Channel:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(_socket_path(address))
        except OSError as exc:
            sock.close()
            raise TransportError(f"cannot connect to {address}: {exc}") from exc
        return LocalChannel(sock)

    def prepare(self) -> None:
        get_launcher()  # made now, while the caller may still be single-threaded

    def start(self, entry: Callable[..., Any], *args: Any) -> LaunchedProcess:
        return get_launcher().start(entry, args)

    def wait(self, channels: Sequence[Channel], timeout: float | None = None) -> list[Channel]:
        ready = [c for c in channels if c.ready()]  # already read: select() would not see it
        if ready:
            return ready
        return readable(channels, timeout)
