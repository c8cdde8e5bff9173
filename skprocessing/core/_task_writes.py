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

__all__ = ["begin", "end", "holding", "hold", "apply", "set_applier", "TaskWrites"]

TaskWrites = list  # [(share key, [frames, ...]), ...]


class TaskHolder(Protocol):
    key: str
    held_task_writes: list

    def take_task_writes(self) -> list: ...


_scope: dict[int, TaskHolder] | None = None  # while a pool task runs here: who holds writes
_applier: Callable[[str, list], None] | None = None
_lock = threading.Lock()  # a thread of the task may write while the task ends


def begin() -> None:
    """A pool task starts in this process: writes of exactly-once Shares are held."""
    global _scope
    _scope = {}


def end() -> TaskWrites | None:
    """The task is over: what its Shares hold, taken from them (None: nothing)."""
    global _scope
    with _lock:
        scope, _scope = _scope, None
    if not scope:
        return None
    writes = [(holder.key, holder.take_task_writes()) for holder in scope.values()]
    return [entry for entry in writes if entry[1]] or None


def holding() -> bool:
    return _scope is not None


def hold(holder: TaskHolder, frames: list) -> bool:
    """`holder` keeps `frames` for the running task (given up at `end`, which takes the
    holder's lock: call this under it); False when no task runs any more (send them)."""
    with _lock:
        if _scope is None:
            return False
        _scope[id(holder)] = holder
        holder.held_task_writes.append(frames)
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
    global _scope
    _scope = None


os.register_at_fork(after_in_child=_forget_after_fork)

