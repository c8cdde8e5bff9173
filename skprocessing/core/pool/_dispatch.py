"""Dispatch: which chunk goes to which worker, and how it is sent.

Each round gives every worker with a free credit one chunk, until no worker has credit
or no work is left, so work spreads evenly; the least loaded worker is served first. The
chunks come from the `Backlog`. A worker receives a call's function (FUNC) once, before
its first chunk of that call, and is told then which old functions it may forget.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from ...errors import ChannelClosed
from ...serializers.codec import Codec
from .._held import send_held
from ._backlog import Backlog
from ._call import Call
from ._chunks import Chunk
from ._messages import FUNC
from ._workers import WorkerSlot, Workers

__all__ = ["Dispatcher"]


class Dispatcher:
    """Hands the backlog's chunks to the workers' free credits; scheduler thread only.
    `lost(slot)` is told of a worker whose channel closed under a send."""

    def __init__(self, codec: Codec, workers: Workers, backlog: Backlog,
                 lost: Callable[[WorkerSlot], None]):
        self._codec = codec
        self._workers = workers
        self._backlog = backlog
        self._lost = lost

    def dispatch(self) -> None:
        backlog, slots = self._backlog, self._workers.slots
        backlog.prune()
        if not self._workers.running or not backlog.pending:
            return
        if not slots:
            backlog.prime()
        sent = True
        while sent:  # one chunk per worker per round, so work spreads evenly
            sent = False
            # The least loaded first: a lone new chunk goes to an idle worker, not behind
            # a long item another worker holds (one Executor task among busy ones).
            for slot in sorted(slots.values(), key=_load):
                if slot.credits > 0 and not slot.timed and slot.fate is None and slot.settle_at is None:
                    chunk = backlog.next_chunk(idle=not slot.inflight, workers=len(slots))
                    if chunk is not None:
                        self._send(slot, chunk)
                        sent = True

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
                slot.channel.send(self._codec.encode(
                    FUNC, (call.call_id, call.star, call.skprocess, call.function, forget)))
                for cid in forget:
                    del slot.functions[cid]
                slot.functions[call.call_id] = weakref.ref(call)  # never keeps a call alive
            slot.channel.send(chunk.frames)
        except ChannelClosed:
            self._lost(slot)


def _ended(call: Call | None) -> bool:
    return call is None or call.done or call.cancelled


def _load(slot: WorkerSlot) -> int:
    return len(slot.inflight)
