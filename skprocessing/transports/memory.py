"""The memory transport: one interpreter, threads stand in for processes. For tests and as
the worked example of ARCHITECTURE.md "Adding a transport"; it proves the core needs
nothing but the interface.

URL: `memory://`. Listener addresses are `memory://name`, in a registry of this interpreter.

- channels: two in-memory queues; a send is in the peer's queue when it returns
- processes: `start()` runs the entry on a daemon thread, with its own copy of each argument
  (pickled, as a real process gets them; a channel argument is a second holder of that end)
- a "process" ends when its entry returns: the channels it was given or opened on its
  thread close then, after everything it sent. `Handle.kill()` cannot stop a thread: it
  declares the process dead (exit code -9, as SIGKILL), closes those channels, and
  abandons the thread, whose later sends raise `ChannelClosed` and who may open no more.
- no pids (`pid` is None), no signals, no shared memory, no file descriptors.
"""

from __future__ import annotations

import collections
import io
import itertools
import pickle
import signal
import sys
import threading
import traceback
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ChannelClosed, TransportError
from .._deadline import Deadline
from .base import Buffer, Capability, Channel, Frames, Listener, ProcessHandle, Transport

__all__ = ["MemoryTransport", "MemoryChannel", "MemoryListener", "MemoryProcess"]

_changed = threading.Condition()  # one for everything: a send, close or connect wakes every waiter
_listeners: dict[str, MemoryListener] = {}
_names = itertools.count(1)
_here = threading.local()  # .process: the MemoryProcess whose entry runs on this thread


class _End:
    """One end's incoming queue, shared by every `MemoryChannel` holding that end."""

    def __init__(self) -> None:
        self.inbox: collections.deque[Frames] = collections.deque()
        self.holders = 0
        self.peer: _End | None = None


class MemoryChannel(Channel):
    _closed = True  # until __init__ holds an end (so __del__ of a half-built one does nothing)

    def __init__(self, end: _End):
        with _changed:
            end.holders += 1
        self._end, self._closed = end, False

    def send(self, frames: Sequence[Buffer]) -> None:
        message = [bytes(f) for f in frames]  # the sender may reuse its buffers
        with _changed:
            if self._closed or not self._end.peer.holders:
                raise ChannelClosed("the memory channel is closed")
            self._end.peer.inbox.append(message)
            _changed.notify_all()

    def recv(self, timeout: float | None = None) -> Frames | None:
        deadline = Deadline(timeout)
        with _changed:
            while not self.ready():
                if deadline.expired():
                    return None
                _changed.wait(deadline.remaining())
            if self._end.inbox and not self._closed:
                return self._end.inbox.popleft()
            raise ChannelClosed("the other end of the memory channel is closed")

    def poll(self, timeout: float | None = 0.0) -> bool:
        with _changed:
            return _changed.wait_for(self.ready, timeout)

    def ready(self) -> bool:
        return self._closed or bool(self._end.inbox) or not self._end.peer.holders

    def close(self) -> None:
        with _changed:
            if not self._closed:
                self._closed = True
                self._end.holders -= 1
                _changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __del__(self) -> None:
        self.close()


def _pair() -> tuple[MemoryChannel, MemoryChannel]:
    a, b = _End(), _End()
    a.peer, b.peer = b, a
    return MemoryChannel(a), MemoryChannel(b)


class MemoryListener(Listener):
    def __init__(self, address: str | None):
        with _changed:
            self.address = address or f"memory://{next(_names)}"
            if self.address in _listeners:
                raise TransportError(f"{self.address} is already listened on")
            _listeners[self.address] = self
        self._pending: collections.deque[MemoryChannel] = collections.deque()

    def accept(self, timeout: float | None = None) -> Channel | None:
        with _changed:
            if not _changed.wait_for(self.ready, timeout) or not self._pending:
                return None
            channel = self._pending.popleft()
        return _belongs_here(channel)

    def ready(self) -> bool:
        return bool(self._pending) or _listeners.get(self.address) is not self

    def close(self) -> None:
        with _changed:
            if _listeners.get(self.address) is self:
                del _listeners[self.address]
            while self._pending:
                self._pending.popleft().close()
            _changed.notify_all()


class MemoryProcess(ProcessHandle):
    """A thread running an entry; see the module docstring for what `kill()` means here."""

    pid = None

    def __init__(self, entry: Callable[..., Any], args: tuple):
        self.channels: weakref.WeakSet[MemoryChannel] = weakref.WeakSet()
        self._code: int | None = None
        self._ended = threading.Event()
        # Copied now, as a process gets its arguments at start (the caller may close its ends).
        self._thread = threading.Thread(target=self._run, args=(entry, _copied(args, self)), daemon=True,
                                        name=f"skprocessing-memory-{getattr(entry, '__name__', 'entry')}")
        self._thread.start()

    def _run(self, entry: Callable[..., Any], args: tuple) -> None:
        _here.process = self
        code = 0
        try:
            entry(*args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            if not self._ended.is_set():
                traceback.print_exc(file=sys.stderr)  # as a process would, on its stderr
            code = 1
        self._end(code)

    def _end(self, code: int) -> None:
        with _changed:
            if self._code is None:
                self._code = code
            for channel in list(self.channels):
                channel.close()
        self._ended.set()

    def wait(self, timeout: float | None = None) -> int | None:
        self._ended.wait(timeout)
        return self._code

    def kill(self) -> None:  # (also cancel(): a thread cannot be asked to stop either)
        self._end(-signal.SIGKILL)


def _belongs_here(channel: MemoryChannel) -> MemoryChannel:
    """A channel opened on a process's thread closes when that process ends."""
    process = getattr(_here, "process", None)
    if process is not None:
        if process._ended.is_set():
            channel.close()
            raise TransportError("this memory process was killed: it may open no channel")
        process.channels.add(channel)
    return channel


def _copied(args: tuple, process: MemoryProcess) -> tuple:
    """`args` as another process would get them: pickled and rebuilt, each channel as a
    second holder of its end (the parent may close its own; the end stays open)."""
    ends: list[_End] = []  # persistent ids are pickled by value: pass an index instead

    class Out(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            if not isinstance(obj, MemoryChannel):
                return None
            ends.append(obj._end)
            return len(ends) - 1

    class In(pickle.Unpickler):
        def persistent_load(self, index: int) -> MemoryChannel:
            channel = MemoryChannel(ends[index])
            process.channels.add(channel)
            return channel
    buffer = io.BytesIO()
    Out(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(args)
    buffer.seek(0)
    return In(buffer).load()


class MemoryTransport(Transport):
    """Threads for processes; see the module docstring."""

    name = "memory"
    capabilities = frozenset({Capability.IMMEDIATE_DELIVERY, Capability.DEATH_CLOSES_CHANNELS})

    def __init__(self, url: str | None = None):
        self.url = "memory://"

    def pipe(self, duplex: bool = True) -> tuple[Channel, Channel]:
        a, b = _pair()
        return _belongs_here(a), _belongs_here(b)

    def listen(self, address: str | None = None) -> Listener:
        return MemoryListener(None if address in (None, "", "memory://") else address)

    def connect(self, address: str, timeout: float | None = None) -> Channel:
        mine, theirs = _pair()
        with _changed:
            listener = _listeners.get(address)
            if listener is None:
                mine.close(), theirs.close()
                raise TransportError(f"cannot connect to {address}: nobody listens there")
            listener._pending.append(theirs)
            _changed.notify_all()
        return _belongs_here(mine)

    def start(self, entry: Callable[..., Any], *args: Any) -> MemoryProcess:
        return MemoryProcess(entry, args)

    def wait(self, channels: Sequence[Channel | Listener],
             timeout: float | None = None) -> list[Channel | Listener]:
        with _changed:
            _changed.wait_for(lambda: any(c.ready() for c in channels), timeout)
            return [c for c in channels if c.ready()]

    def __reduce__(self) -> tuple:
        return (MemoryTransport, (self.url,))
