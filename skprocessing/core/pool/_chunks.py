"""How a call's items are cut into chunks, lazily, and what a chunk carries.

Chunk sizes follow "guided" scheduling: when the number of items is known, each chunk
takes a share of what remains (`remaining / (workers * 4)`), so early chunks are large
(few messages for tiny tasks) and the last ones small (no worker idles at the end while
another finishes a big chunk). Once a chunk has come back, its measured time per item
sets a floor, so a chunk of tiny tasks never costs less than `TARGET_SECONDS` of work
and the per-message overhead stays small. When the length is unknown (a generator),
sizes start at 1 and double until that floor is known, and the input is read only as
far as the window of outstanding items allows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

__all__ = ["Chunk", "ChunkPlanner", "TARGET_SECONDS"]

TARGET_SECONDS = 0.004  # the least work worth one round trip
MAX_CHUNK = 8192        # items per chunk when the input length is unknown (memory bound)
SPLIT_FACTOR = 4        # chunks per worker over what remains


class Chunk:
    """Consecutive items `start .. start+len(items)-1` of one call, sent as one TASK."""

    __slots__ = ("call", "chunk_id", "start", "items", "frames", "deaths")

    def __init__(self, call: Any, chunk_id: int, start: int, items: list, frames: list):
        self.call = call
        self.chunk_id = chunk_id
        self.start = start
        self.items = items
        self.frames = frames
        self.deaths = 0  # worker deaths while this chunk was running

    def __len__(self) -> int:
        return len(self.items)

    def describe(self) -> str:
        """`item 7`, or `items 7..12`, for error messages."""
        if len(self.items) == 1:
            return f"item {self.start}"
        return f"items {self.start}..{self.start + len(self.items) - 1}"


class ChunkPlanner:
    """Reads items from the input lazily and decides each chunk's size."""

    def __init__(self, items: Any, chunksize: int | None, single: bool):
        try:
            self.total: int | None = len(items)
        except TypeError:
            self.total = None  # a generator or other iterator: read it as we go
        self._source: Iterator[Any] = iter(items)
        self._fixed = 1 if single else chunksize
        self._grow = 1
        self._item_seconds: float | None = None
        self.taken = 0          # items read from the input so far
        self.exhausted = False

    def measured(self, items: int, seconds: float) -> None:
        """Learn the time per item from a finished chunk (a running mean, weighted to now)."""
        if items:
            per_item = seconds / items
            old = self._item_seconds
            self._item_seconds = per_item if old is None else (old + per_item) / 2

    def size(self, workers: int) -> int:
        if self._fixed:
            return self._fixed
        floor = 1
        if self._item_seconds is not None:
            floor = int(TARGET_SECONDS / max(self._item_seconds, 1e-9))
        if self.total is None:
            size = max(self._grow, floor)
            self._grow = min(self._grow * 2, MAX_CHUNK)
            return max(1, min(size, MAX_CHUNK))
        remaining = self.total - self.taken
        return max(1, math.ceil(remaining / (workers * SPLIT_FACTOR)), floor)

    def take(self, size: int) -> tuple[int, list]:
        """The next `size` items (fewer at the end) and the index of the first.

        An exception raised by the user's iterator propagates to the scheduler, which
        fails the call with it."""
        start = self.taken
        items = list(itertools.islice(self._source, size))
        self.taken += len(items)
        if len(items) < size:
            self.exhausted = True
        elif self.total is not None and self.taken >= self.total:
            self.exhausted = True
        return start, items
