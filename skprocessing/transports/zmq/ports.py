"""Sockets of the ZeroMQ transport: `Port` (one socket and its sessions) and its settings.

Every socket gets explicit limits, because ZeroMQ's defaults hurt a task system:
LINGER (how long a closing socket still delivers), send/receive high-water marks,
ROUTER_MANDATORY (a ROUTER otherwise drops messages silently at its HWM or for a peer it
does not know; with it the reactor gets EAGAIN or EHOSTUNREACH and acts), no
ROUTER_HANDOVER (a routing id a peer picks never takes another connection's: sessions
follow their signed messages instead, see protocol.py), and fast reconnects.
"""

from __future__ import annotations

import collections
import os
from typing import Any, Callable

import zmq

from .heartbeat import Link, Liveness
from .protocol import MAX_WIRE_FRAME
from .security import SessionGuard, Signer, apply_curve

__all__ = ["Port", "configure", "peer_address", "send_parts", "recv_parts", "discard_rest",
           "same_host_pid", "here"]


class Port:
    """One ZeroMQ socket: a ROUTER (a listener or the pipe hub) or a DEALER (a connection)."""

    def __init__(self, sock: zmq.Socket, endpoint: str, signer: Signer, liveness: Liveness):
        self.sock = sock
        self.endpoint = endpoint
        self.signer = signer
        self.liveness = liveness
        self.router = sock.type == zmq.ROUTER
        self.links: dict[bytes, Link] = {}  # by session id (a DEALER's one link under b"")
        self.half_open: dict[bytes, Link] = {}  # ROUTER: WELCOMEd, not yet answered (oldest first)
        self.accept: Callable[[Any], None] | None = None  # a listener's accept queue
        self.tickets: dict[bytes, Any] = {}  # pipe hub: ticket -> waiting channel
        self.guard = SessionGuard()
        self.stats: collections.Counter[str] = collections.Counter()
        self.ended: collections.OrderedDict[bytes, Any] = collections.OrderedDict()
        self.keep_open = True  # a ROUTER closes when this is False and no link is left
        self.hwm = 1000
        self.deadlines: dict[bytes, float] = {}  # pipe hub: ticket -> claim-by time
        self.discarding = 0.0  # when it began discarding an oversized message's rest (0: not)
        self._logged = (0.0, 0)


def here() -> dict[str, Any]:
    """What a HELLO or WELCOME says of its sender, under the signature: its pid, and
    where that pid means something (this kernel's boot, pid and network namespaces)."""
    global _here
    if _here is None:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                place = f.read().strip() + os.readlink("/proc/self/ns/pid") + os.readlink("/proc/self/ns/net")
        except OSError:
            place = ""
        _here = place
    return {"p": os.getpid(), "h": _here} if _here else {}


_here: str | None = None


def same_host_pid(port: Port, frame: zmq.Frame, extra: dict) -> int | None:
    """The pid of the process that sent `frame` when it runs on this host, in this
    network namespace (so no link between us can be cut): the kernel's word for an
    ipc:// peer, inproc:// is this process, else the signed claim of its handshake if it
    names the same place (`here`). None across hosts."""
    if port.endpoint.startswith("inproc://"):
        return os.getpid()
    mine = here()
    if not port.endpoint.startswith("ipc://"):
        pid = extra.get("p")
        return pid if mine and extra.get("h") == mine["h"] and type(pid) is int and pid > 0 else None
    try:
        parts = str(frame.get("Peer-Address")).split(":")
        pid = int(parts[3]) if len(parts) == 4 and parts[0] == "localhost" else 0
    except (zmq.ZMQError, TypeError, AttributeError, ValueError):
        return None
    return pid or None


def peer_address(frame: zmq.Frame, rid: bytes) -> str:
    """Who sent `frame`, for logs: an IP address, or for ipc:// the peer's pid and uid."""
    try:
        host = frame.get("Peer-Address")
    except (zmq.ZMQError, TypeError, AttributeError):
        host = "local"
    parts = str(host).split(":")
    if len(parts) == 4 and parts[0] == "localhost":  # ipc: libzmq gives uid:gid:pid
        host = f"local pid {parts[3]} (uid {parts[1]})"
    return f"{host} (id {rid[:4].hex()})" if rid else str(host)


def configure(sock: zmq.Socket, kind: int, liveness: Liveness, options: dict[str, Any]) -> None:
    # Explicit limits (lessons: ROUTER drops silently at its HWM and for unknown peers).
    sock.setsockopt(zmq.LINGER, int(options.get("linger", 1.0) * 1000))
    sock.setsockopt(zmq.SNDHWM, options.get("hwm", 1000))
    sock.setsockopt(zmq.RCVHWM, options.get("hwm", 1000))
    # A peer announcing a larger frame is disconnected before libzmq buffers it (larger
    # payload frames travel in pieces: protocol.split_frames).
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_WIRE_FRAME)
    # No ZMTP heartbeats (HEARTBEAT_IVL/TIMEOUT): libzmq stops reading a connection whose
    # receive queue is full, PINGs included, so a slow but live receiver had its connection
    # dropped, and the messages queued on it were lost. Liveness is the protocol's own
    # PING/dead_after, judged from every message, which backpressure does not fool.
    if kind == zmq.ROUTER:
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 0)  # a claimed routing id takes nothing over
    else:
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    if options.get("curve_key") is not None:
        apply_curve(sock, options["curve_key"], server=kind == zmq.ROUTER)


# pyzmq's convenience layer builds IntFlag enums for every part (`SNDMORE | flags`) and
# asks RCVMORE by getsockopt; on the hot path the backend methods with plain ints and
# `Frame.more` cost a third as much. Fall back to the public API if the backend moves.
_backend = getattr(getattr(zmq, "backend", None), "Socket", None)
_raw_send = getattr(_backend, "send", None)
_raw_recv = getattr(_backend, "recv", None)
_MORE_NOBLOCK = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
_NOBLOCK = int(zmq.NOBLOCK)


def send_parts(sock: zmq.Socket, parts: list[Any]) -> None:
    """Send a multipart message without blocking (zmq.Again if the queue is full)."""
    if _raw_send is None:
        sock.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
        return
    # The first part decides: ZeroMQ takes the rest of a multipart message once it has
    # taken the first, so zmq.Again can only come from here.
    last = len(parts) - 1
    for i, part in enumerate(parts):
        _raw_send(sock, part, _MORE_NOBLOCK if i < last else _NOBLOCK, False, False)


def recv_parts(sock: zmq.Socket, limit: Callable[[list[zmq.Frame]], int]) -> tuple[list[zmq.Frame], bool]:
    """Receive one multipart message as Frames (zmq.Again if none is waiting), but no more
    than `limit(its first two frames)` frames: (frames, True) when there were more, which
    are left for `discard_rest`."""
    recv = _raw_recv or (lambda sock, flags, copy, track: sock.recv(flags, copy=False))
    frame = recv(sock, _NOBLOCK, False, False)
    parts = [frame]
    if frame.more:
        frame = recv(sock, 0, False, False)  # the rest is already here
        parts.append(frame)
    most = limit(parts)
    while frame.more:
        if len(parts) >= most:
            return parts, True
        frame = recv(sock, 0, False, False)  # the rest is already here
        parts.append(frame)
    return parts, False


def discard_rest(sock: zmq.Socket, budget: int) -> bool:
    """Read and drop up to `budget` frames of a message `recv_parts` cut short; True once
    its last frame is gone."""
    if not sock.get(zmq.RCVMORE):
        return True
    recv = _raw_recv or (lambda sock, flags, copy, track: sock.recv(flags, copy=False))
    for _ in range(budget):
        if not recv(sock, 0, False, False).more:
            return True
    return False
