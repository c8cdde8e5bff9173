"""The Pool: map any callable over items on reusable worker processes.

    pool.py        the public `Pool` (state, arguments, modifiers)
    _scheduler.py  the thread that owns all I/O, composed of the parts below
    _workers.py    the head's register of its workers (Workers); the acceptor thread
    _backlog.py    the work no worker holds yet: calls, the retry queue, splitting
    _dispatch.py   chunks to workers' free credits
    _faults.py     what the scheduler does when a worker dies, hangs or is cancelled
    _hosts.py      worker hosts' agents, dead processes, maps waiting for a worker
    worker_host.py `python -m skprocessing worker URL`: a worker host joining a head
    _worker.py     the worker process's loop
    _call.py       one map call, shared by the scheduler and the caller
    _chunks.py     chunk sizes and lazy reading of the input
    _results.py    the caller's side: lists and iterators of results
    _messages.py   the wire protocol
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors see; at run time, __getattr__ below
    from ._results import ResultIterator
    from .pool import Pool, PoolState

__all__ = ["Pool", "PoolState", "ResultIterator"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so a worker process (which imports only `_worker`) does not
    # pay for the head's modules when it starts.
    if name in ("Pool", "PoolState"):
        from . import pool
        return getattr(pool, name)
    if name == "ResultIterator":
        from ._results import ResultIterator
        return ResultIterator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
