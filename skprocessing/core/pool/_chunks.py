"""How a call's items are cut into chunks, lazily, and what a chunk carries.

Chunk sizes follow "guided" scheduling: when the number of items is known, each chunk
takes a share of what remains (`remaining / (workers * 4)`), so early chunks are large
(few messages for tiny tasks) and the last ones small (no worker idles at the end while
another finishes a big chunk). Measured costs adjust that: the time per item sets a
floor (a chunk is worth at least `TARGET_SECONDS` of work, so per-message overhead stays
small) and the bytes per item a ceiling (about `TARGET_BYTES` per chunk, so large
results stream one by one and transfers overlap work). Until a first chunk has come
back measured (or an earlier map of the same function left a profile) chunks hold one
item each. When the length is unknown, sizes double from 1 (at least the floor, at most
`MAX_CHUNK`), and the input is read only as far as the call's window allows.

An iterator's read-ahead (items read from the input but not yet taken by the caller) is
bounded twice: by count (the window, see `Pool._submit`) and by bytes,
`READ_AHEAD_BYTES` in all: the feeder's buffer holds at most `FEED_BYTES` (by
`sys.getsizeof`, one level into tuples and lists: the items are not serialized yet), and
the chunks cut but not read hold the rest (by their serialized size, plus their results').
"""

from __future__ import annotations

import collections
import itertools
import math
import reprlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Chunk", "ChunkPlanner", "Profile", "TARGET_SECONDS", "READ_AHEAD_BYTES", "FEED_BYTES"]

TARGET_SECONDS = 0.001  # the least work worth one round trip (tens of microseconds)
TARGET_BYTES = 1 << 20  # the most argument + result bytes worth putting in one chunk
MESSAGE_OVERHEAD = 512  # bytes of headers and pickle framing in a TASK + RESULT pair
MAX_CHUNK = 8192        # items per chunk when the input length is unknown (memory bound)
SPLIT_FACTOR = 4        # chunks per worker over what remains
FEED_AHEAD = MAX_CHUNK  # items an iterator input may be read ahead of the chunks cut
READ_AHEAD_BYTES = 64 << 20  # an iterator's read-ahead, in bytes (items and their results)
FEED_BYTES = READ_AHEAD_BYTES // 4  # of which the feeder's buffer of unserialized items


class Chunk:
    """Consecutive items `start .. start+len(items)-1` of one call, sent as one TASK."""

    __slots__ = ("call", "chunk_id", "start", "items", "frames", "deaths", "early_deaths",
                 "started", "host_losses", "suspect")

    def __init__(self, call: Any, chunk_id: int, start: int, items: list, frames: list):
        self.call = call
        self.chunk_id = chunk_id
        self.start = start
        self.items = items
        self.frames = frames
        self.deaths = 0        # worker deaths while this chunk was running
        self.early_deaths = 0  # worker deaths after it was sent, before it started
        self.started = False   # the worker said STARTED for it
        self.host_losses: list[str] = []  # hosts lost (not by its fault) while running it
        self.suspect = False   # a worker died on it: it runs alone until it settles

    @property
    def nbytes(self) -> int:
        return sum(memoryview(f).nbytes for f in self.frames)

    def __len__(self) -> int:
        return len(self.items)

    def describe(self) -> str:
        """`item 7 ({'id': 7, 'url': 'https://exa...'})`, or `items 7..12 (7: ..., ...)`,
        for error messages: the index and a short repr of each value (the first three)."""
        if len(self.items) == 1:
            return f"item {self.start} ({_short_repr(self.items[0])})"
        shown = ", ".join(f"{self.start + i}: {_short_repr(item)}"
                          for i, item in enumerate(self.items[:3]))
        more = ", ..." if len(self.items) > 3 else ""
        return f"items {self.start}..{self.start + len(self.items) - 1} ({shown}{more})"


_REPR = reprlib.Repr()  # bounded: an item may be a huge list or a 1 MiB string
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 3


def _short_repr(item: Any) -> str:
    return _REPR.repr(item)  # a __repr__ that raises gives `<Foo instance at 0x...>`


Profile = tuple[float, float]  # (seconds, bytes) per item, as measured


class ChunkPlanner:
    """Reads items from the input lazily and decides each chunk's size.

    `profile`: what an earlier call of the same function measured, so a repeated map
    starts with well-sized chunks instead of probing one item at a time."""

    def __init__(self, items: Any, chunksize: int | None, single: bool,
                 profile: Profile | None = None, wake: Callable[[], None] = lambda: None):
        try:
            self.total: int | None = len(items)
        except TypeError:
            self.total = None  # a generator or other iterator: read it as we go
        self._source: Iterator[Any] = iter(items)
        # An iterator may block (a socket, a queue, another pool's imap): it is read on a
        # thread of its own, never on the scheduler's, which must keep serving everyone.
        self._feeder = None if self.total is not None else _Feeder(self._source, wake)
        self.read_ahead = 0 if self._feeder is None else FEED_AHEAD  # read but not yet taken
        self._fixed = 1 if single else chunksize
        self._grow = 1
        self._items = self._seconds = self._bytes = 0.0  # sums over measured chunks
        self.profile = profile
        self.taken = 0          # items read from the input so far
        self.exhausted = False

    def measured(self, items: int, seconds: float, nbytes: int) -> None:
        """Learn from a finished chunk. Sums, not a mean of chunks, so large chunks (whose
        fixed per-call costs are spread thin) count for more than a one-item probe."""
        if items:
            self._items += items
            self._seconds += seconds
            # Without the fixed cost of a message, which says nothing about the items.
            self._bytes += max(nbytes - MESSAGE_OVERHEAD, 0)
            self.profile = (self._seconds / self._items, self._bytes / self._items)

    def size(self, workers: int) -> int:
        if self._fixed:
            return self._fixed
        if self.profile is None:
            return 1  # probing: one item at a time until the first chunk comes back measured
        item_seconds, item_bytes = self.profile
        grow = self._grow
        self._grow = min(grow * 2, MAX_CHUNK)
        floor = int(TARGET_SECONDS / max(item_seconds, 1e-9))
        if self.total is None:
            size = min(max(grow, floor), MAX_CHUNK)
        else:
            size = max(math.ceil((self.total - self.taken) / (workers * SPLIT_FACTOR)), floor)
        # Large arguments or results: fewer per message, so transfers overlap the work.
        return max(1, min(size, int(TARGET_BYTES / max(item_bytes, 1.0))))

    def take(self, size: int) -> tuple[int, list]:
        """The next `size` items (fewer at the end) and the index of the first.

        An exception raised by the user's iterator propagates to the scheduler, which
        fails the call with it."""
        start = self.taken
        if self._feeder is not None:
            items = self._feeder.take(size)
            self.taken += len(items)
            if self._feeder.finished():
                self.exhausted = True
                if self._feeder.error is not None:
                    raise self._feeder.error
            return start, items
        items = list(itertools.islice(self._source, size))
        self.taken += len(items)
        if len(items) < size:
            self.exhausted = True
        elif self.total is not None and self.taken >= self.total:
            self.exhausted = True
        return start, items

    def close(self) -> None:
        """Stop reading the input (the call ended)."""
        if self._feeder is not None:
            self._feeder.stop()


class _Feeder:
    """Reads an iterator on its own daemon thread into a bounded buffer, and wakes the
    scheduler when items arrive in an empty buffer or the input ends."""

    def __init__(self, source: Iterator[Any], wake: Callable[[], None]):
        self._source = source
        self._wake = wake
        self._buffer: collections.deque[Any] = collections.deque()
        self._sizes: collections.deque[int] = collections.deque()
        self._bytes = 0  # estimated size of what the buffer holds
        self._cond = threading.Condition()
        self._stopped = False
        self._ended = False
        self.error: BaseException | None = None
        threading.Thread(target=self._run, name="skprocessing-pool-input", daemon=True).start()

    def _run(self) -> None:
        try:
            for item in self._source:
                size = _size(item)
                with self._cond:
                    # Full by count or by bytes; an empty buffer takes any item, however big.
                    while self._buffer and (len(self._buffer) >= FEED_AHEAD or
                                            self._bytes + size > FEED_BYTES) and not self._stopped:
                        self._cond.wait()
                    if self._stopped:
                        return  # closed: nothing more is read from the input
                    self._buffer.append(item)
                    self._sizes.append(size)
                    self._bytes += size
                    was_empty = len(self._buffer) == 1
                if was_empty:
                    self._wake()
        except BaseException as exc:  # the user's iterator failed: the call fails with it
            self.error = exc
        finally:
            with self._cond:
                self._ended = True
            self._wake()

    def take(self, size: int) -> list[Any]:
        with self._cond:
            count = min(size, len(self._buffer))
            items = [self._buffer.popleft() for _ in range(count)]
            self._bytes -= sum(self._sizes.popleft() for _ in range(count))
            self._cond.notify()
        return items

    def finished(self) -> bool:
        """The input ended and everything read from it was taken."""
        with self._cond:
            return self._ended and not self._buffer

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._buffer.clear()
            self._sizes.clear()
            self._bytes = 0
            self._cond.notify()


def _size(item: Any) -> int:
    """A cheap estimate of an item's size before it is serialized."""
    size = sys.getsizeof(item)
    if type(item) in (tuple, list) and len(item) <= 16:  # star() arguments, small records
        size += sum(map(sys.getsizeof, item))
    return size
