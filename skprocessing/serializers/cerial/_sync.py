"""Reducers for `threading` primitives, threads and `queue` queues.

Synchronization objects come back as fresh equivalents: a lock is rebuilt unlocked (it is
usually serialized while its owner holds it, `with self.lock: send(self)`, and a copy
that arrives locked would deadlock the receiver), an event keeps its flag, a semaphore
its counter, a queue its items, a `threading.local` the serializing thread's values. A
thread becomes a `ThreadReconnector`.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from ._table import register_reducer
from .reconnectors import ThreadReconnector

__all__: list[str] = []

_LOCK = type(threading.Lock())
_RLOCK = type(threading.RLock())


def _reduce_lock(lock: Any) -> Any:
    return threading.Lock, ()


def _reduce_rlock(lock: Any) -> Any:
    return threading.RLock, ()


def rebuild_event(is_set: bool) -> threading.Event:
    event = threading.Event()
    if is_set:
        event.set()
    return event


def _reduce_event(event: threading.Event) -> Any:
    return rebuild_event, (event.is_set(),)


def _reduce_condition(condition: threading.Condition) -> Any:
    # The underlying lock travels as itself, so an object sharing it shares it again.
    return threading.Condition, (condition._lock,)


def rebuild_semaphore(cls: type, value: int, initial: int | None) -> threading.Semaphore:
    semaphore = cls(initial if initial is not None else value)
    semaphore._value = value  # the counter as it was, not as it started
    return semaphore


def _reduce_semaphore(semaphore: threading.Semaphore) -> Any:
    return rebuild_semaphore, (type(semaphore), semaphore._value,
                               getattr(semaphore, "_initial_value", None))


def _reduce_barrier(barrier: threading.Barrier) -> Any:
    return threading.Barrier, (barrier.parties, barrier._action, barrier._timeout)


_THREAD_INTERNALS = frozenset(threading.Thread(target=None).__dict__)


def _reduce_thread(thread: threading.Thread) -> Any:
    # A finished thread has dropped its target; it comes back with none.
    attributes = {k: v for k, v in thread.__dict__.items() if k not in _THREAD_INTERNALS}
    return ThreadReconnector, (type(thread), thread.name, getattr(thread, "_target", None),
                               tuple(getattr(thread, "_args", ())),
                               dict(getattr(thread, "_kwargs", {})), thread.daemon, attributes)


def rebuild_queue(cls: type, maxsize: int, items: list, attributes: dict[str, Any]) -> Any:
    q = cls(maxsize)
    q.__dict__.update(attributes)
    q.queue.extend(items)  # in the stored order: for a PriorityQueue, already a heap
    q.unfinished_tasks = len(items)
    return q


_QUEUE_INTERNALS = frozenset(queue.Queue().__dict__)


def _reduce_queue(q: queue.Queue) -> Any:
    with q.mutex:  # a consistent snapshot of the items
        items = list(q.queue)
    attributes = {k: v for k, v in q.__dict__.items() if k not in _QUEUE_INTERNALS}
    return rebuild_queue, (type(q), q.maxsize, items, attributes)


def rebuild_simple_queue(items: list) -> queue.SimpleQueue:
    q: queue.SimpleQueue = queue.SimpleQueue()
    for item in items:
        q.put(item)
    return q


def _reduce_simple_queue(q: queue.SimpleQueue) -> Any:
    # SimpleQueue cannot be inspected: take the items out and put them back.
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            break
    for item in items:
        q.put(item)
    return rebuild_simple_queue, (items,)


def rebuild_local(cls: type, state: dict[str, Any]) -> threading.local:
    local = cls.__new__(cls)  # not __init__: a subclass's arguments are not known here
    local.__dict__.update(state)
    return local


def _reduce_local(local: threading.local) -> Any:
    # Only the serializing thread's values can be seen; they become the loading thread's.
    return rebuild_local, (type(local), dict(local.__dict__))


register_reducer(_LOCK, _reduce_lock)
register_reducer(_RLOCK, _reduce_rlock)
register_reducer(threading._PyRLock, _reduce_rlock)  # type: ignore[attr-defined]
register_reducer(threading.Event, _reduce_event)
register_reducer(threading.Condition, _reduce_condition)
register_reducer(threading.Semaphore, _reduce_semaphore)  # BoundedSemaphore is a subclass
register_reducer(threading.Barrier, _reduce_barrier)
register_reducer(threading.Thread, _reduce_thread)
register_reducer(queue.Queue, _reduce_queue)  # LifoQueue and PriorityQueue are subclasses
register_reducer(queue.SimpleQueue, _reduce_simple_queue)
register_reducer(threading.local, _reduce_local)
