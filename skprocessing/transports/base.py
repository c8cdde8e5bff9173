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

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from ..errors import ChannelClosed, TransportError

__all__ = ["Buffer", "Frames", "Channel", "Flag", "Counter", "Listener", "ProcessHandle",
           "Transport", "ChannelClosed", "TransportError"]

Buffer: TypeAlias = bytes | bytearray | memoryview
Frames: TypeAlias = list[Buffer]


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
        transport's channels, flags and counters, bytes, and plain picklable data.
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

    def close(self) -> None:
        """Release what the transport holds (launchers, contexts). Idempotent."""
