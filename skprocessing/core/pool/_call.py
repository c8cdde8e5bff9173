"""One map call as the scheduler and the caller both see it.

The scheduler thread (producer) cuts chunks from the input and delivers finished ones;
the caller's thread (consumer) waits for them. They share only `_ready` (under a
condition), `consumed` (how far the caller has read, for the window) and the flags.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ...errors import SerializationError
from ...serializers.codec import Codec
from .._destination import bound_for, serialize_for
from ._chunks import FEED_BYTES, READ_AHEAD_BYTES, Chunk, ChunkPlanner, Profile
from ._messages import TASK, pack_error

__all__ = ["Call", "TIMED_OUT"]

TIMED_OUT = object()  # what `Call.get` returns when its deadline passes


class Call:
    """A submitted map: its function (encoded once), its input, and its finished chunks."""

    def __init__(self, call_id: int, function: list, items: Any, *, star: bool, skprocess: bool,
                 chunksize: int | None, timeout: float | None, retries: int,
                 window: int | None, name: str, profile: Profile | None = None):
        self.call_id = call_id
        self.function = function  # FUNCTION_BODY frames, sent once to each worker
        self.star = star
        self.skprocess = skprocess
        self.timeout = timeout
        self.retries = retries
        self.window = window
        self.name = name
        self.profile_key = 0      # which function's profile this call refines (set by Pool)
        self.pool: Any = None     # the Pool its items are serialized for (set by Pool)
        self.wake: Callable[[], None] = lambda: None  # set by the scheduler; first, since
        # the planner may start reading an iterator input (and waking) at once
        self.planner = ChunkPlanner(items, chunksize, single=timeout is not None, profile=profile,
                                    wake=lambda: self.wake())
        self.outstanding = 0      # chunks cut but not finished (scheduler thread only)
        self.consumed = 0         # items the caller has taken (caller thread writes)
        self.blocked = False      # the scheduler waits for the caller to read (window full)
        self.cancelled = False
        # Optional, set by the Pool before the call is submitted:
        self.progress: Any = None  # .advance(items) as the caller takes finished chunks
        # .dispatching(call) -> bool before each chunk goes to a worker (False: it is
        # dropped, never run), .changed(call) once a chunk is ready or the call is over;
        # both on the scheduler's thread, so they only record and hand on (the Executor).
        self.watch: Any = None
        self.queued_at = 0.0  # when the scheduler took it (a wait for a first worker counts from it)
        # Serialized bytes per item, items and results, for the read-ahead's byte bound.
        self._sent_bytes = self._sent_items = self._back_bytes = self._back_items = 0
        self._cond = threading.Condition(threading.Lock())
        self._ready: deque[tuple[int, list, dict | None]] = deque()
        self._failure: BaseException | None = None
        self._done = False

    # -- scheduler side ----------------------------------------------------------------------
    def wants_more(self) -> bool:
        if self.cancelled or self._done or self.planner.exhausted:
            return False
        # The feeder's buffer counts inside the window: what is read never runs further ahead.
        limit = None if self.window is None else max(self.window - self.planner.read_ahead, 1)
        if limit is not None and self._sent_items:
            item_bytes = self._sent_bytes / self._sent_items + (
                self._back_bytes / self._back_items if self._back_items else 0)
            limit = min(limit, max(1, int((READ_AHEAD_BYTES - FEED_BYTES) / item_bytes)))
        if limit is not None and self.planner.taken - self.consumed >= limit:
            # Flag first, then look again: a caller that reads in between either sees the
            # flag (and wakes us) or has already moved `consumed` (seen here).
            self.blocked = True
            if self.planner.taken - self.consumed >= limit:
                return False
            self.blocked = False
        return True

    def next_chunks(self, codec: Codec, workers: int, ids: Callable[[], int]) -> list[Chunk]:
        """Cut the next chunk (several, around any item that will not serialize)."""
        start, items = self.planner.take(self.planner.size(workers))
        if not items:
            self.check_done()
            return []
        chunk_id = ids()
        try:
            return [self._chunk(codec, chunk_id, start, items)]
        except SerializationError:
            return self._split_unsendable(codec, ids, start, items)

    def _chunk(self, codec: Codec, chunk_id: int, start: int, items: list) -> Chunk:
        # A Share among the items serves where the workers reach it.
        frames = serialize_for(self.pool, lambda: codec.encode(TASK, (chunk_id, self.call_id, items)))
        self.outstanding += 1
        chunk = Chunk(self, chunk_id, start, items, frames)
        self._sent_bytes += chunk.nbytes
        self._sent_items += len(items)
        return chunk

    def _split_unsendable(self, codec: Codec, ids: Callable[[], int], start: int,
                          items: list) -> list[Chunk]:
        chunks: list[Chunk] = []
        run_start, run = start, []
        for index, item in enumerate(items, start):
            try:
                with bound_for(self.pool):  # a probe: any move comes with the chunk
                    codec.serializer.dumps(item)
            except SerializationError as exc:
                if run:
                    chunks.append(self._chunk(codec, ids(), run_start, run))
                run_start, run = index + 1, []
                error = SerializationError(f"item {index} could not be sent to a worker: {exc}",
                                           path=exc.path, type_name=exc.type_name)
                self._put(index, [None], {0: pack_error(error, "")})
                continue
            run.append(item)
        if run:
            chunks.append(self._chunk(codec, ids(), run_start, run))
        if not chunks:
            self.check_done()  # every item failed here: nothing will come back to finish it
        return chunks

    def finished(self, chunk: Chunk, values: list, errors: dict | None,
                 seconds: float | None = None, nbytes: int = 0) -> None:
        """A chunk is settled. `seconds` (its run time in the worker) and `nbytes` (its
        result's size) feed the chunk planner; None for a chunk that did not run."""
        if seconds is not None:
            self.planner.measured(len(values), seconds, nbytes + chunk.nbytes)
            self._back_bytes += nbytes
            self._back_items += len(values)
        self.outstanding -= 1
        self._put(chunk.start, values, errors)
        self.check_done()

    def check_done(self) -> None:
        if self.planner.exhausted and self.outstanding == 0:
            with self._cond:
                self._done = True
                self._cond.notify_all()
            watch = self.watch
            if watch is not None:
                watch.changed(self)

    def fail(self, error: BaseException) -> None:
        """End the call with `error` (raised in the caller once it reaches it)."""
        with self._cond:
            if self._failure is None:
                self._failure = error
            self._done = True
            self._cond.notify_all()
        self.planner.close()
        watch = self.watch
        if watch is not None:
            watch.changed(self)

    def _put(self, start: int, values: list, errors: dict | None) -> None:
        if self.cancelled:
            return
        with self._cond:
            self._ready.append((start, values, errors))
            self._cond.notify()
        watch = self.watch
        if watch is not None:
            watch.changed(self)

    # -- caller side -------------------------------------------------------------------------
    def get(self, deadline: float | None) -> tuple[int, list, dict | None] | None | object:
        """The next finished chunk in completion order; None when all are delivered;
        TIMED_OUT after `deadline` (a `time.monotonic()` value). Raises a failure."""
        with self._cond:
            while not self._ready:
                if self._failure is not None:
                    raise self._failure
                if self._done:
                    return None
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return TIMED_OUT
                self._cond.wait(wait)
            got = self._ready.popleft()
        if self.progress is not None:
            self.progress.advance(len(got[1]))
        return got

    def taken(self, count: int) -> None:
        """The caller has read `count` more items: reopen the window if it was full."""
        self.consumed += count
        if self.blocked:
            self.blocked = False
            self.wake()

    def wait_done(self, timeout: float | None) -> bool:
        """Wait until every chunk is finished (or the call failed); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._done, timeout)

    @property
    def done(self) -> bool:
        return self._done
