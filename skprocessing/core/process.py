"""`Skprocess`: a subprocess written as a class with lifecycle hooks.

The object lives twice: the user's instance in the parent (control: start, stop, wait,
result, tell, listen) and a rebuilt copy in the child, where the engine (`engine.py`)
runs its sections. The copy is made with the chosen serializer; the runtime links
(channels, handle) are never part of it.
"""

from __future__ import annotations

import collections
import enum
import threading
import time
from typing import Any

from ..errors import (ChannelClosed, ProcessDiedError, ProcessError, RemoteTraceback,
                      ResultTimeoutError, StateError)
from ..serializers.codec import Codec
from ..transports import get_transport
from ..transports.base import Channel, Counter, Flag, Frames, ProcessHandle, Transport
from . import engine
from .autoreconnect import settings_for
from .config import ProcessConfig
from .modifiers import modifiable
from .timers import SECTIONS, ProcessTimers, Sktimer

__all__ = ["Skprocess", "ProcessState"]

_HOOKS = tuple(f"__{s}__" for s in SECTIONS)
_RUNTIME = ("_sk",)  # instance attributes that never travel


class ProcessState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    FINISHED = "finished"


class TimedSection:
    """`process.__run__`: calls the hook, and carries its `timer`."""

    __slots__ = ("_method", "timer")

    def __init__(self, method: Any, timer: Sktimer):
        self._method = method
        self.timer = timer

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._method(*args, **kwargs)


class _ParentLink:
    """The parent's side of a started process.

    The child's tells are read by `listen()`, and also drained into `inbox` while the parent
    waits for the outcome: a child whose tells filled the socket buffer would otherwise
    block in tell() and never deliver its result. `reading` keeps them in order.
    """

    def __init__(self, transport: Transport, codec: Codec):
        self.transport = transport
        self.codec = codec
        self.control, self.child_control = transport.pipe()
        self.messages, self.child_messages = transport.pipe()
        self.stop: Flag = transport.flag()
        self.run_counter: Counter = transport.counter()
        self.handle: ProcessHandle | None = None
        self.outcome: tuple | None = None
        self.lock = threading.Lock()
        self.reading = threading.Lock()
        self.inbox: collections.deque[Frames] = collections.deque()
        self.messages_open = True

    def next_message(self, timeout: float | None) -> Frames | None:
        """The next tell from the child, or None after `timeout`; ChannelClosed once gone."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.reading.acquire(timeout=-1 if timeout is None else timeout):
            return None
        try:
            if self.inbox:
                return self.inbox.popleft()
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            return self.messages.recv(left)
        finally:
            self.reading.release()

    def drain_messages(self) -> bool:
        """Move every tell already waiting into `inbox`; False if a listen() holds the reader
        (it is consuming them itself)."""
        if not self.reading.acquire(blocking=False):
            return False
        try:
            while self.messages.poll(0):
                self.inbox.append(self.messages.recv(0))
        except ChannelClosed:
            self.messages_open = False
        finally:
            self.reading.release()
        return True


class _ChildLink:
    """The child's side: its message channel and stop flag."""

    def __init__(self, messages: Channel, codec: Codec, stop: Flag):
        self.messages = messages
        self.codec = codec
        self.stop = stop


class Skprocess:
    """Subclass it and define `__run__` (and optionally `__prerun__`, `__postrun__`,
    `__onfinish__`, `__result__`, `__error__`). `self.process_config` already exists in
    your `__init__`; there is no need to call `super().__init__()`."""

    process_config: ProcessConfig
    timers: ProcessTimers
    error: BaseException | None

    def __new__(cls, *args: Any, **kwargs: Any) -> Skprocess:
        if getattr(cls, "__run__", None) is None:
            raise TypeError(f"{cls.__qualname__} cannot be created: an Skprocess subclass must "
                            f"define __run__(self), the work done on each iteration")
        process = super().__new__(cls)
        process._sk_setup()
        return process

    def _sk_setup(self) -> None:
        state = self.__dict__
        state["process_config"] = ProcessConfig()
        state["timers"] = ProcessTimers()
        state["error"] = None
        state["_sk_current_run"] = 0
        state["_sk_state"] = ProcessState.CREATED
        state["_sk"] = None
        self._sk_wrap_sections()

    def _sk_wrap_sections(self) -> None:
        for name in self._sk_defined_sections():
            method = getattr(type(self), f"__{name}__").__get__(self)
            self.__dict__[f"__{name}__"] = TimedSection(method, self.timers.section(name))

    @classmethod
    def _sk_defined_sections(cls) -> set[str]:
        return {s for s in SECTIONS if getattr(cls, f"__{s}__", None) is not None}

    # -- serialization: user state travels, runtime links do not ---------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()
                if k not in _RUNTIME and not isinstance(v, TimedSection)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__["_sk"] = None
        self._sk_wrap_sections()

    def _sk_bind_child(self, messages: Channel, codec: Codec, stop: Flag) -> None:
        self.__dict__["_sk"] = _ChildLink(messages, codec, stop)

    # -- control -----------------------------------------------------------------------------
    def start(self, *, transport: str | Transport | None = None,
              serializer: Any = None) -> None:
        """Start the child process and return at once."""
        if self._sk_state is not ProcessState.CREATED:
            raise StateError(f"{type(self).__qualname__}.start(): the process was already started "
                             f"(state: {self._sk_state.value}); create a new instance to run again")
        codec = Codec(serializer)
        payload = codec.serializer.dumps(self)  # names the failing attribute path
        link = _ParentLink(get_transport(transport), codec)
        try:
            link.handle = link.transport.start(
                engine.main, codec.token(), [_picklable(f) for f in payload],
                link.child_control, link.child_messages, link.stop, link.run_counter,
                settings_for(type(self)))
        finally:
            link.child_control.close()
            link.child_messages.close()
            if link.handle is None:  # start failed: do not leak the parent's ends
                link.control.close()
                link.messages.close()
        self.__dict__["_sk"] = link
        self._sk_state = ProcessState.RUNNING

    def stop(self) -> None:
        """Ask the process to finish its current section, then run `__onfinish__` and
        `__result__`. Returns at once; `wait()` for the end."""
        link = self._parent_link("stop")
        link.stop.set()

    def kill(self) -> None:
        """End the process at once; there will be no result."""
        link = self._parent_link("kill")
        if link.handle.is_alive():
            link.handle.kill()
            link.handle.join(5.0)
        self._collect(0)

    @property
    def is_alive(self) -> bool:
        link = self._sk
        return isinstance(link, _ParentLink) and link.outcome is None and link.handle.is_alive()

    @property
    def current_run(self) -> int:
        """Iterations finished so far (live while the process runs)."""
        link = self._sk
        if isinstance(link, _ParentLink) and link.outcome is None:
            return link.run_counter.value
        return self._sk_current_run

    @modifiable
    def wait(self, timeout: float | None = None, *, _modifier_timeout: float | None = None) -> bool:
        """Wait for the process to end; False if it is still running after `timeout`."""
        self._parent_link("wait")
        limit = _earliest(timeout, _modifier_timeout)
        done = self._collect(limit)
        if not done and _modifier_timeout is not None and (timeout is None or _modifier_timeout <= timeout):
            raise ResultTimeoutError(f"{type(self).__qualname__} still running after {_modifier_timeout:g} s")
        return done

    @modifiable
    def result(self, *, _modifier_timeout: float | None = None) -> Any:
        """The process's result (blocks until it ends); raises the process's error."""
        if self._sk_state is ProcessState.CREATED:
            raise StateError(f"{type(self).__qualname__}.result() before start(): call start() or run()")
        if not self._collect(_modifier_timeout):
            raise ResultTimeoutError(f"{type(self).__qualname__} has no result after {_modifier_timeout:g} s")
        value = self._sk.outcome[0]
        if isinstance(value, BaseException):
            _raise_with_remote_traceback(value)
        return value

    @modifiable
    def run(self, *, _modifier_timeout: float | None = None) -> Any:
        """`start()`, wait, and return `result()`."""
        self.start()
        return self.result(_modifier_timeout=_modifier_timeout)

    # -- messaging, the same two calls on both sides -----------------------------------------
    def tell(self, obj: Any) -> None:
        """Send `obj` to the other side (parent to child, or child to parent)."""
        link = self._link("tell")
        try:
            link.messages.send(link.codec.encode(engine.MESSAGE, obj))
        except ChannelClosed as exc:
            raise ProcessError(f"{type(self).__qualname__}.tell(): the other side is gone") from exc

    @modifiable
    def listen(self, timeout: float | None = None, *, _modifier_timeout: float | None = None) -> Any:
        """The next object the other side told; None after `timeout` or once it is gone."""
        link = self._link("listen")
        limit = _earliest(timeout, _modifier_timeout)
        try:
            if isinstance(link, _ParentLink):
                frames = link.next_message(limit)
            else:
                frames = link.messages.recv(limit)
        except ChannelClosed:
            return None
        if frames is None:
            if _modifier_timeout is not None and (timeout is None or _modifier_timeout <= timeout):
                raise ResultTimeoutError(f"nothing heard within {_modifier_timeout:g} s")
            return None
        return link.codec.decode(frames)[1]

    # -- internals ---------------------------------------------------------------------------
    def _link(self, action: str) -> _ParentLink | _ChildLink:
        link = self._sk
        if link is None:
            raise StateError(f"{type(self).__qualname__}.{action}() before start()")
        return link

    def _parent_link(self, action: str) -> _ParentLink:
        link = self._link(action)
        if not isinstance(link, _ParentLink):
            raise StateError(f"{type(self).__qualname__}.{action}() is for the parent process")
        return link

    def _collect(self, timeout: float | None) -> bool:
        """Receive the child's outcome (or notice its death); True once it has ended.
        Another thread already waiting is waited for no longer than `timeout`."""
        link = self._sk
        if not link.lock.acquire(timeout=-1 if timeout is None else timeout):
            return link.outcome is not None
        try:
            if link.outcome is not None:
                return True
            if not self._await_outcome(link, timeout):
                return False
            try:
                outcome = link.codec.decode(link.control.recv())[1]
            except ChannelClosed:
                outcome = self._death_outcome(link)
            link.handle.join(5.0)
            self._adopt(outcome)
            link.outcome = outcome
            link.control.close()
            return True
        finally:
            link.lock.release()

    @staticmethod
    def _await_outcome(link: _ParentLink, timeout: float | None) -> bool:
        """Wait until the control channel is readable, draining tells meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            watched = [link.control, link.messages] if link.messages_open else [link.control]
            ready = link.transport.wait(watched, left)
            if link.control in ready:
                return True
            if link.messages in ready and not link.drain_messages():
                # a listen() in another thread is reading them; give it a moment
                link.transport.wait([link.control], 0.01 if left is None else min(0.01, left))
            elif not ready:
                return False

    def _death_outcome(self, link: _ParentLink) -> tuple:
        link.handle.join(5.0)
        code = link.handle.exitcode
        run = link.run_counter.value
        how = (f"was killed by signal {-code}" if code is not None and code < 0
               else f"exited with code {code}")
        error = ProcessDiedError(
            f"{type(self).__qualname__} (pid {link.handle.pid}) {how} during run {run} "
            f"without delivering a result", exitcode=code, current_run=run)
        return (error, self.timers, run, error)

    def _adopt(self, outcome: tuple) -> None:
        _, timers, current_run, error = outcome
        self.__dict__["timers"] = timers
        self._sk_wrap_sections()
        self._sk_current_run = current_run
        self.error = error
        self._sk_state = ProcessState.FINISHED

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {self._sk_state.value} current_run={self.current_run}>"


def _picklable(frame: Any) -> Any:
    """A frame as start() arguments can carry it: bytes and bytearray as they are (no copy),
    a memoryview (an out-of-band buffer) as bytes."""
    return bytes(frame) if isinstance(frame, memoryview) else frame


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _raise_with_remote_traceback(error: BaseException) -> None:
    text = getattr(error, "remote_traceback", None)
    if text and error.__cause__ is None:
        raise error from RemoteTraceback(text)
    raise error
