"""`ZmqListener`: a bound ROUTER socket handing out one channel per connecting peer.

Addresses: `tcp://host:port` (a port of 0 or * picks a free one), `ipc:///path` (a fresh
one lives in a private 0700 directory removed at close), `inproc://name`.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from typing import Any

from ...errors import ChannelClosed, TransportError
from ..base import Channel, Listener
from .inbox import Inbox
from .ports import Port
from .reactor import current_reactor, get_reactor

__all__ = ["ZmqListener", "fixed_address", "fresh_address", "remove_dir", "remove_private_dirs"]

_names = itertools.count()


class ZmqListener(Listener):
    """A bound ROUTER; `accept()` returns one `ZmqChannel` per peer that completed the
    handshake. Closing it stops new peers; channels already accepted stay open (the
    socket closes with the last of them). `stats` counts dropped messages by reason."""

    def __init__(self, transport: Any, port: Port, cleanup: str | None):
        self.address = port.endpoint
        self._transport = transport
        self._port = port
        self._inbox = Inbox()
        self._cleanup = cleanup
        port.accept = self._inbox.put

    @property
    def stats(self) -> dict[str, int]:
        return dict(self._port.stats)

    def accept(self, timeout: float | None = None) -> Channel | None:
        try:
            return self._inbox.get(timeout)
        except ChannelClosed:
            raise TransportError(f"the listener at {self.address} is closed") from None

    def ready(self) -> bool:
        return self._inbox.ready()

    def close(self) -> None:
        self._close(wait=True)

    def _close(self, wait: bool) -> None:
        if self._inbox.why is not None:
            return
        self._inbox.close("closed")
        reactor = get_reactor()
        if wait:
            reactor.call(_stop_accepting, reactor, self._port)
        else:
            reactor.post(_stop_accepting, reactor, self._port)
        if self._cleanup:
            remove_dir(self._cleanup)

    def __del__(self) -> None:
        try:
            if current_reactor() is not None:  # not in a forked child, not after shutdown
                self._close(wait=False)
        except Exception:
            pass

    def fileno(self) -> int:
        return self._inbox.fileno()


def _stop_accepting(reactor: Any, port: Port) -> None:
    port.accept = None
    port.keep_open = False
    if not port.links:
        reactor.close_port(port)


def fixed_address(scheme: str, rest: str) -> str | None:
    """The address a URL names, or None when listen() should pick a fresh one."""
    if scheme == "tcp":
        host, _, port = rest.rpartition(":")
        return f"tcp://{rest}" if host and port not in ("", "0", "*") else None
    if scheme in ("ipc", "inproc") and rest:
        return f"{scheme}://{rest}"
    return None


def fresh_address(scheme: str, host: str | None = None) -> tuple[str, str | None]:
    """(address, private directory to remove later or None)."""
    if scheme == "tcp":
        return f"tcp://{host or '127.0.0.1'}:*", None
    if scheme == "inproc":
        return f"inproc://skprocessing-{os.getpid()}-{next(_names)}", None
    directory = tempfile.mkdtemp(prefix="skp-")  # mode 0700: only this user can connect
    _dirs[directory] = os.getpid()
    return f"ipc://{directory}/s", directory


_dirs: dict[str, int] = {}  # private ipc directories -> the pid that made them


def remove_dir(directory: str) -> None:
    _dirs.pop(directory, None)
    shutil.rmtree(directory, ignore_errors=True)


def remove_private_dirs() -> None:
    """Remove what this process made (at exit; `start()` children call it before _exit)."""
    for directory, pid in list(_dirs.items()):
        if pid == os.getpid():
            remove_dir(directory)


atexit.register(remove_private_dirs)
