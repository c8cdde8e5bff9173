"""Dispatch: which chunk goes to which worker, and how it is sent.

Each round gives every worker with a free credit one chunk, until no worker has credit
or no work is left, so work spreads evenly. The chunks come from the `Backlog`. A worker
receives a call's function (FUNC) once, before its first chunk of that call, and is told
then which old functions it may forget.
"""

from __future__ import annotations

from collections.abc import Callable

from ...errors import ChannelClosed
from ...serializers.codec import Codec
from ._backlog import Backlog
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
            for slot in list(slots.values()):
                if slot.credits > 0 and not slot.timed and slot.fate is None and slot.settle_at is None:
                    chunk = backlog.next_chunk(idle=not slot.inflight, workers=len(slots))
                    if chunk is not None:
                        self._send(slot, chunk)
                        sent = True

    def _send(self, slot: WorkerSlot, chunk: Chunk) -> None:
        call = chunk.call
        slot.inflight.append(chunk)
        slot.credits -= 1
        try:
            if call.call_id not in slot.functions:
                live = {c.call_id for c in self._backlog.calls}
                forget = [cid for cid in slot.functions if cid not in live]
                slot.channel.send(self._codec.encode(
                    FUNC, (call.call_id, call.star, call.skprocess, call.function, forget)))
                slot.functions.difference_update(forget)
                slot.functions.add(call.call_id)
            slot.channel.send(chunk.frames)
        except ChannelClosed:
            self._lost(slot)
