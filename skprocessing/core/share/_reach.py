"""Where clients on other hosts should connect, for a coordinator bound to every interface.

A listener bound to `tcp://0.0.0.0:5556` reports that address, which means nothing on
another host. Unless the user names the public address (`Share(..., advertise=...)`), the
Share advertises every IPv4 address of this host's interfaces (non-loopback first, then
127.0.0.1); a client tries them all at once and keeps the first that proves to be this
share (`_connection.open_connection`).

This belongs in the transport (a `Listener.reachable_addresses()`); it lives here until
the transport has it, and is the one place in core that asks the OS about interfaces.
"""

from __future__ import annotations

__all__ = ["advertised", "is_wildcard"]

_WILDCARDS = ("0.0.0.0", "*", "::", "")
_SIOCGIFADDR = 0x8915  # Linux ioctl: the IPv4 address of an interface


def is_wildcard(address: str) -> bool:
    """True for a `tcp://` address bound to every interface."""
    scheme, _, rest = address.partition("://")
    return scheme == "tcp" and rest.rpartition(":")[0].strip("[]") in _WILDCARDS


def advertised(address: str, advertise: str | tuple[str, ...] | list[str] | None = None
               ) -> tuple[str, ...]:
    """The addresses clients should try for a listener at `address` (in order)."""
    if advertise:
        return (advertise,) if isinstance(advertise, str) else tuple(advertise)
    if not is_wildcard(address):
        return (address,)
    port = address.rpartition(":")[2]
    found = [f"tcp://{ip}:{port}" for ip in _interface_addresses()]
    return (*found, f"tcp://127.0.0.1:{port}")


def _interface_addresses() -> list[str]:
    """Non-loopback IPv4 addresses of this host's interfaces (Linux; empty elsewhere)."""
    try:  # imported here: only a Share bound to every interface needs them
        import fcntl
        import socket
        import struct
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
