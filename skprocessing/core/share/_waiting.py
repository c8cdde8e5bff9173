"""Blocking methods of shared objects: waited for by the caller, never by the coordinator.

The coordinator serves every client from one thread, so `share.q.get()` on an empty
queue, run there, would stop the Share for everyone, including the process that was
about to put something. For the blocking methods of the standard library's
synchronisation types the proxy calls the non-blocking form instead and, while that
finds nothing, tries again after a short pause (0.5 ms, doubling to 20 ms) until the
caller's own timeout. A queue, lock, semaphore or event on a Share then works across
processes as it does across threads: same arguments, same results, same exceptions.
(An RLock is left alone: in the coordinator every call comes from one thread, so it
never blocks and excludes no one.)
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

from ..._deadline import Deadline

__all__ = ["waiting_method"]

Call = Callable[[str, tuple, dict], Any]  # (method name, args, kwargs) -> its answer
_FIRST_PAUSE, _LONGEST_PAUSE = 0.0005, 0.02


def _retry(attempt: Callable[[], tuple[bool, Any]], timeout: float | None) -> tuple[bool, Any]:
    """(True, value) once `attempt` succeeds; (False, None) when `timeout` runs out."""
    deadline = Deadline(None if timeout is None else max(0.0, timeout))
    pause = _FIRST_PAUSE
    while True:
        done, value = attempt()
        if done:
            return True, value
        if deadline.expired():
            return False, None
        time.sleep(deadline.remaining(pause))
        pause = min(pause * 2, _LONGEST_PAUSE)


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _queue_get(call: Call, args: tuple, kwargs: dict) -> Any:
    if not _arg(args, kwargs, 0, "block", True):
        return call("get", (False,), {})

    def attempt() -> tuple[bool, Any]:
        try:
            return True, call("get", (False,), {})
        except queue.Empty:
            return False, None
    done, value = _retry(attempt, _arg(args, kwargs, 1, "timeout", None))
    if not done:
        raise queue.Empty
    return value


def _queue_put(call: Call, args: tuple, kwargs: dict) -> None:
    item = _arg(args, kwargs, 0, "item", None)
    if not _arg(args, kwargs, 1, "block", True):
        return call("put", (item, False), {})

    def attempt() -> tuple[bool, Any]:
        try:
            call("put", (item, False), {})
            return True, None
        except queue.Full:
            return False, None
    if not _retry(attempt, _arg(args, kwargs, 2, "timeout", None))[0]:
        raise queue.Full


def _acquire(call: Call, args: tuple, kwargs: dict) -> bool:
    if not _arg(args, kwargs, 0, "blocking", True):
        return call("acquire", (False,), {})
    timeout = _arg(args, kwargs, 1, "timeout", None)
    timeout = None if timeout is None or timeout < 0 else timeout  # Lock's -1: no limit
    return _retry(lambda: (call("acquire", (False,), {}), True), timeout)[0]


def _event_wait(call: Call, args: tuple, kwargs: dict) -> bool:
    return _retry(lambda: (call("is_set", (), {}), True), _arg(args, kwargs, 0, "timeout", None))[0]


_QUEUE = {"get": _queue_get, "put": _queue_put}
_WAITING: dict[str, dict[str, Callable[[Call, tuple, dict], Any]]] = {
    "queue.Queue": _QUEUE, "queue.LifoQueue": _QUEUE, "queue.PriorityQueue": _QUEUE,
    "_queue.SimpleQueue": {"get": _queue_get},
    "_thread.lock": {"acquire": _acquire},
    "threading.Semaphore": {"acquire": _acquire},
    "threading.BoundedSemaphore": {"acquire": _acquire},
    "threading.Event": {"wait": _event_wait},
}


def waiting_method(type_key: str, name: str) -> Callable[[Call, tuple, dict], Any] | None:
    """How to wait for `name` of a shared object of type `type_key`, if it can block."""
    methods = _WAITING.get(type_key)
    return None if methods is None else methods.get(name)
