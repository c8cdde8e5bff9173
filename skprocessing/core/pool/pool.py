"""`Pool`: map any callable over items on reusable worker processes.

    with Pool(4) as pool:
        squares = pool.map(lambda x: x * x, range(1000))
        for row in pool.imap(parse, open("big.csv")):         # streams, bounded memory
            ...
        pairs = pool.star().map(pow, [(2, 3), (3, 2)])          # unpack each item
        future = pool.map.timeout(30).background()(fn, items)  # modifiers combine

The public class only checks state and arguments and turns a call into a `Call`; the
scheduler (`_scheduler.py`) does the work.
"""

from __future__ import annotations

import enum
from concurrent.futures import CancelledError
import itertools
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..._deadline import Deadline
from ..._seconds import seconds
from ...errors import SerializationError, StateError
from ...serializers.codec import Codec
from ...transports import get_transport
from ...transports.base import Capability, Transport
from .._destination import serialize_for
from ..modifiers import Cancel, modifiable
from ..process import Skprocess
from ._call import Call
from ._chunks import MAX_CHUNK, Profile
from ._messages import FUNCTION_BODY
from ._progress import ProgressSpec, make_reporter
from ._results import ResultIterator, collect
from ._scheduler import Scheduler

__all__ = ["Pool", "PoolState"]

_LISTS = ("map", "unordered_map")  # the modes that return a list, not an iterator
_PROFILES = 64                     # functions whose measured cost per item is remembered


class PoolState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"
    TERMINATED = "terminated"


class _Maps:
    """The four map methods; `Pool` has them, and so does `pool.star()`."""

    _pool: Pool
    _star: bool

    @modifiable(cancellable=True)
    def map(self, fn: Callable[..., Any], items: Iterable[Any], *, chunksize: int | None = None,
            timeout: float | None = None, retries: int | None = None,
            progress: ProgressSpec = None, _modifier_timeout: float | None = None,
            _modifier_cancel: Cancel | None = None) -> list:
        """`[fn(item) for item in items]`, in input order, run on the workers.

        `fn`: any callable (a lambda, a closure, a bound method, an `Skprocess` subclass).
        `chunksize`: items sent per message (default: automatic). `timeout`: seconds per
        item (None or math.inf: no limit); an item that runs over fails with
        `ProcessTimeoutError` naming it, and its worker is replaced (items are then sent
        one at a time, whatever `chunksize` says). `retries`: how often an item whose
        worker died is tried again (default 0). The pool's own `chunksize`, `timeout` and
        `retries` are the defaults.
        `progress`: True for a live bar (done/total, rate, ETA; tqdm if installed, else a
        line on stderr), or a callable `progress(done, total)` (total None for an input of
        unknown length).

        Raises the first task error to arrive (its type, with the worker's traceback as
        `__cause__`), `ProcessDiedError` for an item whose worker died, `SerializationError`
        naming the item, `ResultTimeoutError` from `.timeout(s)` (the whole call), and
        `StateError` on a closed pool. `.background()` / `.asynced()`: cancelling the
        Future or the awaiting task stops the call (no queued item starts).
        """
        return self._pool._run("map", self._star, fn, items, chunksize, timeout, retries,
                               _modifier_timeout, _modifier_cancel, progress=progress)

    @modifiable(cancellable=True)
    def unordered_map(self, fn: Callable[..., Any], items: Iterable[Any], *,
                      chunksize: int | None = None, timeout: float | None = None,
                      retries: int | None = None, progress: ProgressSpec = None,
                      _modifier_timeout: float | None = None,
                      _modifier_cancel: Cancel | None = None) -> list:
        """Like `map` (the same arguments and errors), but the list is in completion
        order: the fastest items first."""
        return self._pool._run("unordered_map", self._star, fn, items, chunksize, timeout,
                               retries, _modifier_timeout, _modifier_cancel, progress=progress)

    @modifiable(iterator=True)
    def imap(self, fn: Callable[..., Any], items: Iterable[Any], *, chunksize: int | None = None,
             timeout: float | None = None, retries: int | None = None,
             progress: ProgressSpec = None, _modifier_timeout: float | None = None,
             _modifier_cancel: Cancel | None = None) -> ResultIterator:
        """An iterator of results in input order, streaming: the input is read lazily (at
        most a window of items, and of `READ_AHEAD_BYTES`, ahead of the reader) and results
        arrive while items are still being sent. The same arguments as `map`. A task's
        error is raised at its position; iteration may go on. `close()` it, or use it as
        a context manager (`with pool.imap(...) as results:`), to stop early: nothing
        more of the input is read. `.timeout(s)` bounds the whole iteration.
        `.background()`: a Future of the list. `.asynced()`: `await` it for the list, or
        `async for result in pool.imap.asynced()(fn, items)` to stream."""
        return self._pool._run("imap", self._star, fn, items, chunksize, timeout, retries,
                               _modifier_timeout, _modifier_cancel, progress=progress)

    @modifiable(iterator=True)
    def unordered_imap(self, fn: Callable[..., Any], items: Iterable[Any], *,
                       chunksize: int | None = None, timeout: float | None = None,
                       retries: int | None = None, progress: ProgressSpec = None,
                       _modifier_timeout: float | None = None,
                       _modifier_cancel: Cancel | None = None) -> ResultIterator:
        """Like `imap` (the same arguments, errors and modifiers), in completion order."""
        return self._pool._run("unordered_imap", self._star, fn, items, chunksize, timeout,
                               retries, _modifier_timeout, _modifier_cancel, progress=progress)


class _StarMaps(_Maps):
    def __init__(self, pool: Pool):
        self._pool = pool
        self._star = True


class Pool(_Maps):
    """Worker processes, started once and reused, that map any callable over items.

    `workers`: how many (default: the CPU count; on a cluster engine, the cluster's).
    `transport`, `serializer`: an object, URL or name (defaults: local processes, the
    default serializer); `transport` may also be an engine's client (`distributed.Client`). `chunksize`,
    `timeout` (per item), `retries`: defaults for every map. `prefetch`: chunks a worker
    may hold at once (its credits; default 2 locally, 4 over a network transport). Context manager: `close()` on a normal exit,
    `terminate()` on an exception.

    Two kinds of time limit: `timeout=` is per item (the item fails with
    `ProcessTimeoutError`, its worker is replaced, the other items go on); the
    `.timeout(s)` modifier limits the whole call (for an iterator, the whole iteration)
    and raises `ResultTimeoutError`, cancelling what is left of the call.

    Across hosts (the ZeroMQ transport): `Pool(0, transport="tcp://0.0.0.0:5555", key=...)`
    binds there and starts no worker itself; worker hosts join with `python -m skprocessing
    worker tcp://HEAD:5555 --workers N` (same key) and may come and go at any time. A map
    with no worker connected (none joined yet, or the last one left and its work was
    requeued) waits for one: at most its per-item `timeout` (`ProcessTimeoutError`) or
    its `.timeout(s)` (`ResultTimeoutError`); `close(timeout)` or `terminate()` end it
    with `StateError`. `key`:
    the shared signing key, for a transport that takes one (else `SKPROCESSING_KEY`).
    `status()` tells who is connected and how far the work is. `transport`: the
    `Transport` in use; the pool closes it with itself when it built it.

    Raises `StateError` from every map once closed or terminated.
    """

    def __init__(self, workers: int | None = None, *, transport: str | Transport | None = None,
                 serializer: Any = None, chunksize: int | None = None,
                 timeout: float | None = None, retries: int = 0, prefetch: int | None = None,
                 key: bytes | str | None = None):
        if workers is not None and not (type(workers) is int and workers == 0):  # 0: a head only
            _positive_int("workers", workers)
        if prefetch is not None:
            _positive_int("prefetch", prefetch)
        timeout = _check_options(chunksize, timeout, retries)
        self._pool = self
        self._star = False
        self._defaults = (chunksize, timeout, retries)
        self._codec = Codec(serializer)
        self._state = PoolState.OPEN
        self._lock = threading.RLock()  # reentrant: _forget runs from finalizers, maybe under it
        self._calls: set[Call] = set()
        self._profiles: dict[int, Profile] = {}  # measured cost per item, by function
        self._ids = itertools.count(1)
        transport, owned = _transport(transport, key)
        if workers is None:  # an engine's CPU count, else this machine's
            workers = _default_workers(transport, owned)
        self.workers = workers
        network = Capability.CROSS_HOST in transport.capabilities
        if workers == 0 and not network:
            raise ValueError("workers=0 makes a head that only workers joining by address "
                             "use; give a network transport, e.g. transport='tcp://0.0.0.0:5555'")
        if prefetch is None:
            # A network round trip costs more than a local one: keep more chunks in flight.
            prefetch = 4 if network else 2
        transport.prepare()  # before the scheduler's threads: a backend may still fork safely
        self._transport = transport
        try:
            self._scheduler = Scheduler(transport, self._codec, workers, prefetch, owns_transport=owned)
        except BaseException:
            if owned:  # no scheduler thread to close it
                transport.close()
            raise

    def star(self) -> _Maps:
        """The same four methods, each item unpacked as arguments: `fn(*item)`."""
        return _StarMaps(self)

    @property
    def state(self) -> PoolState:
        return self._state

    @property
    def transport(self) -> Transport:
        """The `Transport` this pool uses (read-only). One the pool built, from a URL,
        a name, or `key=`, is closed with the pool (`close()`, `terminate()`); one you
        passed in stays open, and is yours to close."""
        return self._transport

    @property
    def address(self) -> str:
        """Where workers connect to ask for work; a worker started elsewhere may join here
        (`_worker.worker_main(transport, address, codec token, None, credits)`)."""
        return self._scheduler.address

    def _neighbour_address(self) -> str | None:
        """Where a service for this pool's workers listens (a Share, a remote process's
        links): beside the pool, which the workers already reach, at a fresh address."""
        return self._transport.address_beside(self.address)

    def status(self) -> dict[str, Any]:
        """What the pool is doing now: `workers` (connected), `hosts` ({host: workers}),
        `agents` (worker hosts' agents), `in_flight` and `queued` items, `done` (items
        finished since the pool started), `calls` running, `lost_workers`,
        `duplicates_dropped`, and `per_worker` details. Raises `StateError` once closed."""
        if self._state is not PoolState.OPEN:
            raise StateError(f"Pool.status(): the pool is {self._state.value}")
        return self._scheduler.status()

    @property
    def worker_pids(self) -> list[int]:
        """Pids of the worker processes this pool started that are running now."""
        return self._scheduler.worker_pids()

    # -- lifetime ----------------------------------------------------------------------------
    def close(self, timeout: float | None = None) -> None:
        """Refuse new maps, let running ones finish, stop the workers and wait for them.

        An `imap` nobody reads any more cannot finish: it is cancelled, and reading it
        later raises `StateError`. With a `timeout`, whatever still runs after that many
        seconds is ended as by `terminate()`."""
        timeout = seconds("Pool.close(timeout)", timeout, zero=True)
        with self._lock:
            if self._state is not PoolState.OPEN:
                return
            self._state = PoolState.CLOSED
        deadline = Deadline(timeout)
        try:
            for call in list(self._calls):
                while not call.wait_done(0.05):
                    if call.blocked:
                        self._cancel(call, kill=False)
                        call.fail(StateError("the pool was closed before this imap was read to the end"))
                    if deadline.expired():
                        self.terminate()
                        return
            if not self._scheduler.stop(deadline.remaining()) and timeout is not None:
                self.terminate()
        except BaseException:  # Ctrl-C while closing: do not leave workers behind
            self.terminate()
            raise

    def terminate(self) -> None:
        """Kill the workers now; maps still running raise `StateError`."""
        with self._lock:
            if self._state is PoolState.TERMINATED:
                return
            self._state = PoolState.TERMINATED
        self._scheduler.stop(10.0, terminate=True)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.terminate()

    def __del__(self) -> None:
        if getattr(self, "_state", None) is PoolState.OPEN and hasattr(self, "_scheduler"):
            self._state = PoolState.TERMINATED
            self._scheduler.stop(0.0, terminate=True)

    def __repr__(self) -> str:
        return f"<Pool workers={self.workers} {self._state.value}>"

    def __reduce__(self):
        raise TypeError("a Pool cannot be sent to another process; create one there instead")

    # -- internals ---------------------------------------------------------------------------
    def _run(self, mode: str, star: bool, fn: Callable[..., Any], items: Iterable[Any],
             chunksize: int | None, timeout: float | None, retries: int | None,
             seconds: float | None, cancel: Cancel | None = None,
             progress: ProgressSpec = None) -> Any:
        call = self._submit(mode, star, fn, items, chunksize, timeout, retries, progress=progress)
        if cancel is not None:  # .background() / .asynced(): cancelling the Future stops it
            cancel.bind(lambda: self._abort(call))
        ordered = not mode.startswith("unordered")
        if mode in _LISTS:
            return collect(self, call, ordered, seconds)
        return ResultIterator(self, call, ordered, seconds)

    def _submit(self, mode: str, star: bool, fn: Callable[..., Any], items: Iterable[Any],
                chunksize: int | None, timeout: float | None, retries: int | None, *,
                name: str | None = None, progress: ProgressSpec = None,
                watch: Any = None) -> Call:
        """`progress`: the user's `progress=` (see `_progress.make_reporter`); `watch`:
        the scheduler's hooks for the call (see `Call.watch`; the Executor's)."""
        name = name or f"Pool.{'star().' if star else ''}{mode}"
        reporter = make_reporter(progress, name)  # a wrong type fails here, before anything runs
        if not callable(fn):
            raise TypeError(f"{name}: fn must be callable, not {type(fn).__name__} {fn!r}")
        if not isinstance(items, Iterable):
            raise TypeError(f"{name}: items must be iterable, not {type(items).__name__}")
        default_chunksize, default_timeout, default_retries = self._defaults
        chunksize = default_chunksize if chunksize is None else chunksize
        timeout = default_timeout if timeout is None else timeout
        retries = default_retries if retries is None else retries
        timeout = _check_options(chunksize, timeout, retries)
        try:
            # Once per call, not per item; as bytes, since FUNC messages embed it.
            # A Share in a closure serves where the workers reach it.
            function = serialize_for(self, lambda: [bytes(f) for f in self._codec.encode(FUNCTION_BODY, fn)])
        except SerializationError as exc:
            raise SerializationError(f"{name}: the callable could not be serialized: {exc}",
                                     path=exc.path, type_name=exc.type_name) from exc
        skprocess = isinstance(fn, type) and issubclass(fn, Skprocess)
        # An iterator reads the input at most this far ahead of its reader (bounded memory);
        # a list needs every result anyway.
        window = None if mode in _LISTS else max(self.workers, 4) * self._scheduler.credits * MAX_CHUNK * 2
        with self._lock:
            if self._state is not PoolState.OPEN:
                raise StateError(f"{name}(): the pool is {self._state.value}; create a new Pool")
            if self._scheduler.broken is not None:
                raise StateError(f"{name}(): the pool is broken: {self._scheduler.broken}")
            key = hash(tuple(function))
            call = Call(next(self._ids), function, items, star=star, skprocess=skprocess,
                        chunksize=chunksize, timeout=timeout, retries=retries, window=window,
                        name=name, profile=self._profiles.get(key))
            call.profile_key = key
            call.pool = self
            call.watch = watch
            if reporter is not None:
                reporter.begin(call.planner.total)
                call.progress = reporter
            self._calls.add(call)
        self._scheduler.submit(call)
        return call

    def _cancel(self, call: Call, kill: bool) -> None:
        self._scheduler.cancel(call, kill)

    def _abort(self, call: Call, kill: bool = True) -> None:
        """Cancel `call` from any thread, and wake whoever waits for it (with
        `CancelledError`): a cancelled Future or task, a closed iterator."""
        self._cancel(call, kill)
        call.fail(CancelledError(f"{call.name} was cancelled"))

    def _forget(self, call: Call) -> None:
        if call.progress is not None:
            call.progress.close()
        profile = call.planner.profile
        with self._lock:
            self._calls.discard(call)
            if profile is not None:
                # Remembered for the next map of the same function (a few, oldest dropped).
                self._profiles.pop(call.profile_key, None)
                self._profiles[call.profile_key] = profile
                while len(self._profiles) > _PROFILES:
                    del self._profiles[next(iter(self._profiles))]


def _transport(spec: str | Transport | None, key: bytes | str | None) -> tuple[Transport, bool]:
    """(the transport, whether this pool built it and so closes it). Never the caller's
    object, nor the process-wide default (shared by everything that names no transport)."""
    transport = get_transport(spec)
    if key is not None:
        transport = transport.with_key(key)
    owned = transport is not spec and transport is not get_transport("local://")
    return transport, owned


def _default_workers(transport: Transport, owned: bool) -> int:
    try:
        return transport.default_workers() or os.cpu_count() or 1
    except BaseException:
        if owned:
            transport.close()
        raise


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_options(chunksize: Any, timeout: Any, retries: Any) -> float | None:
    """Check a map's options; the per-item timeout comes back as seconds or None."""
    if chunksize is not None:
        _positive_int("chunksize", chunksize)
    timeout = seconds("timeout (per item)", timeout)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int of 0 or more, got {retries!r}")
    return timeout
