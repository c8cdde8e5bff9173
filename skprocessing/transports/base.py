"""The abstract transport: the only way the core reaches other processes.

The lifecycle engine, the Pool scheduler and the Share coordinator use these classes and
nothing else; `multiprocessing`, sockets and ZeroMQ live in the backends below them.

    Transport ──┬─ pipe()      -> (Channel, Channel)   two connected ends, passable to start()
                ├─ flag()      -> Flag                 a boolean both processes see (stop signal)
                ├─ counter()   -> Counter              an integer one process writes, others read
                ├─ listen(addr)-> Listener             accept() Channels from anyone who connects
                ├─ connect(addr) -> Channel
                ├─ start(entry, *args) -> ProcessHandle   run entry(*args) in a new process
                ├─ prepare()                           be ready to start (before spawning threads)
                └─ wait(channels, timeout) -> ready channels

A message is a list of byte frames (`bytes`, `bytearray` or `memoryview`), never a
Python object: serializers make frames, transports move them, so large buffers can travel
as their own frames without a copy.
"""

from __future__ import annotations

import atexit
import enum
import os
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from ..errors import ChannelClosed, TransportError

__all__ = ["Buffer", "Frames", "Capability", "Channel", "Flag", "Counter", "Listener", "ProcessHandle",
           "Transport", "ChannelClosed", "TransportError", "at_process_exit", "run_exit_hooks",
           "holding", "released", "send_held", "holder_flushing"]

from .._frames import Buffer, Frames  # noqa: E402  (re-exported: the interface's types)


class Capability(enum.Enum):
    """What a backend guarantees beyond the interface; the core reads these, never a name."""

    CROSS_HOST = "cross-host"
    """Peers on other hosts may connect: a round trip costs a network's latency, and a
    service meant for other hosts (a Share a network pool's workers use) can live on it."""

    IMMEDIATE_DELIVERY = "immediate-delivery"
    """`send()` returns with the message in the receiver's queue, so whatever this process
    sends next, on any channel, arrives after it (a Share then needs no read barrier)."""

    DEATH_CLOSES_CHANNELS = "death-closes-channels"
    """A process's channels close the moment it dies, after everything it sent: nobody
    needs to watch its `ProcessHandle` to notice the death or to hear its last words."""


class Channel(ABC):
    """One end of a connection that carries messages (lists of byte frames) both ways.

    Raises `ChannelClosed` when the other end has closed or its process is gone, so a
    dead peer is always noticed rather than waited on forever.
    """

    @abstractmethod
    def send(self, frames: Sequence[Buffer]) -> None:
        """Send one message. Blocks only while the peer's buffer is full."""

    @abstractmethod
    def recv(self, timeout: float | None = None) -> Frames | None:
        """The next message, or None if none arrived within `timeout` seconds."""

    @abstractmethod
    def poll(self, timeout: float | None = 0.0) -> bool:
        """True when `recv()` would not block (a message or a close is waiting)."""

    @abstractmethod
    def close(self) -> None:
        """Close this end; the peer's next `recv()` raises `ChannelClosed`."""

    @property
    @abstractmethod
    def closed(self) -> bool:
        """True once `close()` was called on this end."""

    def fileno(self) -> int:
        """A file descriptor that turns readable with the channel, for `Transport.wait`."""
        raise NotImplementedError(f"{type(self).__name__} has no file descriptor")

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class Flag(ABC):
    """A boolean every process holding it sees; the stop signal of a process."""

    @abstractmethod
    def set(self) -> None: ...

    @abstractmethod
    def clear(self) -> None: ...

    @abstractmethod
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None, interval: float = 0.005) -> bool:
        """Wait until set; False if `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(interval)
        return True


class Counter(ABC):
    """An integer written by one process and read by others (e.g. `current_run`)."""

    @property
    @abstractmethod
    def value(self) -> int: ...

    @value.setter
    @abstractmethod
    def value(self, new: int) -> None: ...


class Listener(ABC):
    """Accepts channels from processes that `connect()` to its `address`."""

    address: str

    @abstractmethod
    def accept(self, timeout: float | None = None) -> Channel | None:
        """The next incoming channel, or None if none came within `timeout`."""

    @abstractmethod
    def close(self) -> None: ...

    def reachable_addresses(self) -> tuple[str, ...]:
        """Addresses another process may `connect()` to, best first. A listener bound to
        every interface (`tcp://0.0.0.0:port`) reports an address that means nothing to a
        peer, so a backend lists concrete ones instead; a client may try them all."""
        return (self.address,)

    def fileno(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} has no file descriptor")


class ProcessHandle(ABC):
    """A process started by a transport; the transport reaps it, this handle observes."""

    pid: int | None

    @abstractmethod
    def is_alive(self) -> bool: ...

    @abstractmethod
    def join(self, timeout: float | None = None) -> bool:
        """Wait for the process to end; False if it is still running after `timeout`."""

    @property
    @abstractmethod
    def exitcode(self) -> int | None:
        """None while running; the exit status, or -N when ended by signal N."""

    @abstractmethod
    def terminate(self) -> None:
        """Ask the process to end (SIGTERM)."""

    @abstractmethod
    def kill(self) -> None:
        """End the process at once (SIGKILL)."""


class Transport(ABC):
    """A backend: makes channels, signals and processes. See the module docstring."""

    name: str = "abstract"
    capabilities: frozenset[Capability] = frozenset()

    @abstractmethod
    def pipe(self, duplex: bool = True) -> tuple[Channel, Channel]:
        """Two connected channel ends; either may be passed to `start()`."""

    @abstractmethod
    def flag(self) -> Flag: ...

    @abstractmethod
    def counter(self) -> Counter: ...

    @abstractmethod
    def listen(self, address: str | None = None) -> Listener:
        """Listen at `address` (a fresh private one when None)."""

    @abstractmethod
    def connect(self, address: str, timeout: float | None = None) -> Channel: ...

    @abstractmethod
    def start(self, entry: Callable[..., Any], *args: Any) -> ProcessHandle:
        """Run `entry(*args)` in a new process.

        `entry` must be importable (a module-level function); `args` may hold this
        transport itself, its channels, flags and counters, bytes, and plain picklable
        data.
        """

    @abstractmethod
    def wait(self, channels: Sequence[Channel | Listener],
             timeout: float | None = None) -> list[Channel | Listener]:
        """The members of `channels` that are ready: a channel to `recv()`, a listener to
        `accept()` (empty on timeout). Channels and listeners of this transport only."""

    def prepare(self) -> None:
        """Get ready to `start()` processes. Callers that are about to start threads of
        their own (a pool's scheduler) call it first, so a backend that forks can still do
        so while that is safe. Idempotent; the default does nothing."""

    def address_beside(self, address: str) -> str | None:
        """Where to `listen()` for a fresh listener that the peers reaching `address` (one
        of this transport's listeners) reach too, e.g. another port on the same interface.
        None, the default, is a fresh private address (`listen(None)`)."""
        return None

    def spec(self) -> str | Transport:
        """What another process passes to `get_transport()` to reach the same transport: its
        URL (never a key: that process takes its own), or else the transport itself."""
        return getattr(self, "url", None) or self

    def with_key(self, key: bytes | str) -> Transport:
        """The same transport signing with `key` (for `Pool(key=...)`, `Share(key=...)`).
        A backend that takes no key refuses it, saying so."""
        raise ValueError(f"key= is for a network transport; {self!r} takes no key")

    def copy(self) -> Transport:
        """The same settings (address, options, key) as a transport of its own (pipes,
        ports, lifetime), for a user that must outlive this one's `close()`. The default,
        `self`, suits a backend whose instances hold nothing per object."""
        return self

    def close(self) -> None:
        """Release what the transport holds (launchers, contexts). Idempotent."""


# -- messages held back to be batched ---------------------------------------------------------
# A layer may hold outgoing messages to send several at once (a Share client's pipelined
# writes). They must still leave before anything this process sends later, on any
# channel: otherwise another process could hear of a write (a tell, a pool result, a stop
# flag) and act on it before the write itself arrives. A holder registers while it holds
# something; every backend's send (and Flag.set) calls `send_held()` first.

_holders: set[Any] = set()
_in_holder_flush = threading.local()


def holding(holder: Any) -> None:
    """`holder` (with a `flush()` method) holds messages until its next flush."""
    _holders.add(holder)


def released(holder: Any) -> None:
    """`holder` holds nothing any more."""
    _holders.discard(holder)


def send_held() -> None:
    """Flush every holder now: backends call it before each message leaves this process.
    A holder's own flush does not flush the others (messages to different receivers are
    not ordered anyway), which also rules out two flushes waiting on each other."""
    if not _holders or getattr(_in_holder_flush, "active", False):
        return
    _in_holder_flush.active = True
    try:
        while _holders:
            try:
                holder = _holders.pop()
            except KeyError:
                return
            try:
                holder.flush()
            except Exception:
                pass  # the holder's failure is its own; it reports it to its own caller
    finally:
        _in_holder_flush.active = False


class holder_flushing:
    """`with holder_flushing():` around a holder's own sends (see `send_held`)."""

    def __enter__(self) -> None:
        self.outer = getattr(_in_holder_flush, "active", False)
        _in_holder_flush.active = True

    def __exit__(self, *exc_info: Any) -> None:
        _in_holder_flush.active = self.outer


# -- before this process exits ----------------------------------------------------------------
# Children started by a transport end with os._exit (no atexit handlers), so a layer that
# buffers outgoing messages (a Share client batching its writes) would lose what it still
# holds. It registers a hook here; the launchers' child mains run the hooks before
# os._exit, and an ordinary interpreter exit runs them from atexit.

_exit_hooks: list[Callable[[], None]] = []
_exit_lock = threading.Lock()
_atexit_registered = False  # (a forked child inherits the registration with the hooks)


def at_process_exit(hook: Callable[[], None]) -> None:
    """Run `hook()` once before this process exits (a transport's child, or at interpreter
    exit). Hooks run last registered first, so a hook registered after the transport it
    sends through was set up runs before that transport is torn down. Registering a hook
    again keeps its first place. Hooks are inherited by forked children: a hook that holds
    per-process state checks `os.getpid()` itself. A hook that raises is reported on
    stderr; the others still run."""
    global _atexit_registered
    with _exit_lock:
        if hook not in _exit_hooks:
            _exit_hooks.append(hook)
        if not _atexit_registered:
            # On first use, not at import: atexit runs last registered first, so this runs
            # before the atexit handlers of modules imported earlier (the launcher's).
            _atexit_registered = True
            atexit.register(run_exit_hooks)


def run_exit_hooks() -> None:
    """Run (and forget) every registered hook, last registered first."""
    while True:
        with _exit_lock:
            if not _exit_hooks:
                return
            hook = _exit_hooks.pop()
        try:
            hook()
        except Exception:
            import traceback
            print("skprocessing: an exit hook failed:", file=sys.stderr)
            traceback.print_exc()


def _reset_exit_lock() -> None:
    global _exit_lock
    _exit_lock = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_reset_exit_lock)
