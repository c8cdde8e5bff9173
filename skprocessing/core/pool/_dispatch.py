"""Dispatch: which chunk goes to which worker, and how it is sent.

Each round gives every worker with a free credit one chunk, until no worker has credit
or no work is left, so work spreads evenly. Chunks come from the retry queue first (work
a lost worker held), then from the calls in submission order, cut lazily as workers can
take them. A worker receives a call's function (FUNC) once, before its first chunk of
that call, and is told then which old functions it may forget.
"""

from __future__ import annotations

import collections
import weakref
from collections.abc import Iterator
from typing import Any

from ...errors import ChannelClosed
from ...serializers.codec import Codec
from ...transports.base import Channel
from .._held import send_held
from ._call import Call
from ._chunks import Chunk
from ._messages import FUNC
from ._workers import WorkerSlot

__all__ = ["Dispatching"]


class Dispatching:
    """Mixed into `Scheduler`; runs on the scheduler thread only."""

    codec: Codec
    size: int
    _running: bool
    _calls: list[Call]
    _slots: dict[Channel, WorkerSlot]
    _requeue: collections.deque[Chunk]
    _chunk_ids: Iterator[int]

    _lost: Any  # FaultHandling._lost: settle a worker whose channel closed

    def _dispatch(self) -> None:
        # Calls leave the list as they end (cut out, cancelled: see _next_chunk and
        # _do_cancel), never by a scan of it each round: an Executor may queue thousands.
        calls = self._calls
        over = 0
        while over < len(calls) and _over(calls[over]):
            over += 1
        if over:
            del calls[:over]
        if not self._running or not (self._calls or self._requeue):
            return
        if not self._slots:
            self._prime()
        sent = True
        while sent:  # one chunk per worker per round, so work spreads evenly
            sent = False
            # The least loaded first: a lone new chunk goes to an idle worker, not behind
            # a long item another worker holds (one Executor task among busy ones).
            for slot in sorted(self._slots.values(), key=_load):
                if slot.credits > 0 and not slot.timed and slot.fate is None and slot.settle_at is None:
                    chunk = self._next_chunk(idle=not slot.inflight)
                    if chunk is not None:
                        self._send(slot, chunk)
                        sent = True

    def _prime(self) -> None:
        # No worker yet (a head waiting for hosts to join): cut each new call's first
        # chunk anyway, so an empty input (or one that raises) ends its call now.
        for call in self._calls:
            if call.planner.taken == 0 and call.wants_more():
                try:
                    self._requeue.extend(call.next_chunks(self.codec, 1, self._chunk_ids.__next__))
                except Exception as exc:  # the caller's iterator raised: the call fails with it
                    call.fail(exc)

    def _next_chunk(self, idle: bool) -> Chunk | None:
        # A chunk with a per-item timeout goes only to an idle worker (and nothing goes
        # behind it), so it starts at once and a kill for its timeout costs no other item.
        # So does a suspect chunk (a worker died running it): alone, its death is its own.
        index = 0
        while index < len(self._requeue):  # almost always settled at index 0
            chunk = self._requeue[index]
            if chunk.call.cancelled or (chunk.call.timeout is None and not chunk.suspect) or idle:
                del self._requeue[index]
                if not chunk.call.cancelled:
                    return chunk
                chunk.call.outstanding -= 1
                chunk.call.check_done()
                continue
            index += 1
        index = 0
        calls = self._calls
        while index < len(calls):
            call = calls[index]
            if not ((call.timeout is None or idle) and call.wants_more()):
                index += 1
                continue
            try:
                chunks = call.next_chunks(self.codec, max(1, len(self._slots)), self._chunk_ids.__next__)
            except Exception as exc:  # the caller's iterator raised: the call fails with it
                call.fail(exc)
                chunks = []
            if call.done or call.planner.exhausted:
                del calls[index]  # all cut: it leaves the list (near the front: cheap)
            else:
                index += 1
            if chunks:
                self._requeue.extendleft(reversed(chunks[1:]))
                return chunks[0]
        return None

    def _send(self, slot: WorkerSlot, chunk: Chunk) -> None:
        call = chunk.call
        watch = call.watch
        if watch is not None and not watch.dispatching(call):
            call.outstanding -= 1  # cancelled before it reached a worker: it never runs
            call.check_done()
            return
        slot.inflight.append(chunk)
        slot.credits -= 1
        send_held()  # writes held before the call leave before its tasks
        try:
            if call.call_id not in slot.functions:
                # Only calls that are over: one whose planner is exhausted may still have
                # chunks queued for a retry. Costs the worker's own cache, not every call
                # (an Executor may have thousands queued).
                forget = [cid for cid, ref in slot.functions.items() if _ended(ref())]
                slot.channel.send(self.codec.encode(
                    FUNC, (call.call_id, call.star, call.skprocess, call.function, forget)))
                for cid in forget:
                    del slot.functions[cid]
                slot.functions[call.call_id] = weakref.ref(call)  # never keeps a call alive
            slot.channel.send(chunk.frames)
        except ChannelClosed:
            self._lost(slot)


def _ended(call: Call | None) -> bool:
    return call is None or call.done or call.cancelled


def _over(call: Call) -> bool:
    return call.cancelled or call.done or call.planner.exhausted


def _load(slot: WorkerSlot) -> int:
    return len(slot.inflight)
