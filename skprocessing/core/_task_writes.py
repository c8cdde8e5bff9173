"""Share writes a pool task holds until the pool accepts its result: the core's own rule.

A pool item can run more than once: its worker died, hung past its timeout or lost its
host after the item wrote, and the item runs again elsewhere. Whatever it did happens
once per run (at least once). For a Share made with `Share(exactly_once=True)`, the writes
a task makes are not sent when made: they are held here, in the worker, while its chunk
runs, travel inside the chunk's RESULT, and the head applies them when it takes that
result as the chunk's (once per chunk: a late duplicate is dropped with its writes). A run
whose result never arrives (its worker killed, its host lost, killed for its timeout)
leaves no trace in such a Share.

    worker: begin() · run the chunk (a Share client: holding() → hold(client, frames)) · end()
            → [(share key, [message frames, ...]), ...] or None, sent with the RESULT
    head:   apply(writes), before the result reaches the caller

The pool knows nothing of Shares and a Share nothing of pools: both talk to this module
(the Share registers how a head applies a share's writes: `set_applier`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Protocol

from ._exit import owns_process

__all__ = ["begin", "end", "holding", "hold", "apply", "set_applier", "TaskWrites"]

TaskWrites = list  # [(share key, [frames, ...]), ...]


class TaskHolder(Protocol):
    key: str


class _Scope:
    """What one running task's exactly-once Shares hold: share key → messages, in order."""

    def __init__(self) -> None:
        self.writes: dict[str, list] = {}


# A task in a process of its own holds the writes of every thread it starts. A task on a
# backend's thread (memory://: threads stand in for processes) holds only its own thread's:
# tasks running side by side in one interpreter must not mix their writes.
_process_scope: _Scope | None = None
_thread_scopes: dict[int, _Scope] = {}
_applier: Callable[[str, list], None] | None = None
_lock = threading.Lock()  # a thread of the task may write while the task ends


def _current() -> _Scope | None:
    return _process_scope or _thread_scopes.get(threading.get_ident())


def begin() -> None:
    """A pool task starts here: writes of exactly-once Shares are held."""
    global _process_scope
    with _lock:
        if owns_process():
            _process_scope = _Scope()
        else:
            _thread_scopes[threading.get_ident()] = _Scope()


def end() -> TaskWrites | None:
    """The task is over: what its Shares hold (None: nothing)."""
    global _process_scope
    with _lock:
        if owns_process():
            scope, _process_scope = _process_scope, None
        else:
            scope = _thread_scopes.pop(threading.get_ident(), None)
    if scope is None:
        return None
    return [(key, messages) for key, messages in scope.writes.items() if messages] or None


def holding() -> bool:
    return _current() is not None


def hold(holder: TaskHolder, frames: list) -> bool:
    """The running task keeps `frames`, a write to `holder`'s Share, for its result; False
    when no task runs any more (the caller sends them)."""
    with _lock:
        scope = _current()
        if scope is None:
            return False
        scope.writes.setdefault(holder.key, []).append(frames)
        return True


def set_applier(applier: Callable[[str, list], None]) -> None:
    global _applier
    _applier = applier


def apply(writes: TaskWrites) -> None:
    """Apply the held writes of an accepted result (on the head); raises `ShareError` when
    a Share cannot take them (never heard of here, or its coordinator gone)."""
    if _applier is None:  # no Share was ever imported here: none could have sent them
        from ..errors import ShareError
        raise ShareError("a task sent writes of a Share this process does not know")
    for key, messages in writes:
        _applier(key, messages)


def _forget_after_fork() -> None:
    # A process forked from inside a task is not the task: its writes go out as made.
    global _process_scope
    _process_scope = None
    _thread_scopes.clear()


os.register_at_fork(after_in_child=_forget_after_fork)

