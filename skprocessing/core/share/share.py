"""`Share`: assign anything to it, pass it to other processes, use it as plain Python.

    share = Share()                  # starts its coordinator process
    share.counter = 0
    share.results = []
    ...in any process that received `share`:
    share.counter += 1               # atomic, in the coordinator
    share.results.append(x)          # on the one authoritative list

The process that creates a Share owns its coordinator (`start`, `stop`, `exit`). Every
other copy is a client that reconnects by address on first use.

Across hosts (the ZeroMQ transport): `Share(transport="tcp://0.0.0.0:5556", key=...)`, or
`Share(transport=pool)` to serve with a ZeroMQ pool's transport and key on a free port of
the pool's interface. The signing key never travels inside a pickled Share: a process
that receives one signs with its own key (SKPROCESSING_KEY, a worker's --key-file, or the
key its parent transport handed it), so every host must have the same key. While stopped, the owner's
Share keeps the objects in-process: assignments are queued there, reads still work, and
`start()` carries everything into the new coordinator.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
import weakref
from typing import Any

from ..._seconds import seconds
from ...errors import StateError
from ...serializers.codec import Codec
from ...transports import get_transport
from ...transports.base import Capability, Channel, ProcessHandle, Transport
from .._destination import destination, relocate_later
from . import coordinator
from ._client import Client, client_from_token, register_client
from ._handler import Handler, _reconnector
from ._inplace import InPlaceTarget, in_place_target
from ._protocol import CLEAR, DEL, NAMES, OP, RECONNECT, SNAPSHOT, ShareError, Wire
from ._store import Store, register_store, unregister_store
from .proxies import assign, cached_root, read

__all__ = ["Share"]

_START_TIMEOUT = 30.0  # seconds for a new coordinator to report its address


class _Owner:
    """The owning process's control of the coordinator: start, stop, local store."""

    def __init__(self, transport: Transport, client: Client, bind: str | None = None,
                 advertise: Any = None):
        self.transport = transport
        self.client = client
        client.transport = transport  # the owner's own: it may hold a key given in code
        client.owner_pid = os.getpid()
        self.bind = bind  # where the coordinator listens (None: the transport's own address)
        self.advertise = advertise
        self.pid = os.getpid()  # a forked copy of the owner is a client, not the owner
        # A `Share()` (no transport named) moves onto a network pool's transport when it is
        # first sent to that pool's tasks (`serve_on`); `sent` notes copies made before.
        self.movable = False
        self.sent = False
        self.warned = False  # about changes queued while stopped (once per stop)
        self.lock = threading.RLock()
        self.handle: ProcessHandle | None = None
        self.control: Channel | None = None
        self.finalizer: weakref.finalize | None = None
        self.store: Store | None = None
        self._go_local(Store())

    def _go_local(self, store: Store) -> None:
        self.store = store
        register_store(self.client.key, store)
        self.client.go_local(Handler(store, self.client.codec))

    @property
    def running(self) -> bool:
        return self.handle is not None

    def start(self, share: Share) -> None:
        with self.lock, self.client.exclusive():
            if self.running:
                return
            codec = self.client.codec
            # The queued state goes in as an argument, so the coordinator holds it before
            # any client (say, a child of an earlier start) can connect.
            saved, failed = self.store.snapshot(codec.serializer.dumps)
            _warn_lost(failed, "start()")
            control, child_control = self.transport.pipe()
            # The transport goes as itself (its start() hands a key over privately).
            handle = self.transport.start(coordinator.main, self.transport, codec.token(),
                                          child_control, self.bind, self.client.key, saved)
            child_control.close()
            address, reachable = _await_ready(control, handle)
            self.handle, self.control = handle, control
            self.finalizer = weakref.finalize(share, _shut_down_from, self.pid, handle, control)
            self.client.address = self.bind = address  # a restart listens there again
            self.client.candidates = _candidates(reachable, self.advertise) or (address,)
            unregister_store(self.client.key, self.store)
            self.store = None
            self.warned = False
            self.client.go_remote()

    def stop(self, timeout: float) -> bool:
        with self.lock, self.client.exclusive():
            if not self.running:
                return True
            try:
                saved, failed = self.client.request(SNAPSHOT, (), "stop()")
            except ShareError as exc:
                saved, failed = {}, {}
                warnings.warn(f"the Share coordinator was gone at stop(): its objects are lost "
                              f"({exc})", RuntimeWarning, stacklevel=3)
            store = Store()
            loads = self.client.codec.serializer.loads
            store.load(saved, loads)
            _warn_lost(failed, "stop()")
            self._go_local(store)
            self.finalizer.detach()
            clean = _shut_down(self.handle, self.control, timeout)
            self.handle = self.control = self.finalizer = None
            return clean


    def serve_on(self, share: Share, pool: Any) -> None:
        """Move onto `pool`'s transport: stop, carry the objects over, start there. Other
        threads' operations wait meanwhile (the client's lock), so none is lost."""
        with self.lock, self.client.exclusive():
            if not self.movable:
                return
            self.movable = False
            running = self.running
            if running:
                self.stop(5.0)
            self.transport, self.bind = _resolve_transport(pool, None)
            self.client.transport = self.transport
            self.client.transport_spec = self.transport.spec()
            if self.sent:
                warnings.warn("a Share() sent to a Pool on a network transport moved onto that "
                              "pool's transport; copies sent earlier to other processes lost "
                              "their connection. Create it as Share(transport=pool) to avoid "
                              "the move", RuntimeWarning, stacklevel=2)
            if running:
                self.start(share)


class _Move:
    """The move of a Share onto a pool's transport; equal for the same Share and pool."""

    def __init__(self, owner: _Owner, share: Share, pool: Any):
        self.owner, self.share, self.pool = owner, share, pool

    def __call__(self) -> None:
        self.owner.serve_on(self.share, self.pool)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Move) and (other.owner, other.pool) == (self.owner, self.pool)

    __hash__ = None  # type: ignore[assignment]


def _resolve_transport(spec: Any, key: bytes | str | None) -> tuple[Transport, str | None]:
    """(the transport, where to listen or None) for `Share(transport=spec, key=key)`."""
    bind = None
    if getattr(spec, "_scheduler", None) is not None:  # a Pool: its transport, an address beside it
        transport = spec.transport.copy()  # a copy: the Share may outlive the pool
        bind = spec._neighbour_address()
    else:
        transport = get_transport(spec)
    if key is not None:
        transport = transport.with_key(key)
    return transport, bind


def _candidates(reachable: tuple[str, ...], advertise: Any) -> tuple[str, ...]:
    """Where clients connect: the user's `advertise=` if given, else where the
    coordinator's listener says it is reachable (all tried at once; see `_connection`)."""
    if advertise:
        return (advertise,) if isinstance(advertise, str) else tuple(advertise)
    return reachable


def _await_ready(control: Channel, handle: ProcessHandle) -> tuple[str, tuple[str, ...]]:
    """(the coordinator's listening address, the addresses it is reachable at)."""
    try:
        frames = control.recv(_START_TIMEOUT)
    except EOFError:
        frames = None
    if frames and bytes(frames[0]) == coordinator.READY:
        return bytes(frames[1]).decode(), tuple(bytes(f).decode() for f in frames[2:])
    _shut_down(handle, control, 1.0)
    detail = bytes(frames[1]).decode(errors="replace") if frames else "it did not report in time"
    raise ShareError(f"the Share coordinator could not start: {detail}")


def _shut_down(handle: ProcessHandle, control: Channel, timeout: float = 1.0) -> bool:
    """Ask the coordinator to end; kill it if it has not within `timeout`. True if clean."""
    try:
        control.send([coordinator.STOP])
    except Exception:
        pass
    clean = handle.wait(timeout) is not None
    if not clean:
        handle.kill()
        handle.wait(5.0)
    control.close()
    return clean


def _shut_down_from(owner_pid: int, handle: ProcessHandle, control: Channel) -> None:
    # Run at garbage collection or exit; a forked child inherits it and must not act on it.
    if os.getpid() == owner_pid:
        _shut_down(handle, control)


def _warn_lost(failed: dict[str, str], when: str) -> None:
    for name, why in failed.items():
        warnings.warn(f"share.{name} could not be carried over at {when}: {why}", RuntimeWarning,
                      stacklevel=4)


class Share:
    """Shared state for processes; see the module docstring.

    `Share(auto_start=True, *, transport=None, serializer=None, key=None, advertise=None)`:
    `transport` and `serializer` are names or objects (defaults: the local transport, the
    default serializer); `transport` may also be a `Pool`, whose transport and key the
    Share then uses. `key`: the signing key of a network transport (else the transport's
    own sources, e.g. SKPROCESSING_KEY). `advertise`: the address (or addresses) other
    hosts connect to, when the coordinator listens on every interface (default: each of
    this host's IPv4 addresses, tried at once). `exactly_once`: the writes a Pool task
    makes to this Share count once however often the task runs (after its worker died,
    its host was lost, ...): they are held in the worker and applied when the pool
    accepts the task's result; inside the task, reads see the Share without the task's
    own writes (README "Share writes inside pool tasks"). Raises `ValueError` for a `key` the
    transport does not take,  `ShareError` when the coordinator cannot be reached (stopped,
    killed), `SerializationError` naming the path when an assigned value cannot be sent,
    and, from a method of a shared object, that method's own exception with the remote
    traceback text as its cause. Over a network transport, a coordinator or host that
    vanishes makes the calls waiting on it raise `ShareError` once its heartbeats stop
    (`dead_after`, 4 s by default).
    """

    __slots__ = ("_sk_client", "_sk_owner", "__weakref__")

    def __init__(self, auto_start: bool = True, *, transport: Any = None,
                 serializer: Any = None, key: bytes | str | None = None,
                 advertise: str | list[str] | None = None, exactly_once: bool = False):
        if not isinstance(exactly_once, bool):
            raise TypeError(f"Share(exactly_once=...) takes True or False, got {exactly_once!r}")
        backend, bind = _resolve_transport(transport, key)
        spec = transport if transport is None or isinstance(transport, str) else backend.spec()
        client = Client(os.urandom(8).hex(), None, spec, Wire(Codec(serializer)),
                        exactly_once=exactly_once)
        register_client(client)
        owner = _Owner(backend, client, bind, advertise)
        owner.movable = transport is None and Capability.CROSS_HOST not in backend.capabilities
        object.__setattr__(self, "_sk_client", client)
        object.__setattr__(self, "_sk_owner", owner)
        if auto_start:
            self.start()

    # -- lifecycle (owner only) --------------------------------------------------------------
    def start(self) -> None:
        """Start the coordinator (a no-op when running), carrying over what was assigned."""
        self._owner("start").start(self)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the coordinator, keeping the objects here; False if it had to be killed
        after `timeout` seconds (None or math.inf: wait as long as it takes)."""
        return self._owner("stop").stop(seconds("Share.stop(timeout)", timeout, zero=True))

    def exit(self, timeout: float = 5.0) -> bool:
        """The same as `stop()`."""
        return self.stop(timeout)

    def clear(self) -> None:
        """Remove every shared object."""
        self._sk_client.request(CLEAR, (), "clear()")

    @property
    def is_running(self) -> bool:
        """True while the coordinator serves (in another process: while it is reachable)."""
        owner = self._owned()
        if owner is None:
            return self._sk_client.error is None and self._sk_client.address is not None
        return owner.running and owner.handle.wait(0) is None

    @property
    def has_error(self) -> bool:
        """True when the coordinator died or the last exchange with it failed."""
        owner = self._owned()
        died = owner is not None and owner.running and owner.handle.wait(0) is not None
        return died or self._sk_client.error is not None

    def reconnect_all(self, *, start_threads: bool = False, **auth: Any) -> dict[str, Any]:
        """Turn reconnector placeholders in the shared objects back into live resources
        (with the serializer's `reconnect_all`), in the coordinator, and returns them by
        name as live objects of this process (copies, reconnected here with the same
        `auth`), as suitkaise does: `conn = share.reconnect_all()["db"]` is a connection
        whose cursors and results are here (they could not travel from the coordinator)."""
        client = self._sk_client
        names = client.request(RECONNECT, (start_threads, auth), "reconnect_all()")
        reconnect = _reconnector(client.codec)
        found = {}
        for name in names:
            copy = client.request(OP, ((name,), "copy", ()), ("reading", (name,)))
            found[name] = reconnect(copy, start_threads=start_threads, **auth)
        return found

    def __enter__(self) -> Share:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _owner(self, action: str) -> _Owner:
        owner = self._owned()
        if owner is None:
            raise StateError(f"Share.{action}(): only the process that created the Share "
                             f"controls its coordinator")
        return owner

    def _owned(self) -> _Owner | None:
        owner = self._sk_owner
        return owner if owner is not None and owner.pid == os.getpid() else None

    # -- shared names ------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name[:1] == "_" and (name.startswith("__") or name.startswith("_sk_")):
            raise AttributeError(name)
        client = self._sk_client
        frame = sys._getframe(1)
        proxy = cached_root(client, name, frame)
        if proxy is not None:
            return proxy
        target = in_place_target(frame, name, client, (name,))
        return target if target is not None else read(client, (name,), frame)

    def __setattr__(self, name: str, value: Any) -> None:
        if type(value) is InPlaceTarget and value.client is self._sk_client \
                and value.path == (name,):
            return  # `share.name op= x`: already sent (the hot path, checked first)
        _check_name(name)
        owner = self._sk_owner
        if owner is not None and owner.handle is None and not owner.warned:
            owner.warned = True
            warnings.warn("the Share is stopped: changes are kept here and reach other "
                          "processes once share.start() is called", RuntimeWarning, stacklevel=2)
        assign(self._sk_client, (name,), value, pipelined=True)

    def __delattr__(self, name: str) -> None:
        _check_name(name)
        self._sk_client.roots.pop(name, None)
        self._sk_client.request(DEL, ((name,),), ("del", (name,)))

    def __contains__(self, name: str) -> bool:
        return name in self._names()

    def __dir__(self) -> list[str]:
        return sorted(set(object.__dir__(self)) | set(self._names()))

    def _names(self) -> list[str]:
        return self._sk_client.request(NAMES, (), "listing the Share")

    def __repr__(self) -> str:
        state = "error" if self.has_error else "running" if self.is_running else "stopped"
        try:
            names = ", ".join(self._names())
        except Exception as exc:
            names = f"unreadable: {type(exc).__name__}"
        return f"<Share {state} [{names}]>"

    def __reduce__(self):
        # Changes nothing (it may run on a pool's scheduler thread, inside a chunk's
        # pickling): a move it calls for is made by `serialize_for` once pickling is over.
        owner = self._owned()
        if owner is not None and owner.movable:
            pool = destination()
            if pool is not None and Capability.CROSS_HOST in pool.transport.capabilities:
                relocate_later(_Move(owner, self, pool))  # bound for other hosts
            else:
                owner.sent = True  # (a note for the warning a later move gives)
        client = self._sk_client
        if client.address is None:
            raise StateError("a Share must be started before it is passed to another process "
                             "(call share.start())")
        return (_share_from_token, (client.token(),))


_RESERVED = frozenset(name for name in dir(Share) if not name.startswith("__"))


def _check_name(name: str) -> None:
    if name in _RESERVED or name.startswith("_sk_") or name.startswith("__"):
        raise AttributeError(f"share.{name} is reserved (a Share method or internal name); "
                             f"pick another name")


def _share_from_token(token: tuple) -> Share:
    share = Share.__new__(Share)
    object.__setattr__(share, "_sk_client", client_from_token(token))
    object.__setattr__(share, "_sk_owner", None)
    return share
