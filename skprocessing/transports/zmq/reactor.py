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

A send that finds its peer gone (EHOSTUNREACH: it exited or crashed) does not end the
session at once: what that peer sent before it went may still wait in our socket, so the
socket is read first (`_settle_unreachable`) and the channel closes behind those messages.
A reader of a channel thus sees everything the peer sent, then `ChannelClosed`.

One `zmq.Context` per process, made with the reactor; a forked child starts its own
(the parent's is forgotten, never used, in the child). Bad messages are dropped, counted
in `Port.stats` and logged (rate-limited) with the sender's address; the loop goes on.
"""

from __future__ import annotations

import atexit
import collections
import os
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable

import zmq

from .heartbeat import Link, Liveness
from .inbound import Inbound, log
from .ports import Port, configure, send_parts
from .security import Signer

__all__ = ["Reactor", "Port", "get_reactor", "current_reactor", "shutdown_reactor", "log"]


class Reactor(Inbound):
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
        self._unreachable: set[Link] = set()  # found gone while sending; see _try_send
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
        if self._unreachable:  # found while retrying a backlog or answering a HELLO
            self._settle_unreachable()

    def _run_commands(self) -> None:
        commands = self._commands
        while commands:
            link, item = commands.popleft()
            if link is None:
                fn, args = item
                fn(*args)
            else:
                self._send(link, item)
        if self._unreachable:
            self._settle_unreachable()

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
            send_parts(port.sock, [link.rid, *parts] if port.router else parts)
        except zmq.Again:
            return False
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            # ROUTER_MANDATORY: the peer's connection is gone; never drop silently. What
            # it sent before it went may still wait in our socket: that is delivered
            # first, at the end of this step (`_settle_unreachable`), then the session ends.
            if port.router and port.links.get(link.session) is link:
                self._unreachable.add(link)
            else:  # no session yet (the WELCOME failed): nothing of its can be waiting
                self._lose(link, _UNREACHABLE.format(link.address), tell_peer=False)
        link.handed += 1
        return True

    def _settle_unreachable(self) -> None:
        """End the sessions whose peers were found unreachable, after reading everything
        still queued in their sockets (so a peer that wrote and exited loses nothing)."""
        links, self._unreachable = self._unreachable, set()
        try:
            for port in {link.port for link in links}:
                # (Bounded only against a flood from other peers: the gone one's queue is
                # at most its high-water mark.)
                for _ in range(_SETTLE_ROUNDS):
                    if port.sock.closed or not port.sock.get(zmq.EVENTS) & zmq.POLLIN:
                        break
                    self._read(port)
        finally:
            for link in links:
                self._lose(link, _UNREACHABLE.format(link.address), tell_peer=False)

    def _retry_backlogs(self) -> None:
        for link in list(self._backlogged):
            while link.backlog and self._try_send(link, link.backlog[0]):
                link.backlog.popleft()
            if not link.backlog or link.port.sock.closed:
                link.backlog.clear()
                self._backlogged.discard(link)

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
        if port.links.pop(link.session if port.router else b"", None) is None:
            return
        if port.router:
            port.half_open.pop(link.session, None)
            port.ended[link.session] = link  # its keys, to tell a peer that missed our BYE
            while len(port.ended) > 1024:
                port.ended.popitem(last=False)
        if not port.router or (not port.keep_open and not port.links):
            self.close_port(port)

    def _tick(self, now: float) -> None:
        tick = 0.25
        late = now - self._next_tick
        if self._next_tick and late > _STALL:
            # This thread could not run (the process was stopped, or a C call held the
            # GIL): the peers' silence meanwhile is our own (see heartbeat.py).
            for port in self._ports.values():
                for link in port.links.values():
                    link.excuse(late)
        for port in list(self._ports.values()):
            tick = min(tick, port.liveness.tick)
            for ticket, deadline in list(port.deadlines.items()):
                if now > deadline:  # a child that never connected (died while starting)
                    del port.deadlines[ticket]
                    waiting = port.tickets.pop(ticket, None)
                    if waiting is not None:
                        waiting._peer_gone("the process given the other end of this pipe never "
                                           "connected (it died while starting, or is stuck)")
            for link in list(port.half_open.values()):
                if now - link.last_heard > port.liveness.dead_after:
                    self._expire(port, link, f"no answer to its WELCOME within "
                                             f"{port.liveness.dead_after}s")
            for link in list(port.links.values()):
                channel = link.channel
                if not link.alive or not link.confirmed or (channel is not None
                                                            and not channel.joined.is_set()):
                    continue
                # (While its socket discards an attacker's message, a peer's own messages
                # wait behind it: silence then is not the peer's; see Inbound._discard.)
                state = link.check(now, judge=not port.discarding)
                if state == "dead":
                    self._lose(link, link.death(now), True)
                elif state == "ping":
                    link.ping()
        self._next_tick = now + tick

    # -- sockets (reactor thread) ------------------------------------------------------------
    def open_port(self, kind: int, endpoint: str, signer: Signer, liveness: Liveness,
                  options: dict[str, Any]) -> Port:
        sock = self.context.socket(kind)
        try:
            configure(sock, kind, liveness, options)
            if kind == zmq.ROUTER:
                sock.bind(endpoint)
                endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            else:
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
        if not self._thread.is_alive():  # every socket is closed: term() waits out LINGER only
            self.context.term()


_UNREACHABLE = "peer {} is unreachable (connection gone)"
_STALL = 0.05  # seconds a tick may be late before the lateness is excused to every peer
_SETTLE_ROUNDS = 4096  # reads of up to 256 messages each


def _fill(future: Future, fn: Callable[..., Any], args: tuple) -> None:
    try:
        future.set_result(fn(*args))
    except BaseException as exc:
        future.set_exception(exc)


_reactor: Reactor | None = None
_lock = threading.Lock()


def get_reactor() -> Reactor:
    """This process's reactor (and ZeroMQ context), started on first use."""
    global _reactor
    with _lock:
        if _reactor is None or _reactor.pid != os.getpid():
            _reactor = Reactor()
        return _reactor


def current_reactor() -> Reactor | None:
    """This process's reactor if it is running, without starting one."""
    reactor = _reactor
    return reactor if reactor is not None and reactor.pid == os.getpid() else None


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


# At interpreter exit, which a launcher child runs too: after the atexit handlers
# registered later (the core's exit hooks, which may still hand messages to us).
atexit.register(shutdown_reactor)
os.register_at_fork(after_in_child=_forget_in_child)
