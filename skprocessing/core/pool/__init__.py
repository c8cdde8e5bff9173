"""The Pool: map any callable over items on reusable worker processes.

    pool.py        the public `Pool` (state, arguments, modifiers)
    _scheduler.py  the thread that owns all I/O: dispatch, credits, faults
    _workers.py    the head's record of each worker; the acceptor thread
    _worker.py     the worker process's loop
    _call.py       one map call, shared by the scheduler and the caller
    _chunks.py     chunk sizes and lazy reading of the input
    _results.py    the caller's side: lists and iterators of results
    _messages.py   the wire protocol
"""

from .pool import Pool, PoolState
from ._results import ResultIterator

__all__ = ["Pool", "PoolState", "ResultIterator"]
