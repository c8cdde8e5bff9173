"""The abstract transport: the only way the core reaches other processes.

The lifecycle engine, the Pool scheduler and the Share coordinator use these classes and
nothing else; `multiprocessing`, sockets and ZeroMQ live in the backends below them.

    Transport ──┬─ pipe()      -> (Channel, Channel)   two connected ends, passable to start()
                ├─ listen(addr)-> Listener             accept() Channels from anyone who connects
                ├─ connect(addr) -> Channel
                ├─ start(entry, *args) -> ProcessHandle   run entry(*args) in a new process:
                │                          wait(timeout) -> exit code | None, kill(), cancel()
                ├─ prepare()                           be ready to start (before spawning threads)
                ├─ wait(channels, timeout) -> ready channels
                └─ shared_int() -> SharedInt            with Capability.SAME_HOST_MEMORY only

A message is a list of byte frames (`bytes`, `bytearray` or `memoryview`), never a
Python object: serializers make frames, transports move them, so large buffers can travel
as their own frames without a copy.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from ..errors import ChannelClosed, TransportError

__all__ = ["Buffer", "Frames", "Capability", "Channel", "SharedInt", "Listener", "ProcessHandle",
           "Transport", "ChannelClosed", "TransportError"]

from .._frames import Buffer, Frames  # noqa: E402  (re-exported: the interface's types)


class Capability(enum.Enum):
    """What a backend guarantees beyond the interface; the core reads these, never a name."""

    CROSS_HOST = "cross-host"
    """Peers on other hosts may connect: a round trip costs a network's latency, and a
    service meant for other hosts (a Share a network pool's workers use) can live on it."""

    IMMEDIATE_DELIVERY = "immediate-delivery"
    """`send()` returns with the message in the receiver's queue, so whatever this process
    sends next, on any channel, arrives after it (a Share then needs no read barrier)."""

    SAME_HOST_MEMORY = "same-host-memory"
    """`shared_int()` works: the processes `start()` makes share memory with this one."""

    SELECTABLE_FDS = "selectable-fds"
    """`fileno()` of a channel or listener turns readable with it, so a caller may wait on
    it with select/poll beside descriptors of its own (the core itself never does)."""

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

    def ready(self) -> bool:
        """True when a message (or the close) is already in this process, so `recv()`
        returns at once: `Transport.wait` reports it without asking the system."""
        return False

    def fileno(self) -> int:
        """A file descriptor that turns readable with the channel, for `Transport.wait`."""
        raise NotImplementedError(f"{type(self).__name__} has no file descriptor")

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class SharedInt(ABC):
    """An integer in memory shared with the processes a transport starts (one host), for a
    backend with `Capability.SAME_HOST_MEMORY`: the core keeps a process's stop signal and
    run counter in two of these instead of sending messages. Passable to `start()`."""

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

    def ready(self) -> bool:
        """True when `accept()` returns at once (as `Channel.ready`)."""
        return False

    def fileno(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} has no file descriptor")


class ProcessHandle(ABC):
    """A process started by a transport; the transport reaps it, this handle observes it
    and may end it. Every method is safe from any thread, and after the end."""

    pid: int | None = None
    """The OS process id, for messages and tools; None for a backend without pids."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the end: the exit code (-N when ended by signal N), or None while it
        still runs after `timeout` (`wait(0)` only looks)."""

    @abstractmethod
    def kill(self) -> None:
        """End the process at once (SIGKILL: no cleanup runs). What a backend that cannot
        force an end does instead, it documents (memory.py: declared dead, abandoned)."""

    def cancel(self) -> None:
        """Ask the process to end (SIGTERM: it may clean up). The default is `kill()`."""
        self.kill()


class Transport(ABC):
    """A backend: makes channels, signals and processes. See the module docstring."""

    name: str = "abstract"
    capabilities: frozenset[Capability] = frozenset()
    url: str | None = None
    """What `get_transport()` rebuilds this transport from (see `spec()`), if anything."""
    dead_after: float | None = None
    """Seconds of silence after which this transport declares a peer dead; None: it never
    judges by silence (its channels close when their peer does)."""

    @abstractmethod
    def pipe(self, duplex: bool = True) -> tuple[Channel, Channel]:
        """Two connected channel ends; either may be passed to `start()`."""

    @abstractmethod
    def listen(self, address: str | None = None) -> Listener:
        """Listen at `address` (a fresh private one when None)."""

    @abstractmethod
    def connect(self, address: str, timeout: float | None = None) -> Channel: ...

    @abstractmethod
    def start(self, entry: Callable[..., Any], *args: Any) -> ProcessHandle:
        """Run `entry(*args)` in a new process.

        `entry` must be importable (a module-level function); `args` may hold this
        transport itself, its channels and shared integers, bytes, and plain picklable
        data.
        """

    @abstractmethod
    def wait(self, channels: Sequence[Channel | Listener],
             timeout: float | None = None) -> list[Channel | Listener]:
        """The members of `channels` that are ready: a channel to `recv()`, a listener to
        `accept()` (empty on timeout). Channels and listeners of this transport only."""

    def shared_int(self) -> SharedInt:
        """A fresh shared integer (0); only with `Capability.SAME_HOST_MEMORY`."""
        raise NotImplementedError(f"{self!r} shares no memory with its processes")

    def prepare(self) -> None:
        """Get ready to `start()` processes. Callers that are about to start threads of
        their own (a pool's scheduler) call it first, so a backend that forks can still do
        so while that is safe. Idempotent; the default does nothing."""

    def default_workers(self) -> int | None:
        """How many workers a `Pool` on this transport starts when given no number (a
        cluster engine's CPU count). None, the default: this machine's CPU count."""
        return None

    def address_beside(self, address: str) -> str | None:
        """Where to `listen()` for a fresh listener that the peers reaching `address` (one
        of this transport's listeners) reach too, e.g. another port on the same interface.
        None, the default, is a fresh private address (`listen(None)`)."""
        return None

    def spec(self) -> str | Transport:
        """What another process passes to `get_transport()` to reach the same transport: its
        URL (never a key: that process takes its own), or else the transport itself."""
        return self.url or self

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

