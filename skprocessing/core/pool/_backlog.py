"""The work no worker holds yet: the calls still cutting chunks, and the retry queue.

Chunks come from the retry queue first (work a lost worker held, halves of a split
chunk), then from the calls in submission order, cut lazily as workers can take them.
Scheduler thread only.
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Iterable

from ...serializers.codec import Codec
from ._call import Call
from ._chunks import Chunk
from ._messages import TASK, pack_error

__all__ = ["Backlog"]


class Backlog:
    """Calls (in submission order) and chunks to run again (first)."""

    def __init__(self, codec: Codec):
        self.codec = codec
        self.calls: list[Call] = []
        self.requeue: collections.deque[Chunk] = collections.deque()
        self._chunk_ids = itertools.count(1)

    def add(self, call: Call) -> None:
        call.queued_at = time.monotonic()
        self.calls.append(call)

    def prune(self) -> None:
        """Forget the calls at the front that will cut no more chunks. Calls leave the list
        as they end (cut out in `next_chunk`, cancelled in `cancel`), never by a scan of
        it each round: an Executor may queue thousands."""
        calls = self.calls
        over = 0
        while over < len(calls) and _over(calls[over]):
            over += 1
        if over:
            del calls[:over]

    @property
    def pending(self) -> bool:
        return bool(self.calls or self.requeue)

    def prime(self) -> None:
        # No worker yet (a head waiting for hosts to join): cut each new call's first
        # chunk anyway, so an empty input (or one that raises) ends its call now.
        for call in self.calls:
            if call.planner.taken == 0 and call.wants_more():
                try:
                    self.requeue.extend(call.next_chunks(self.codec, 1, self._chunk_ids.__next__))
                except Exception as exc:  # the caller's iterator raised: the call fails with it
                    call.fail(exc)

    def next_chunk(self, idle: bool, workers: int) -> Chunk | None:
        """The next chunk for a worker (`idle`: it holds nothing); `workers` connected."""
        # A chunk with a per-item timeout goes only to an idle worker (and nothing goes
        # behind it), so it starts at once and a kill for its timeout costs no other item.
        # So does a suspect chunk (a worker died running it): alone, its death is its own.
        index = 0
        while index < len(self.requeue):  # almost always settled at index 0
            chunk = self.requeue[index]
            if chunk.call.cancelled or (chunk.call.timeout is None and not chunk.suspect) or idle:
                del self.requeue[index]
                if not chunk.call.cancelled:
                    return chunk
                chunk.call.outstanding -= 1
                chunk.call.check_done()
                continue
            index += 1
        index = 0
        calls = self.calls
        while index < len(calls):
            call = calls[index]
            if not ((call.timeout is None or idle) and call.wants_more()):
                index += 1
                continue
            try:
                chunks = call.next_chunks(self.codec, max(1, workers), self._chunk_ids.__next__)
            except Exception as exc:  # the caller's iterator raised: the call fails with it
                call.fail(exc)
                chunks = []
            if call.done or call.planner.exhausted:
                del calls[index]  # all cut: it leaves the list (near the front: cheap)
            else:
                index += 1
            if chunks:
                self.requeue.extendleft(reversed(chunks[1:]))
                return chunks[0]
        return None

    # -- chunks coming back ------------------------------------------------------------------
    def retry_first(self, chunk: Chunk) -> None:
        """`chunk` runs again, before anything else."""
        self.requeue.appendleft(chunk)

    def requeue_or_drop(self, chunk: Chunk) -> None:
        if chunk.call.cancelled:
            self.drop(chunk)
        else:
            self.requeue.appendleft(chunk)

    def drop(self, chunk: Chunk) -> None:
        chunk.call.outstanding -= 1
        chunk.call.check_done()

    def split(self, chunk: Chunk) -> None:
        """Requeue `chunk` as two halves, at the front, in order. Repeated, this finds the
        one item at fault in log2(len) steps while the innocent halves simply run."""
        call = chunk.call
        call.outstanding -= 1
        half = len(chunk) // 2
        for start, items in reversed(((0, chunk.items[:half]), (half, chunk.items[half:]))):
            chunk_id = next(self._chunk_ids)
            frames = self.codec.encode(TASK, (chunk_id, call.call_id, items))
            call.outstanding += 1
            self.requeue.appendleft(Chunk(call, chunk_id, chunk.start + start, items, frames))

    def unloadable(self, chunk: Chunk, packed: tuple) -> None:
        """The worker could not load `chunk`'s items: find the item, or fail it."""
        if len(chunk) > 1:
            self.split(chunk)
        else:
            chunk.call.finished(chunk, [None], {0: packed})

    @staticmethod
    def fail_chunk(chunk: Chunk, error: BaseException) -> None:
        packed = pack_error(error, "")
        chunk.call.finished(chunk, [None] * len(chunk), dict.fromkeys(range(len(chunk)), packed))

    # -- whole calls -------------------------------------------------------------------------
    def cancel(self, call: Call) -> None:
        """Drop `call` and its queued chunks."""
        if call in self.calls:
            self.calls.remove(call)
        kept = [c for c in self.requeue if c.call is not call]
        call.outstanding -= len(self.requeue) - len(kept)
        self.requeue = collections.deque(kept)

    def fail_all(self, error: BaseException, held: Iterable[Chunk]) -> None:
        """Fail every call: those queued here and those of `held` (chunks workers hold)."""
        for call in {*self.calls, *(c.call for c in self.requeue), *(c.call for c in held)}:
            call.fail(error)
        self.calls.clear()
        self.requeue.clear()

    def waiting_calls(self) -> list[Call]:
        """Calls with work not yet sent: still cutting chunks, or chunks queued."""
        calls = {id(c): c for c in self.calls if not c.done}
        calls.update((id(c.call), c.call) for c in self.requeue if not c.call.done)
        return list(calls.values())


def _over(call: Call) -> bool:
    return call.cancelled or call.done or call.planner.exhausted
