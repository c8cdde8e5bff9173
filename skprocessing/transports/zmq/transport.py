"""`ZmqTransport`: the transport interface over ZeroMQ (pyzmq), for one host or many.

URLs (registered schemes `tcp`, `ipc`, `inproc`, `zmq`):

    tcp://127.0.0.1:5555      listen()/connect() there; without a port (or :0, :*) listen()
                              picks a free port on that host
    tcp://0.0.0.0:5555        every interface: needs a key (see `security.py`)
    ipc:///path/to/socket     a Unix socket file; `ipc://` alone: a fresh private path
    inproc://name             inside this process only (tests, threads)
    zmq://                    the backend with default (ipc) addresses

Options, as URL query parameters or keyword arguments (keywords win):
    key / key_file     the shared signing key (else `SKPROCESSING_KEY`); required beyond
                       loopback. Without one, messages are signed with a random key of this
                       process, which only processes started by `start()` inherit.
    curve=1            CurveZMQ encryption as well (needs a key)
    heartbeat=1.0      seconds of idle before a PING
    dead_after=4.0     seconds of silence before a peer is declared dead (`ChannelClosed`)
    connect_timeout=30 seconds `connect()` waits for the handshake when given no timeout
    linger=1.0         seconds a closing socket keeps trying to deliver what is queued
    hwm=1000           messages queued per peer before `send()` waits (and ZeroMQ's HWMs)

What crosses hosts and what does not: channels from `listen`/`connect` work between
hosts. `pipe()`, `flag()`, `counter()` and `start()` are for processes on this machine:
`start()` uses the local launcher; a pipe's second end travels to the child by address
(an `ipc://` hub in a private directory, signed with this transport's key) and connects
there on first use; flags and counters are shared-memory cells like the local transport's.

Channels follow `base.Channel`, plus: `send()` may return before the bytes are on the
wire (do not modify a sent frame); frames of 64 KiB or more arrive as zero-copy
`memoryview`s, smaller ones as `bytes`; a peer is "gone" after a BYE, a lost sequence
number, an unreachable route, or `dead_after` seconds of silence.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

import zmq

from ..._deadline import Deadline
from ...errors import TransportError, TransportRefused
from .._launcher import LaunchedProcess, get_launcher
from ..base import Capability, Channel, Listener, SharedInt, Transport
from .._cells import SharedCell
from .channel import PipeEnd, ZmqChannel, launching, pickled_for_launch
from .inbox import Inbox, wait_any
from .heartbeat import Link, Liveness
from .protocol import HELLO, new_session, pack_envelope
from .listener import ZmqListener, fixed_address, fresh_address, remove_dir
from .ports import Port, here
from .reactor import get_reactor
from .security import Signer, check_reach, inherit_key, load_key, process_key

__all__ = ["ZmqTransport", "ZmqListener"]

_FLOATS = ("heartbeat", "dead_after", "connect_timeout", "linger")


class ZmqTransport(Transport):
    """The ZeroMQ backend; see the module docstring for URLs and options."""

    name = "zmq"
    # Sends go out on the reactor thread (asynchronously); a host's death shows only as
    # heartbeat silence.
    capabilities = frozenset({Capability.CROSS_HOST, Capability.SAME_HOST_MEMORY,
                              Capability.SELECTABLE_FDS})

    def __init__(self, url: str = "zmq://", *, key: bytes | str | None = None,
                 key_file: str | None = None, curve: bool | None = None,
                 heartbeat: float | None = None, dead_after: float | None = None,
                 connect_timeout: float | None = None, linger: float | None = None,
                 hwm: int | None = None, _pipe_key: bytes | None = None):
        base, _, query = url.partition("?")
        opts: dict[str, Any] = dict(parse_qsl(query))
        given = dict(key_file=key_file, curve=curve, heartbeat=heartbeat, dead_after=dead_after,
                     connect_timeout=connect_timeout, linger=linger, hwm=hwm)
        opts.update({k: v for k, v in given.items() if v is not None})
        unknown = set(opts) - {"key_file", "curve", *_FLOATS, "hwm"}
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)} in {url!r}")
        self.url = url
        self.scheme, _, rest = base.partition("://")
        self.address = fixed_address(self.scheme, rest)
        self._host = (rest.rpartition(":")[0] if ":" in rest else rest) if self.scheme == "tcp" else None
        self._key_from_arg = bool(key)
        self._key = load_key(key, opts.get("key_file"))
        self.curve = str(opts.get("curve", "0")).lower() in ("1", "true", "yes", "on")
        self.liveness = Liveness(float(opts.get("heartbeat", 1.0)), float(opts.get("dead_after", 4.0)))
        self.dead_after = self.liveness.dead_after
        self.connect_timeout = float(opts.get("connect_timeout", 30.0))
        self._options = {"linger": float(opts.get("linger", 1.0)), "hwm": int(opts.get("hwm", 1000))}
        self._opts = opts
        # Unkeyed (loopback-only) traffic is signed too, with this process's random key.
        self._signing_key = self._key or process_key()
        self._signer = Signer(self._signing_key)
        self._pipe_key = _pipe_key or self._signing_key
        self._pipe_signer = Signer(self._pipe_key)
        self._hub: Port | None = None
        self._hub_dir: str | None = None
        self._hub_pid = 0
        self._lock = threading.Lock()

    def _check_curve(self) -> None:
        # Checked on use, not when built, so `get_transport(url).with_key(key)` works.
        if self.curve and self._key is None:
            raise TransportError("curve=1 needs a key (the server key pair is derived from it)")

    def with_key(self, key: bytes | str) -> ZmqTransport:
        """The same transport (URL and options) signing with `key` (for `Pool(key=...)`)."""
        options = {k: v for k, v in self._opts.items() if k != "key_file"}  # all but the old key
        return ZmqTransport(self.url, key=key, **options)

    def copy(self) -> ZmqTransport:
        """The same URL, options and key, with pipes of its own: closing one of the two
        leaves the other working (a Share served on a pool's transport outlives the pool)."""
        options = {k: v for k, v in self._opts.items() if k != "key_file"}  # the key is given
        twin = ZmqTransport(self.url, key=self._key, _pipe_key=self._pipe_key, **options)
        twin._key_from_arg = self._key_from_arg
        return twin

    # -- listen / connect --------------------------------------------------------------------
    def listen(self, address: str | None = None) -> ZmqListener:
        cleanup = None
        if address is None:
            address = self.address
        if address is None:
            address, cleanup = fresh_address(self.scheme, self._host)
        else:
            scheme, _, rest = address.partition("://")
            if fixed_address(scheme, rest) is None:  # "ipc://", "tcp://host:*": a fresh one
                address, cleanup = fresh_address(scheme, rest.rpartition(":")[0] or self._host)
        self._check_curve()
        check_reach(address, self._key, "bind")
        reactor = get_reactor()
        deadline = Deadline(1.0)
        while True:
            try:
                port = reactor.call(reactor.open_port, zmq.ROUTER, address, self._signer,
                                    self.liveness, self._socket_options(self._key))
                return ZmqListener(self, port, cleanup)
            except zmq.ZMQError as exc:
                # ZeroMQ releases a closed socket's port a moment later (in its I/O
                # thread), so re-binding just after a close may need a few tries.
                if exc.errno != zmq.EADDRINUSE or deadline.expired():
                    raise TransportError(f"cannot listen at {address}: {exc}") from exc
                time.sleep(0.02)

    def address_beside(self, address: str) -> str:
        """A fresh port on the interface `address` is bound to, or a fresh ipc path."""
        scheme, _, rest = str(address).partition("://")
        return f"tcp://{rest.rpartition(':')[0]}:*" if scheme == "tcp" else f"{scheme}://"

    def connect(self, address: str, timeout: float | None = None) -> ZmqChannel:
        if fixed_address(*str(address).partition("://")[::2]) is None:
            raise TransportRefused(f"{address} names no address to connect to (expected "
                                   f"tcp://host:port or ipc:///path)")
        self._check_curve()
        check_reach(address, self._key, "connect")
        return self._dial(address, self._signer, None, timeout, self._key)

    def _dial(self, address: str, signer: Signer, ticket: bytes | None, timeout: float | None,
              curve_key: bytes | None) -> ZmqChannel:
        reactor = get_reactor()
        session = new_session()
        channel = ZmqChannel(reactor, self._options["hwm"])
        options = self._socket_options(curve_key)

        def open_and_greet() -> Port:
            port = reactor.open_port(zmq.DEALER, address, signer, self.liveness, options)
            link = Link(reactor, port, None, session, address, signer, self.liveness)
            link.channel = channel
            port.links[b""] = link
            hello = pack_envelope(HELLO, 0, (), {"t": time.time(), "ticket": ticket, **here()})
            port.sock.send_multipart([session + signer.sign(link.prefix, hello, ()), hello],
                                     flags=zmq.NOBLOCK)
            return port
        try:
            port = reactor.call(open_and_greet)
        except zmq.ZMQError as exc:
            raise TransportError(f"cannot connect to {address}: {exc}") from exc
        wait = self.connect_timeout if timeout is None else timeout
        if not channel.joined.wait(wait):
            reactor.call(reactor.close_port, port)
            raise TransportError(
                f"no handshake from {address} within {wait:.1f}s: is a listener running there, "
                f"reachable from here, and using the same key (and curve setting)?")
        return channel

    def _socket_options(self, key: bytes | None) -> dict[str, Any]:
        return dict(self._options, curve_key=key if self.curve else None)

    # -- pipes -------------------------------------------------------------------------------
    def pipe(self, duplex: bool = True) -> tuple[Channel, Channel]:
        """(hub end, travelling end); pass the second to `start()`. Duplex either way."""
        hub = self._ensure_hub()
        reactor = get_reactor()
        ticket = os.urandom(16)
        first = ZmqChannel(reactor, self._options["hwm"])
        reactor.call(hub.tickets.__setitem__, ticket, first)
        return first, PipeEnd(self, hub.endpoint, ticket)

    def _ensure_hub(self) -> Port:
        with self._lock:
            if self._hub is None or self._hub.sock.closed or self._hub_pid != os.getpid():
                address, self._hub_dir = fresh_address("ipc")
                reactor = get_reactor()
                # The hub stays on ipc: pipes join processes on this host only.
                self._hub = reactor.call(reactor.open_port, zmq.ROUTER, address, self._pipe_signer,
                                         self.liveness, dict(self._options, curve_key=None))
                self._hub_pid = os.getpid()
            return self._hub

    def _connect_pipe(self, address: str, ticket: bytes) -> ZmqChannel:
        # The hub is on this host and answers in milliseconds; no need for the long default.
        return self._dial(address, self._pipe_signer, ticket, min(self.connect_timeout, 10.0), None)

    def _abandon_ticket(self, ticket: bytes) -> None:
        hub = self._hub
        if hub is not None and self._hub_pid == os.getpid():
            def drop() -> None:
                waiting = hub.tickets.pop(ticket, None)
                if waiting is not None:
                    waiting._peer_gone("the other end of the pipe was closed before it connected")
            get_reactor().post(drop)

    def _pipe_token(self, address: str, ticket: bytes) -> tuple:
        hub = self._hub
        if hub is not None:
            deadline = time.monotonic() + self.connect_timeout
            get_reactor().post(hub.deadlines.__setitem__, ticket, deadline)
        return (address, ticket, self._pipe_key, self._public_options())

    def _public_options(self) -> dict[str, Any]:
        return {k: v for k, v in self._opts.items() if k not in ("key_file", "curve")}

    # -- local primitives --------------------------------------------------------------------
    def shared_int(self) -> SharedInt:
        """A shared-memory cell: for processes on this host (started by `start`)."""
        return SharedCell()

    def start(self, entry: Callable[..., Any], *args: Any) -> LaunchedProcess:
        """Run `entry(*args)` in a new process on this host (through the local launcher).
        Pipe ends in `args` connect back by address; the child inherits this transport's
        key (so `get_transport(url).connect(...)` there just works), and flushes its
        ZeroMQ sockets before it exits, so what it sent last is delivered."""
        with pickled_for_launch():
            # The keys come first in the pickle, so they are set before `args` (which may
            # hold transports and pipe ends) are rebuilt in the child.
            return get_launcher().start(_child_main, (_Keys(self._key, self._signing_key), entry, args))

    def wait(self, channels: Sequence[Any], timeout: float | None = None) -> list[Any]:
        """Channels (or listeners) among `channels` with something to read or a close.

        Ours are waited on without a syscall per message (see `inbox.py`); a list that
        mixes in other transports' channels falls back to `select` on `fileno()`."""
        ready = [c for c in channels if _ready(c)]
        if ready or timeout == 0:
            return ready
        inboxes = [c._inbox if isinstance(c, _OURS) else None for c in channels]
        if all(isinstance(box, Inbox) for box in inboxes):
            wait_any(inboxes, timeout)  # type: ignore[arg-type]
            return [c for c in channels if _ready(c)]
        readable, _, _ = select.select(channels, [], [], timeout)
        return [c for c in channels if c in readable or _ready(c)]

    def close(self) -> None:
        with self._lock:
            hub, self._hub = self._hub, None
        if hub is not None and self._hub_pid == os.getpid():
            try:
                get_reactor().call(get_reactor().close_port, hub, timeout=5.0)
            except Exception:
                pass
        if self._hub_dir:
            remove_dir(self._hub_dir)
            self._hub_dir = None

    def __reduce__(self):
        if launching():
            return (_rebuild_transport, (self.url, self._key, self._pipe_key))
        if self._key_from_arg:
            raise TypeError("a ZmqTransport holding a key can only be passed through "
                            "Transport.start(); elsewhere give the key by key_file or SKPROCESSING_KEY")
        return (ZmqTransport, (self.url,))

    def __repr__(self) -> str:
        return f"<ZmqTransport {self.url.partition('?')[0]}>"

    @classmethod
    def rebuild_pipe_end(cls, address: str, ticket: bytes, pipe_key: bytes,
                         options: dict[str, Any]) -> PipeEnd:
        """A pipe end passed to a child, rebuilt there (see `PipeEnd.__reduce__`)."""
        query = "&".join(f"{k}={v}" for k, v in options.items())
        transport = cls("zmq://" + (f"?{query}" if query else ""), _pipe_key=pipe_key)
        return PipeEnd(transport, address, ticket)


_OURS = (ZmqChannel, PipeEnd, ZmqListener)  # what waits on an Inbox


def _ready(obj: Channel | Listener) -> bool:
    # Also another transport's channel when a caller mixes them (a local one may hold
    # data already read, which select() would not report).
    return obj.ready()


class _Keys:
    """Carries the parent's keys to a `start()` child; unpickling it installs them."""

    def __init__(self, configured: bytes | None, signing: bytes):
        self.keys = (configured, signing)

    def __reduce__(self):
        return (inherit_key, self.keys)


def _child_main(_keys: None, entry: Callable[..., Any], args: tuple) -> None:
    # The launcher then runs this child's atexit handlers: the reactor delivers what was
    # sent (by the entry, or by a handler registered after the reactor's) and our private
    # directories go, before its os._exit.
    entry(*args)


def _rebuild_transport(url: str, key: bytes | None, pipe_key: bytes) -> ZmqTransport:
    return ZmqTransport(url, key=key, _pipe_key=pipe_key)

