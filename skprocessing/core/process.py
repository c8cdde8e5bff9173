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
from typing import Any

from .._deadline import Deadline
from .._seconds import seconds
from ..errors import (ChannelClosed, ProcessDiedError, ProcessError, RemoteTraceback,
                      ResultTimeoutError, StateError)
from ..serializers.codec import Codec
from ..transports import get_transport
from ..transports.base import Capability, Channel, Frames, ProcessHandle, Transport
from . import engine
from ._held import ordered_send, send_held
from ._signals import Counter, Flag, PlainCounter, SharedFlag
from ._destination import serialize_for
from .autoreconnect import settings_for
from .config import ProcessConfig
from .modifiers import modifiable
from .remote import RemoteHandle, RemoteStop, relayed_main, start_on
from .timers import SECTIONS, ProcessTimers, Sktimer

__all__ = ["Skprocess", "ProcessState"]

_HOOKS = tuple(f"__{s}__" for s in SECTIONS)
_RUNTIME = ("_sk",)  # instance attributes that never travel
_RUN_KIND = bytes([engine.RUN])


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

    def __init__(self, transport: Transport, codec: Codec, control: Channel, messages: Channel,
                 stop: Flag, run_counter: Counter):
        self.transport = transport
        self.codec = codec
        self.control = control
        self.messages = messages
        self.stop = stop
        self.run_counter = run_counter
        self.handle: ProcessHandle | None = None
        self.outcome: tuple | None = None
        self.early: Frames | None = None  # a control message read ahead by refresh()
        self.lock = threading.Lock()
        self.reading = threading.Lock()
        self.inbox: collections.deque[Frames] = collections.deque()
        self.messages_open = True
        self.killed = False  # kill() was called: the end is the caller's, not a failure

    def next_message(self, timeout: float | None) -> Frames | None:
        """The next tell from the child, or None after `timeout`; ChannelClosed once gone."""
        deadline = Deadline(timeout)
        if not self.reading.acquire(timeout=-1 if timeout is None else timeout):
            return None
        try:
            if self.inbox:
                return self.inbox.popleft()
            return self.messages.recv(deadline.remaining())
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

    def take_run_report(self, frames: Frames) -> bool:
        """True if `frames` was a RUN report (now applied), False for the outcome."""
        if bytes(frames[0][:1]) != _RUN_KIND:
            return False
        self.run_counter.value = self.codec.decode(frames)[1]
        return True

    # -- where a process on a pool worker differs (`_RemoteLink`) ----------------------------
    def refresh(self) -> None:
        """Bring `run_counter` up to date; a local child writes it in shared memory."""

    def kill(self) -> None:
        self.handle.kill()
        self.handle.wait(5.0)

    def settle(self) -> None:
        """The outcome came: the child is ending; let it finish."""
        self.handle.wait(5.0)

    def death(self) -> tuple[int | None, str]:
        """(exit code, how the child ended) when it ended without an outcome."""
        code = self.handle.wait(5.0)
        how = (f"was killed by signal {-code}" if code is not None and code < 0
               else f"exited with code {code}")
        return code, how


class _RelayedLink(_ParentLink):
    """A child without shared memory: its run counter arrives as RUN reports on the
    control channel (and `stop` is a `RemoteStop`, a message the other way)."""

    def refresh(self) -> None:
        """Take in the RUN reports waiting on the control channel, without blocking; an
        outcome read meanwhile is left for `_collect` (`early`)."""
        if not self.lock.acquire(blocking=False):
            return  # a waiting _collect reads them itself
        try:
            while self.outcome is None and self.early is None and self.control.poll(0):
                frames = self.control.recv(0)
                if frames is not None and not self.take_run_report(frames):
                    self.early = frames
        except ChannelClosed:
            pass  # _collect will find out
        finally:
            self.lock.release()


class _RemoteLink(_RelayedLink):
    """A process on a pool worker (`remote.py`): relayed, and its end is a pool task's."""

    handle: RemoteHandle

    def kill(self) -> None:
        self.handle.kill()  # certain, but seen here only at the next heartbeat: no join

    def settle(self) -> None:
        if not self.handle.abandoned:
            self.handle.wait(5.0)
            self.handle.finish()

    def death(self) -> tuple[int | None, str]:
        self.handle.abandon()  # the pool must not run it again elsewhere
        return self.handle.wait(0), self.handle.lost()


class _ChildLink:
    """The child's side: its message channel and stop flag. A process run as a Pool item
    has a stop flag only (`messages` None): there is no parent to talk to."""

    def __init__(self, messages: Channel | None, codec: Codec | None, stop: Flag):
        self.messages = messages
        self.codec = codec
        self.stop = stop


class Skprocess:
    """Subclass it and define `__run__` (and optionally `__prerun__`, `__postrun__`,
    `__onfinish__`, `__result__`, `__error__`; a subclass with only `__prerun__` or
    `__postrun__` runs with an empty run section). `self.process_config` already exists
    in your `__init__`; there is no need to call `super().__init__()`. By default it runs
    until `stop()` (`process_config.runs = None`)."""

    process_config: ProcessConfig
    timers: ProcessTimers
    error: BaseException | None

    def __new__(cls, *args: Any, **kwargs: Any) -> Skprocess:
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

    def _sk_bind_child(self, messages: Channel | None, codec: Codec | None, stop: Flag) -> None:
        self.__dict__["_sk"] = _ChildLink(messages, codec, stop)

    # -- control -----------------------------------------------------------------------------
    def start(self, *, transport: str | Transport | None = None, serializer: Any = None,
              on: Any = None, timeout: float | None = None) -> None:
        """Start the child process and return at once.

        `on=pool`: run it on one of the pool's workers instead (on another host, for a
        pool on the ZeroMQ transport); everything else works as locally. Then `start()`
        returns once a worker runs the process; `timeout` bounds that wait
        (`ResultTimeoutError`), for a pool whose workers are all busy or gone."""
        if self._sk_state is not ProcessState.CREATED:
            raise StateError(f"{type(self).__qualname__}.start(): the process was already started "
                             f"(state: {self._sk_state.value}); create a new instance to run again")
        if on is not None and transport is not None:
            raise ValueError(f"{type(self).__qualname__}.start(): give transport= or on=, not both "
                             f"(on=pool runs it with the pool's transport)")
        timeout = seconds(f"{type(self).__qualname__}.start(timeout)", timeout)
        codec = Codec(serializer)
        send_held()  # the child must not see the world before this process's last writes
        # A Share among the attributes serves where the worker reaches it.
        payload = serialize_for(on, lambda: [_picklable(f) for f in codec.serializer.dumps(self)])
        if on is None:
            link = self._start_here(get_transport(transport), codec, payload)
        else:
            link = self._start_on(on, codec, payload, timeout)
        self.__dict__["_sk"] = link
        self._sk_state = ProcessState.RUNNING

    def _start_here(self, transport: Transport, codec: Codec, payload: list) -> _ParentLink:
        control, child_control = transport.pipe()
        messages, child_messages = transport.pipe()
        settings = settings_for(type(self))
        if Capability.SAME_HOST_MEMORY in transport.capabilities:  # stop and current_run in memory
            link = _ParentLink(transport, codec, control, messages,
                               SharedFlag(transport.shared_int()), transport.shared_int())
            entry, args = engine.main, (codec.token(), payload, child_control, child_messages,
                                        link.stop, link.run_counter, settings)
        else:  # ... or as messages on the control channel, through a relay in the child
            link = _RelayedLink(transport, codec, control, messages, RemoteStop(control, codec),
                                PlainCounter())
            entry, args = relayed_main, (codec.token(), payload, child_control, child_messages,
                                         settings)
        try:
            link.handle = transport.start(entry, *args)
        finally:
            child_control.close()
            child_messages.close()
            if link.handle is None:  # start failed: do not leak the parent's ends
                control.close()
                messages.close()
        return link

    def _start_on(self, pool: Any, codec: Codec, payload: list, timeout: float | None) -> _ParentLink:
        if not hasattr(pool, "imap") or not hasattr(pool, "transport"):
            raise TypeError(f"{type(self).__qualname__}.start(on=...): expected a Pool, got "
                            f"{type(pool).__name__}")
        transport, control, messages, handle = start_on(
            pool, self, codec, payload, settings_for(type(self)), timeout)
        link = _RemoteLink(transport, codec, control, messages, RemoteStop(control, codec),
                           PlainCounter())
        link.handle = handle
        return link

    def stop(self) -> None:
        """Ask the process to finish its current section, then run `__onfinish__` and
        `__result__`. Returns at once; `wait()` for the end. Inside the process (from a
        hook), the process stops itself the same way once the running hook returns."""
        send_held()  # a stop is a message too: held writes must be there before it
        self._link("stop").stop.set()

    def kill(self) -> None:
        """End the process at once: no `__onfinish__`, no result (`result()` then returns
        None; a death that was not asked for raises `ProcessDiedError`)."""
        link = self._parent_link("kill")
        link.killed = link.outcome is None
        if link.handle.wait(0) is None:
            link.kill()
        if not self._collect(0):
            # A remote worker's death reaches the control channel only with the transport's
            # heartbeats; the kill is certain, so do not wait for them.
            self._collect(0, dead=True)

    @property
    def is_alive(self) -> bool:
        link = self._sk
        return isinstance(link, _ParentLink) and link.outcome is None and link.handle.wait(0) is None

    @property
    def current_run(self) -> int:
        """Iterations finished so far (live while the process runs)."""
        link = self._sk
        if isinstance(link, _ParentLink) and link.outcome is None:
            link.refresh()
            return link.run_counter.value
        return self._sk_current_run

    @property
    def _current_run(self) -> int:
        """`current_run` under the name suitkaise's documented examples use inside hooks."""
        return self.current_run

    @_current_run.setter
    def _current_run(self, value: int) -> None:
        self._sk_current_run = value

    @property
    def process_timer(self) -> Sktimer:
        """The timer of complete iterations (prerun + run + postrun): `timers.full_run`."""
        return self.timers.full_run

    @modifiable
    def wait(self, timeout: float | None = None, *, _modifier_timeout: float | None = None) -> bool:
        """Wait for the process to end; False if it is still running after `timeout`."""
        self._parent_link("wait")
        timeout = seconds(f"{type(self).__qualname__}.wait(timeout)", timeout, zero=True)
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
        link = self._messages_link("tell")
        try:
            ordered_send(link.messages, link.codec.encode(engine.MESSAGE, obj))
        except ChannelClosed as exc:
            raise ProcessError(f"{type(self).__qualname__}.tell(): the other side is gone") from exc

    @modifiable
    def listen(self, timeout: float | None = None, *, _modifier_timeout: float | None = None) -> Any:
        """The next object the other side told; None after `timeout` or once it is gone."""
        link = self._messages_link("listen")
        timeout = seconds(f"{type(self).__qualname__}.listen(timeout)", timeout, zero=True)
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

    def _messages_link(self, action: str) -> _ParentLink | _ChildLink:
        link = self._link(action)
        if link.messages is None:
            raise StateError(f"{type(self).__qualname__}.{action}() in a Pool item: it runs inside "
                             f"the pool's worker and has no parent process to talk to; use a "
                             f"Share or start(on=pool) for a process that talks")
        return link

    def _parent_link(self, action: str) -> _ParentLink:
        link = self._link(action)
        if not isinstance(link, _ParentLink):
            raise StateError(f"{type(self).__qualname__}.{action}() is for the parent process")
        return link

    def _collect(self, timeout: float | None, dead: bool = False) -> bool:
        """Receive the child's outcome (or notice its death); True once it has ended.
        Another thread already waiting is waited for no longer than `timeout`. `dead`:
        the process is known to be gone; take its death as the outcome now."""
        link = self._sk
        deadline = Deadline(timeout)
        if not link.lock.acquire(timeout=-1 if timeout is None else timeout):
            return link.outcome is not None
        try:
            if link.outcome is not None:
                return True
            outcome = self._death_outcome(link) if dead else None
            while outcome is None:
                if link.early is None and not self._await_outcome(link, deadline.remaining()):
                    return False
                try:
                    frames, link.early = link.early or link.control.recv(), None
                except ChannelClosed:
                    outcome = self._death_outcome(link)
                    break
                if not link.take_run_report(frames):
                    outcome = link.codec.decode(frames)[1]
            link.settle()
            self._adopt(outcome)
            link.outcome = outcome
            link.control.close()
            return True
        finally:
            link.lock.release()

    @staticmethod
    def _await_outcome(link: _ParentLink, timeout: float | None) -> bool:
        """Wait until the control channel is readable, draining tells meanwhile."""
        deadline = Deadline(timeout)
        while True:
            left = deadline.remaining()
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
        code, how = link.death()
        run = link.run_counter.value
        if link.killed:
            return (None, self.timers, run, None)  # kill(): no result, and no failure
        lives = self.process_config.lives  # a crash is not retried: the state died with it
        unused = (f"; lives ({lives}) retry a section that raises, not a process that dies "
                  f"(for that, map it on a Pool with retries=)" if lives > 1 else "")
        error = ProcessDiedError(
            f"{type(self).__qualname__} (pid {link.handle.pid}) {how} during run {run} "
            f"without delivering a result{unused}", exitcode=code, current_run=run)
        return (error, self.timers, run, error)

    def _adopt(self, outcome: tuple) -> None:
        _, timers, current_run, error = outcome
        if timers is not None:  # None: the child could not rebuild the object (keep ours)
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
