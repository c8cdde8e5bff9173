"""`ZmqListener`: a bound ROUTER socket handing out one channel per connecting peer.

Addresses: `tcp://host:port` (a port of 0 or * picks a free one), `ipc:///path` (a fresh
one lives in a private 0700 directory removed at close), `inproc://name`.

`reachable_addresses()`: a listener bound to every interface (`tcp://0.0.0.0:5556`)
reports that address, which means nothing on another host, so it lists every IPv4
address of this host's interfaces instead (non-loopback first, then 127.0.0.1); a client
may try them all at once (a Share does, keeping the first that proves to be it).
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
from typing import Any

from ...errors import ChannelClosed, TransportError
from ..base import Channel, Listener
from .inbox import Inbox
from .ports import Port
from .private_dirs import private_dir, remove_dir, remove_private_dirs
from .reactor import current_reactor, get_reactor

__all__ = ["ZmqListener", "fixed_address", "fresh_address", "remove_dir", "remove_private_dirs",
           "is_wildcard", "interface_addresses"]

_names = itertools.count()
_WILDCARDS = ("0.0.0.0", "*", "::", "")
_SIOCGIFADDR = 0x8915  # Linux ioctl: the IPv4 address of an interface


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

    def reachable_addresses(self) -> tuple[str, ...]:
        """Where peers may connect, best first (see the module docstring)."""
        if not is_wildcard(self.address):
            return (self.address,)
        port = self.address.rpartition(":")[2]
        found = [f"tcp://{ip}:{port}" for ip in interface_addresses()]
        return (*found, f"tcp://127.0.0.1:{port}")

    def close(self) -> None:
        self._close(wait=True)

    def _close(self, wait: bool) -> None:
        if self._inbox.why is not None:
            return
        self._inbox.close("closed")
        reactor = get_reactor()
        if wait:
            reactor.call(_stop_accepting, reactor, self._port, self._inbox)
        else:
            reactor.post(_stop_accepting, reactor, self._port, self._inbox)
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


def _stop_accepting(reactor: Any, port: Port, inbox: Inbox) -> None:
    port.accept = None
    port.keep_open = False
    # Sessions that completed their handshake but were never accepted: nobody will take
    # them, and each would keep the socket (and its port) open while its peer lives.
    while True:
        try:
            channel = inbox.get(0)
        except ChannelClosed:
            break
        if channel is None:
            break
        channel.close()  # BYE to the peer; the socket closes with the last session
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
    directory = private_dir("ipc")  # mode 0700: only this user can connect
    return f"ipc://{directory}/s", directory


def is_wildcard(address: str) -> bool:
    """True for a `tcp://` address bound to every interface."""
    scheme, _, rest = address.partition("://")
    return scheme == "tcp" and rest.rpartition(":")[0].strip("[]") in _WILDCARDS


def interface_addresses() -> list[str]:
    """Non-loopback IPv4 addresses of this host's interfaces (Linux; empty elsewhere)."""
    try:  # fcntl is Unix only
        import fcntl
    except ImportError:
        return []
    found: list[str] = []
    try:
        names = [name for _, name in socket.if_nameindex()]
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError:
        return found
    with probe:
        for name in names:
            try:
                answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR,
                                     struct.pack("256s", name[:15].encode()))
            except OSError:  # no IPv4 address on this interface
                continue
            ip = socket.inet_ntoa(answer[20:24])
            if not ip.startswith("127.") and ip not in found:
                found.append(ip)
    return found
