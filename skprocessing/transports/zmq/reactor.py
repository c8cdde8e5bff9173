"""The reactor: one thread per process that owns every ZeroMQ socket of this transport.

ZeroMQ sockets are not thread-safe, and heartbeats must flow while user threads are busy,
so one background thread does all socket I/O:

    user threads ── Link.submit() ─► commands deque ─┐ (+ eventfd wake-up)
                                                     ▼
                  ┌──────────── reactor thread: poll(ROUTERs, DEALERs, wake fd) ────────────┐
                  │ send queued messages (NOBLOCK; a full queue goes to the link's backlog) │
                  │ read messages: verify signature ─► check sequence ─► Inbox of a channel │
                  │ every tick: PING idle links, end silent ones (ChannelClosed)            │
                  └──────────────────────────────────────────────────────────────────────────┘

One `zmq.Context` per process, made with the reactor; a forked child starts its own
(the parent's is forgotten, never used, in the child). Bad messages are dropped, counted
in `Port.stats` and logged (rate-limited) with the sender's address; the loop goes on.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable

import zmq

from .heartbeat import Link, Liveness
from .protocol import (BYE, DATA, HELLO, KIND_NAMES, NO_SESSION, PING, SESSION_BYTES, WELCOME,
                       Malformed, pack_envelope, unpack_envelope)
from .security import SessionGuard, Signer, apply_curve

__all__ = ["Reactor", "Port", "get_reactor", "log"]

log = logging.getLogger("skprocessing.transports.zmq")
_BATCH = 256  # messages read from one socket before looking at the others
_SMALL = 1 << 16  # frames below this are copied to bytes; larger ones stay zero-copy


class Port:
    """One ZeroMQ socket: a ROUTER (a listener or the pipe hub) or a DEALER (a connection)."""

    def __init__(self, sock: zmq.Socket, endpoint: str, signer: Signer, liveness: Liveness):
        self.sock = sock
        self.endpoint = endpoint
        self.signer = signer
        self.liveness = liveness
        self.router = sock.type == zmq.ROUTER
        self.links: dict[bytes, Link] = {}  # by routing id (a DEALER's one link under b"")
        self.accept: Callable[[Any], None] | None = None  # a listener's accept queue
        self.tickets: dict[bytes, Any] = {}  # pipe hub: ticket -> waiting channel
        self.guard = SessionGuard()
        self.stats: collections.Counter[str] = collections.Counter()
        self.ended: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self.keep_open = True  # a ROUTER closes when this is False and no link is left
        self.hwm = 1000
        self.deadlines: dict[bytes, float] = {}  # pipe hub: ticket -> claim-by time
        self._logged = (0.0, 0)


class Reactor:
    """See the module docstring. Public calls are thread-safe; `call` runs a function in
    the reactor thread and returns its result."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.context = zmq.Context()
        self._commands: collections.deque[tuple[Any, Any]] = collections.deque()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._asleep = False
        self._poller = zmq.Poller()
        self._poller.register(self._wake, zmq.POLLIN)
        self._ports: dict[zmq.Socket, Port] = {}
        self._next_tick = 0.0
        self._backlogged: set[Link] = set()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="skprocessing-zmq-reactor", daemon=True)
        self._thread.start()

    # -- posting work (any thread) ---------------------------------------------------------
    def post_send(self, link: Link, parts: list[Any]) -> None:
        self._commands.append((link, parts))
        if self._asleep:
            os.eventfd_write(self._wake, 1)

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        self._commands.append((None, (fn, args)))
        if self._asleep:
            os.eventfd_write(self._wake, 1)

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30.0) -> Any:
        if threading.current_thread() is self._thread:
            return fn(*args)
        future: Future = Future()
        self.post(_fill, future, fn, args)
        return future.result(timeout)

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop:
            try:
                self._step()
            except Exception:  # the loop must survive anything a message can cause
                log.exception("zmq reactor: unexpected error (continuing)")

    def _step(self) -> None:
        self._run_commands()
        backlog = bool(self._backlogged)
        wait = 0.001 if backlog else max(0.0, self._next_tick - time.monotonic())
        self._asleep = True
        if self._commands or self._stop:
            self._asleep = False
            return
        events = self._poller.poll(wait * 1000)
        self._asleep = False
        for sock, _ in events:
            if sock == self._wake:
                try:
                    os.eventfd_read(self._wake)
                except BlockingIOError:
                    pass
            elif sock in self._ports:
                self._read(self._ports[sock])
        now = time.monotonic()
        if backlog:
            self._retry_backlogs()
        if now >= self._next_tick:
            self._tick(now)

    def _run_commands(self) -> None:
        commands = self._commands
        while commands:
            link, item = commands.popleft()
            if link is None:
                fn, args = item
                fn(*args)
            else:
                self._send(link, item)

    # -- sending -----------------------------------------------------------------------------
    def _send(self, link: Link, parts: list[Any]) -> None:
        if link.backlog:
            link.backlog.append(parts)
        elif not self._try_send(link, parts):
            link.backlog.append(parts)
            self._backlogged.add(link)

    def _try_send(self, link: Link, parts: list[Any]) -> bool:
        port = link.port
        if port.sock.closed:
            link.handed += 1
            return True
        try:
            port.sock.send_multipart([link.rid, *parts] if port.router else parts,
                                     flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            # ROUTER_MANDATORY: the peer's connection is gone; never drop silently.
            self._lose(link, f"peer {link.address} is unreachable (connection gone)", tell_peer=False)
        link.handed += 1
        return True

    def _retry_backlogs(self) -> None:
        for link in list(self._backlogged):
            while link.backlog and self._try_send(link, link.backlog[0]):
                link.backlog.popleft()
            if not link.backlog or link.port.sock.closed:
                link.backlog.clear()
                self._backlogged.discard(link)

    # -- receiving ---------------------------------------------------------------------------
    def _read(self, port: Port) -> None:
        for _ in range(_BATCH):
            try:
                msg = port.sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if port.router:
                self._on_router_message(port, msg)
            else:
                self._on_dealer_message(port, msg)
            if port.sock.closed:
                return

    def _on_router_message(self, port: Port, msg: list[zmq.Frame]) -> None:
        rid = msg[0].bytes
        if len(msg) < 3:
            return self._drop(port, msg, "malformed (too few frames)")
        link = port.links.get(rid)
        if link is None and len(rid) != SESSION_BYTES:
            return self._drop(port, msg, "unknown sender (no handshake)")
        prefix = link.prefix if link is not None else rid + NO_SESSION
        late = link is None and rid in port.ended  # e.g. a PING that crossed our BYE
        parsed = self._verify(port, msg, msg[1], msg[2], msg[3:], prefix, late)
        if parsed is None:
            return
        kind, seq, extra = parsed
        if link is None:
            if kind != HELLO:
                return self._drop(port, msg, f"{KIND_NAMES[kind]} before any handshake")
            return self._on_hello(port, msg, rid, seq, extra)
        self._on_link_message(link, msg, kind, seq, extra)

    def _on_dealer_message(self, port: Port, msg: list[zmq.Frame]) -> None:
        link = port.links.get(b"")
        if link is None or len(msg) < 2:
            return self._drop(port, msg, "malformed or unexpected")
        parsed = self._verify(port, msg, msg[0], msg[1], msg[2:], link.prefix)
        if parsed is None:
            return
        kind, seq, extra = parsed
        channel = link.channel
        if kind == WELCOME and link.rx_seq == 0 and channel is not None and not channel.joined.is_set():
            session = (extra or {}).get("s")
            if not isinstance(session, bytes) or len(session) != SESSION_BYTES:
                return self._drop(port, msg, "malformed WELCOME")
            link.prefix = link.session + session
            link.last_heard = time.monotonic()
            channel._join(link)
            return
        self._on_link_message(link, msg, kind, seq, extra)

    def _verify(self, port: Port, msg: list, signature: zmq.Frame, envelope: zmq.Frame,
                payload: list, prefix: bytes, late: bool = False) -> tuple[int, int, dict | None] | None:
        # The signature is checked before anything reads the envelope or the payload.
        buffers = [f.buffer for f in payload]
        if not port.signer.verify(signature.buffer, prefix, envelope.buffer, buffers):
            if late:
                port.stats["late message of an ended session"] += 1
                return None
            return self._drop(port, msg, "bad signature (unsigned, tampered, or a wrong key)")
        try:
            return unpack_envelope(envelope.buffer, buffers)
        except Malformed as exc:
            return self._drop(port, msg, f"malformed ({exc})")

    def _on_hello(self, port: Port, msg: list, rid: bytes, seq: int, extra: dict | None) -> None:
        extra = extra or {}
        ticket = extra.get("ticket")
        refusal = port.guard.admit(rid, float(extra.get("t", 0.0)))
        if refusal is None and seq != 0:
            refusal = "HELLO out of sequence"
        if refusal is None and ticket is not None and ticket not in port.tickets:
            refusal = "unknown or used pipe ticket"
        if refusal is None and ticket is None and port.accept is None:
            refusal = "this socket accepts no new connections"
        if refusal is not None:
            return self._drop(port, msg, refusal)
        link = Link(self, port, rid, rid, _address(msg[1], rid), port.signer, port.liveness)
        router_session = os.urandom(SESSION_BYTES)
        welcome = pack_envelope(WELCOME, 0, (), {"s": router_session})
        link.handed = -1  # the WELCOME is not numbered; it does not count as outstanding
        self._send(link, [port.signer.sign(link.prefix, welcome, ()), welcome])
        link.prefix = rid + router_session
        port.links[rid] = link
        if ticket is not None:
            port.deadlines.pop(ticket, None)
            port.tickets.pop(ticket)._join(link)
        else:
            from .channel import ZmqChannel
            channel = ZmqChannel(self, port.hwm)
            channel._join(link)
            port.accept(channel)  # type: ignore[misc]
        log.debug("session from %s on %s", link.address, port.endpoint)

    def _on_link_message(self, link: Link, msg: list, kind: int, seq: int, extra: dict | None) -> None:
        if seq <= link.rx_seq:
            return self._drop(link.port, msg, f"replayed {KIND_NAMES[kind]} (sequence {seq} "
                                              f"after {link.rx_seq})")
        if seq != link.rx_seq + 1:
            return self._lose(link, f"messages from {link.address} were lost (sequence jumped "
                                    f"from {link.rx_seq} to {seq}, a reconnect dropped them)", True)
        link.rx_seq = seq
        link.last_heard = time.monotonic()
        if kind == DATA:
            channel = link.channel
            if channel is not None:  # else dropped by the user; its __del__ ends the session
                channel._deliver([f.bytes if len(f) < _SMALL else f.buffer for f in msg[_head(link):]])
        elif kind == BYE:
            self._lose(link, str((extra or {}).get("why", "the peer closed the channel")), False)
        elif kind != PING:
            self._drop(link.port, msg, f"unexpected {KIND_NAMES[kind]} in a session")

    # -- ending ------------------------------------------------------------------------------
    def _drop(self, port: Port, msg: list, reason: str) -> None:
        rid = msg[0].bytes if port.router else b""
        port.stats["dropped"] += 1
        port.stats[reason.split(" (")[0]] += 1
        now = time.monotonic()
        since, count = port._logged
        if now - since > 1.0:
            since, count = now, 0
        if count < 20:  # at most 20 lines a second per socket, whatever an attacker sends
            log.warning("dropped a message from %s on %s: %s (%d dropped so far)",
                        _address(msg[1] if port.router and len(msg) > 1 else msg[0], rid),
                        port.endpoint, reason, port.stats["dropped"])
        port._logged = (since, count + 1)
        return None

    def _lose(self, link: Link, why: str, tell_peer: bool) -> None:
        if link.end(why, tell_peer):
            channel = link.channel
            if channel is not None:
                channel._peer_gone(why)
            self.post(self.remove_link, link)

    def end_link(self, link: Link, why: str, tell_peer: bool) -> None:
        """End a session from this side (the channel was closed here)."""
        if link.end(why, tell_peer):
            self.post(self.remove_link, link)

    def remove_link(self, link: Link) -> None:
        port = link.port
        if port.links.pop(link.rid or b"", None) is None:
            return
        if link.rid:
            port.ended[link.rid] = None
            while len(port.ended) > 1024:
                port.ended.popitem(last=False)
        if not port.router or (not port.keep_open and not port.links):
            self.close_port(port)

    def _tick(self, now: float) -> None:
        tick = 0.25
        for port in list(self._ports.values()):
            tick = min(tick, port.liveness.tick)
            for ticket, deadline in list(port.deadlines.items()):
                if now > deadline:  # a child that never connected (died while starting)
                    del port.deadlines[ticket]
                    waiting = port.tickets.pop(ticket, None)
                    if waiting is not None:
                        waiting._peer_gone("the process given the other end of this pipe never "
                                           "connected (it died while starting, or is stuck)")
            for link in list(port.links.values()):
                channel = link.channel
                if not link.alive or (channel is not None and not channel.joined.is_set()):
                    continue
                state = link.check(now)
                if state == "dead":
                    self._lose(link, f"no message from {link.address} for {now - link.last_heard:.1f}s "
                                     f"(dead_after={link.liveness.dead_after}s): host down, network cut "
                                     f"or process killed", True)
                elif state == "ping":
                    link.ping()
        self._next_tick = now + tick

    # -- sockets (reactor thread) ------------------------------------------------------------
    def open_port(self, kind: int, endpoint: str, signer: Signer, liveness: Liveness,
                  options: dict[str, Any]) -> Port:
        sock = self.context.socket(kind)
        try:
            _configure(sock, kind, liveness, options)
            if kind == zmq.ROUTER:
                sock.bind(endpoint)
                endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            else:
                sock.setsockopt(zmq.ROUTING_ID, options["session"])
                sock.connect(endpoint)
        except Exception:
            sock.close(linger=0)
            raise
        port = Port(sock, endpoint, signer, liveness)
        port.hwm = options.get("hwm", 1000)
        self._ports[sock] = port
        self._poller.register(sock, zmq.POLLIN)
        return port

    def close_port(self, port: Port) -> None:
        if port.sock in self._ports:
            del self._ports[port.sock]
            self._poller.unregister(port.sock)
        for link in list(port.links.values()):
            channel = link.channel
            if link.end("the socket was closed", tell_peer=False) and channel is not None:
                channel._peer_gone("the socket was closed")
        for waiting in port.tickets.values():
            waiting._peer_gone("the pipe was closed before its other end connected")
        port.tickets.clear()
        if not port.sock.closed:
            self._run_commands()  # queued BYEs go out before the socket closes
            port.sock.close()  # LINGER set at creation lets queued messages drain

    def shutdown(self, timeout: float = 2.0) -> None:
        """End every session (BYE to each peer), close the sockets, stop the thread."""
        def stop() -> None:
            for port in list(self._ports.values()):
                for link in list(port.links.values()):
                    link.end("the peer process exited", tell_peer=True)
                self._run_commands()
                self.close_port(port)
            self._stop = True
        try:
            self.call(stop, timeout=timeout)
        except Exception:
            pass
        self._thread.join(timeout)
        self.context.term() if not self._thread.is_alive() else None


def _head(link: Link) -> int:
    return 3 if link.port.router else 2


def _fill(future: Future, fn: Callable[..., Any], args: tuple) -> None:
    try:
        future.set_result(fn(*args))
    except BaseException as exc:
        future.set_exception(exc)


def _address(frame: zmq.Frame, rid: bytes) -> str:
    try:
        host = frame.get("Peer-Address")
    except (zmq.ZMQError, TypeError, AttributeError):
        host = "local"
    return f"{host} (id {rid[:4].hex()})" if rid else str(host)


def _configure(sock: zmq.Socket, kind: int, liveness: Liveness, options: dict[str, Any]) -> None:
    # Explicit limits (lessons: ROUTER drops silently at its HWM and for unknown peers).
    sock.setsockopt(zmq.LINGER, int(options.get("linger", 1.0) * 1000))
    sock.setsockopt(zmq.SNDHWM, options.get("hwm", 1000))
    sock.setsockopt(zmq.RCVHWM, options.get("hwm", 1000))
    # ZeroMQ's own heartbeats close a dead TCP connection so a DEALER reconnects at once.
    sock.setsockopt(zmq.HEARTBEAT_IVL, int(liveness.heartbeat * 1000))
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(liveness.dead_after * 1000))
    if kind == zmq.ROUTER:
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting peer takes its id back
    else:
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    if options.get("curve_key") is not None:
        apply_curve(sock, options["curve_key"], server=kind == zmq.ROUTER)


_reactor: Reactor | None = None
_lock = threading.Lock()


def get_reactor() -> Reactor:
    """This process's reactor (and ZeroMQ context), started on first use."""
    global _reactor
    with _lock:
        if _reactor is None or _reactor.pid != os.getpid():
            _reactor = Reactor()
        return _reactor


def shutdown_reactor(timeout: float = 2.0) -> None:
    """Flush and close everything (at exit, and when a child started by `start` returns)."""
    global _reactor
    with _lock:
        reactor, _reactor = _reactor, None
    if reactor is not None and reactor.pid == os.getpid():
        reactor.shutdown(timeout)


def _forget_in_child() -> None:
    # Never touch the parent's context or sockets in a forked child.
    global _reactor, _lock
    _reactor = None
    _lock = threading.Lock()


atexit.register(shutdown_reactor)
os.register_at_fork(after_in_child=_forget_in_child)
