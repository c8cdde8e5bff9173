"""`Executor`: the `concurrent.futures` interface over a `Pool`, on any transport.

    with Executor(4) as ex:                                 # or transport="tcp://...", key=...
        future = ex.submit(lambda x: x * x, 7)              # lambdas and closures work
        for done in as_completed([future, ex.submit(f, 1)]):
            print(done.result())
        for value in ex.map(f, range(1000), progress=True):  # a live bar
            ...

Each `submit` is a one-item call of the pool; its `concurrent.futures.Future` turns
RUNNING when the scheduler hands the item to a worker (one at a time per worker unless
`prefetch=` says more, so that is when it starts), so `cancel()` of a PENDING future is atomic against the dispatch and its item never runs.
The scheduler thread only records what finished (`Call.watch`); one completion thread
per executor sets the futures, so done-callbacks (user code) never stall the pool.

`map` is one pool call over every item (chunked, eager like the stdlib's, its results
read lazily, `progress=` as for `Pool.map`), not one future per item.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Executor as _StdExecutor, Future
# (imports multiprocessing, which we otherwise never do: the price of being caught by
# `except BrokenProcessPool:`; paid only when the Executor is first used)
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any

from .._seconds import seconds as _seconds
from ..errors import ProcessDiedError, StateError
from ..transports.base import Transport
from .pool._call import TIMED_OUT, Call
from .pool._progress import ProgressSpec, check_progress
from .pool._results import ResultIterator, item_error
from .pool.pool import Pool, _check_options

__all__ = ["Executor", "BrokenWorkerError"]

log = logging.getLogger("skprocessing.executor")


class BrokenWorkerError(ProcessDiedError, BrokenProcessPool):
    """The worker running this task died (killed, crashed, exited). Only the futures
    whose items it held get it; the executor replaces the worker and goes on. An
    `except BrokenProcessPool:` written for `ProcessPoolExecutor` catches it."""


class Executor(_StdExecutor):
    """A `concurrent.futures.Executor` whose tasks run on skprocessing worker processes.

    `workers` (or the stdlib's `max_workers`): how many (default: the CPU count; 0 for a
    head that only workers joining by address use). `transport`, `key`, `serializer`: as for `Pool`. `prefetch`: tasks
    a worker holds at once (default 1: a task waits at the head until a worker is free).
    `submit` returns a real `concurrent.futures.Future` (`as_completed`, `wait`,
    `add_done_callback`, `cancel` all work); a worker's death fails only the futures it
    held, with `BrokenWorkerError` (a `BrokenProcessPool`). `submit` or `map` after
    `shutdown` raises RuntimeError (`StateError`).
    """

    def __init__(self, workers: int | None = None, *, transport: str | Transport | None = None,
                 key: bytes | str | None = None, serializer: Any = None,
                 prefetch: int | None = None, max_workers: int | None = None):
        if max_workers is not None:  # the stdlib's name, for code moving over as it is
            if workers is not None:
                raise TypeError("Executor: give workers or max_workers, not both")
            workers = max_workers
        # One task per worker at a time by default: a task waits at the head, not in a
        # busy worker's queue, so any worker that comes free takes it, RUNNING means a
        # worker has it, and cancel() works until then. (More: faster tiny tasks.)
        self._pool = Pool(workers, transport=transport, key=key, serializer=serializer,
                          prefetch=1 if prefetch is None else prefetch)
        self._lock = threading.Lock()
        self._shutdown = False
        self._pending: dict[Call, _Watch] = {}  # submitted calls whose future is not settled
        self._maps: weakref.WeakSet[Call] = weakref.WeakSet()
        self._finished: queue.SimpleQueue[Call | None] = queue.SimpleQueue()
        self._completer = threading.Thread(target=_complete, name="skprocessing-executor",
                                           args=(self._pool, self._pending, self._lock,
                                                 self._finished), daemon=True)
        self._completer.start()
        # Dropped without shutdown(): the completion thread ends once the work is done,
        # and closes the pool (its workers go too).
        weakref.finalize(self, self._finished.put, None)
        _LIVE.add(self)

    @property
    def pool(self) -> Pool:
        """The `Pool` underneath (its `status()`, `address`, `transport`)."""
        return self._pool

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Schedule `fn(*args, **kwargs)` on a worker; a `Future` of its result."""
        if not callable(fn):
            raise TypeError(f"Executor.submit: fn must be callable, not {type(fn).__name__} {fn!r}")
        future: Future = Future()
        with self._lock:
            self._check_open("submit")
            task = partial(fn, **kwargs) if kwargs else fn
            watch = _Watch(future, self._finished)
            call = self._pool._submit("map", True, task, [args], None, None, None,
                                      name="Executor.submit", watch=watch)
            self._pending[call] = watch
        # Cancelling a PENDING future drops its call now (it never reaches a worker).
        future.add_done_callback(partial(_drop_if_cancelled, self._pool, weakref.ref(call)))
        return future

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int | None = None, progress: ProgressSpec = None) -> Iterator[Any]:
        """`fn(*args)` for the items of `iterables` taken together, as `zip` does; an
        iterator of the results in input order. As the stdlib's: the iterables are read
        at once and every item is scheduled now (whether or not the results are read);
        a result not there `timeout` seconds after this call raises `TimeoutError`; a
        task's error is raised when its result is reached, and ends the iteration
        (leaving the rest cancelled). `chunksize`: items per message (default:
        automatic). `progress`: as for `Pool.map` (True, or a callable(done, total)),
        advanced as the results are read."""
        deadline = None
        timeout = _seconds("Executor.map(timeout)", timeout)
        if timeout is not None:
            deadline = time.monotonic() + timeout
        # Every argument checked before the iterables are read: a mistake loses no input.
        if not callable(fn):
            raise TypeError(f"Executor.map: fn must be callable, not {type(fn).__name__} {fn!r}")
        check_progress(progress, "Executor.map")
        _check_options(chunksize, None, 0)
        self._check_open("map")
        items = list(zip(*iterables))
        with self._lock:
            self._check_open("map")
            call = self._pool._submit("map", True, fn, items, chunksize, None, None,
                                      name="Executor.map", progress=progress)
            self._maps.add(call)
        return _results(self._pool, call, deadline)

    def _check_open(self, method: str) -> None:
        if self._shutdown:
            raise StateError(f"Executor.{method}(): cannot schedule new futures after shutdown")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new tasks from now on. `cancel_futures`: cancel every task not yet running
        (and what `map` calls have not started). `wait`: return once every task has
        finished and the workers have exited; else at once, the rest ending on its own.
        Calling it again is harmless."""
        with self._lock:
            first = not self._shutdown
            self._shutdown = True
            if cancel_futures:
                pending = [watch.future for watch in self._pending.values()]
                maps = list(self._maps)
        if cancel_futures:
            for future in pending:
                future.cancel()  # a RUNNING one refuses, as in the stdlib
            for call in maps:
                self._pool._cancel(call, kill=False)
                call.fail(CancelledError("Executor.shutdown(cancel_futures=True) cancelled "
                                         "the items of this map that had not started"))
        if first:
            # The completion thread ends once nothing is pending, and closes the pool.
            self._finished.put(None)
        if wait and threading.current_thread() is not self._completer:  # (from a callback)
            try:
                self._completer.join()
                self._pool.close()
            except BaseException:  # Ctrl-C while waiting: no worker is left behind
                self._pool.terminate()
                raise

    def __exit__(self, exc_type: Any, *exc_info: Any) -> bool:
        if exc_type is not None and not issubclass(exc_type, Exception):
            # Ctrl-C (or SystemExit) in the block: stop, do not wait. Queued tasks are
            # cancelled, running ones end with StateError, no worker is left behind.
            self.shutdown(wait=False, cancel_futures=True)
            self._pool.terminate()
            self._completer.join(10.0)
        else:
            self.shutdown(wait=True)  # as the stdlib: wait, also after an error
        return False

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "open"
        return f"<skprocessing.Executor workers={self._pool.workers} {state}>"

    def __reduce__(self):
        raise TypeError("an Executor cannot be sent to another process; create one there instead")


class _Watch:
    """The scheduler thread's hooks for one submitted call (see `Call.watch`)."""

    __slots__ = ("future", "finished", "_lock", "_claimed")

    def __init__(self, future: Future, finished: queue.SimpleQueue):
        self.future = future
        self.finished = finished
        self._lock = threading.Lock()
        self._claimed: bool | None = None

    def claim(self) -> bool:
        """True: the future is RUNNING (from now, or since an earlier claim); False: it was
        cancelled, and its waiters (`wait`, `as_completed`) are told. Atomic against
        `Future.cancel()`, and asked once of the future whoever asks first (the scheduler
        dispatching it, or the completion thread settling a call that never ran)."""
        with self._lock:
            if self._claimed is None:
                self._claimed = self.future.set_running_or_notify_cancel()
            return self._claimed

    def dispatching(self, call: Call) -> bool:
        return self.claim()  # a retried item (its worker died) is running already

    def changed(self, call: Call) -> None:
        self.finished.put(call)


def _drop_if_cancelled(pool: Pool, ref: weakref.ref, future: Future) -> None:
    # A weak reference: a Future keeps its callbacks, and must not keep the call's input.
    call = ref()
    if call is not None and future.cancelled() and not call.done:
        pool._abort(call, kill=False)


def _complete(pool: Pool, pending: dict[Call, _Watch], lock: threading.Lock,
              finished: queue.SimpleQueue) -> None:
    """The completion thread: settle each future whose call has news; end when shut down
    and nothing is pending any more, closing the pool."""
    stopping = False
    while True:
        if stopping:
            with lock:
                if not pending:
                    break
        call = finished.get()
        if call is None:
            stopping = True
        else:
            _settle(pool, pending, lock, call)
        del call  # hold nothing of a settled task while waiting for the next
    try:
        pool.close()  # lets map calls finish; their results stay readable
    except BaseException:
        log.exception("closing the Executor's pool failed")
        pool.terminate()


def _settle(pool: Pool, pending: dict[Call, _Watch], lock: threading.Lock, call: Call) -> None:
    with lock:
        watch = pending.get(call)
    if watch is None:
        return  # already settled (a later notice of the same call)
    outcome = _outcome(call)
    if outcome is None:
        return  # nothing to tell yet
    with lock:
        pending.pop(call, None)
    pool._forget(call)
    call.watch = None  # the call may linger in a worker's cache: not its result
    kind, value = outcome
    if not watch.claim():
        return  # cancelled (it never reached a worker): its waiters are told
    try:
        if kind == "result":
            watch.future.set_result(value)
        else:
            watch.future.set_exception(value)
    except Exception:  # InvalidStateError: settled by someone else meanwhile
        log.debug("future of %s was already settled", call.name, exc_info=True)


def _outcome(call: Call) -> tuple[str, Any] | None:
    """("result", value) or ("error", exception) once `call` has an answer, else None."""
    try:
        got = call.get(time.monotonic())  # never waits: the deadline is now
    except BaseException as exc:  # the call failed: cancelled, terminated, a broken pool
        return "error", exc
    if got is TIMED_OUT:
        return None
    if got is None:
        return "error", CancelledError(f"{call.name} was cancelled")
    start, values, errors = got
    if errors:
        return "error", _broken_if_died(item_error(call, start, errors[0]))
    return "result", values[0]


def _broken_if_died(error: BaseException) -> BaseException:
    if isinstance(error, ProcessDiedError) and not isinstance(error, BrokenWorkerError):
        broken = BrokenWorkerError(str(error), exitcode=error.exitcode)
        broken.__cause__ = error
        return broken
    return error


def _results(pool: Pool, call: Call, deadline: float | None) -> Iterator[Any]:
    """`Executor.map`'s iterator. A generator, so one never started (its results never
    read) leaves the call running, as the stdlib's does; once started, leaving it early
    (an error, close(), garbage collection) cancels what has not started."""
    left = None if deadline is None else deadline - time.monotonic()
    results = ResultIterator(pool, call, True, left)
    try:
        while True:
            try:
                value = next(results)
            except StopIteration:
                return
            except ProcessDiedError as exc:
                raise _broken_if_died(exc) from exc
            yield value
    finally:
        results.close(kill=False)


# Executors still open when the interpreter exits finish their work first, as the
# stdlib's do (a `with` block, or shutdown(), is the usual way).
_LIVE: weakref.WeakSet[Executor] = weakref.WeakSet()


def _shutdown_all() -> None:
    for executor in list(_LIVE):
        try:
            executor.shutdown(wait=True)
        except Exception:
            log.exception("shutting down %r at exit failed", executor)


threading._register_atexit(_shutdown_all)  # before the threads are joined, as the stdlib does
