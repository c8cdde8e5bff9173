"""Workers that join by address: agents (worker hosts' nannies), deaths they report,
dead processes seen before their heartbeats stop, and maps waiting for a first worker.
Scheduler thread only.

    agent session ── HELLO "agent" ─► Workers.agents[channel] = (agent id, host)
                  ── DIED pid ──────► that worker: fate "died", settled after GRACE
                  ◄─ KILL pid ─────── (from Faults.kill: a timeout or a cancel)
                  ── closed ────────► its workers settled after GRACE, at no cost
    own worker process seen dead ───► settled after GRACE (its last messages may be
                                      still on their way)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ...errors import ChannelClosed, DeserializationError, ProcessTimeoutError
from ...serializers.codec import Codec
from ...transports.base import Channel
from ._backlog import Backlog
from ._call import Call
from ._messages import DIED
from ._workers import WorkerSlot, Workers

__all__ = ["Hosts", "GRACE", "HANDLE_CHECK"]

log = logging.getLogger("skprocessing.pool")
HANDLE_CHECK = 0.1  # seconds between looks at our own workers' processes (non-local transports)
GRACE = 0.3  # seconds a dead worker's last messages get to arrive before it is settled


class Hosts:
    """Watches what a closed channel would tell too late: agents' reports, our workers'
    processes (`watch_handles`: a transport whose channels outlive a dead process for a
    while), and calls waiting for a first worker. `read(slot)` takes one message from a
    worker, `lost(slot)` settles one, `cancel(call)` drops a call's queued chunks."""

    def __init__(self, codec: Codec, address: str, workers: Workers, backlog: Backlog,
                 watch_handles: bool, *, read: Callable[[WorkerSlot], None],
                 lost: Callable[[WorkerSlot], None], cancel: Callable[[Call], None]):
        self._codec = codec
        self._address = address
        self._workers = workers
        self._backlog = backlog
        self._watch_handles = watch_handles
        self._read = read
        self._lost = lost
        self._cancel = cancel
        self._settling: set[Channel] = set()  # slots whose worker is known gone, settled at settle_at
        self._next_handle_check = 0.0
        self._no_workers_since: float | None = time.monotonic()

    def on_agent_message(self, channel: Channel) -> None:
        agent_id, host = self._workers.agents[channel]
        try:
            frames = channel.recv()
        except ChannelClosed:
            del self._workers.agents[channel]
            channel.close()
            log.info("the agent of host %s left", host)
            # Its workers go with it (an agent's exit ends them): settle them now rather
            # than after their heartbeats stop, at no cost to their items.
            for slot in self._workers.slots.values():
                if slot.agent == agent_id and slot.settle_at is None:
                    self._settle_later(slot)
            return
        try:
            kind, body = self._codec.decode(frames)
        except DeserializationError:
            return
        if kind != DIED:
            return
        pid, exitcode = body
        for slot in self._workers.slots.values():
            if slot.agent == agent_id and slot.pid == pid and slot.fate is None:
                slot.fate = ("died", exitcode)
                self._settle_later(slot)

    def check_handles(self) -> None:
        # Over a network transport a dead process's channel closes only when its
        # heartbeats stop; for the workers we started, the process itself says so sooner.
        # What it sent just before it died may still be on its way (in the sockets of
        # both sides): it gets GRACE seconds to arrive before the worker is settled.
        slots = self._workers.slots
        now = time.monotonic()
        if self._watch_handles and now >= self._next_handle_check:
            self._next_handle_check = now + HANDLE_CHECK
            for slot in slots.values():
                if (slot.handle is not None and slot.settle_at is None
                        and slot.handle.wait(0) is not None):
                    self._settle_later(slot)
        for channel in list(self._settling):
            slot = slots.get(channel)
            if slot is None:  # already settled another way
                self._settling.discard(channel)
            elif slot.settle_at is not None and slot.settle_at <= now:
                self._settling.discard(channel)
                while slot.channel in slots and slot.channel.poll(0):
                    self._read(slot)  # what it sent before it died still counts
                if slot.channel in slots:
                    self._lost(slot)

    def _settle_later(self, slot: WorkerSlot) -> None:
        """`slot`'s worker is gone: settle it after GRACE seconds (late messages)."""
        slot.settle_at = time.monotonic() + GRACE
        self._settling.add(slot.channel)

    def check_no_workers(self) -> None:
        """A call with a per-item timeout waits that long for a first worker, not forever."""
        if self._workers.slots or self._workers.starting:
            self._no_workers_since = None
            return
        now = time.monotonic()
        if self._no_workers_since is None:
            self._no_workers_since = now
            return
        for call in self._backlog.waiting_calls():
            if call.timeout is not None and now - self._waiting_since(call) >= call.timeout:
                call.cancelled = True
                call.fail(ProcessTimeoutError(
                    f"{call.name}: no worker was connected for {call.timeout:g} s (the call's "
                    f"per-item timeout); start workers with `python -m skprocessing worker "
                    f"{self._address}`", section="run", timeout=call.timeout))
                # Its queued chunks (requeued ones too: a lost host's) go now, rather than
                # when a worker joins: `status()` shows no work that nobody will do.
                self._cancel(call)

    def deadlines(self) -> list[float]:
        """When something here wants a look (monotonic times), for the loop's wait."""
        slots = self._workers.slots
        deadlines = []
        if self._watch_handles and any(s.handle is not None for s in slots.values()):
            deadlines.append(self._next_handle_check)
        deadlines += [slots[c].settle_at for c in self._settling if c in slots]  # type: ignore[misc]
        if self._no_workers_since is not None:
            deadlines += [self._waiting_since(c) + c.timeout for c in self._backlog.waiting_calls()
                          if c.timeout is not None]
        return deadlines

    def _waiting_since(self, call: Call) -> float:
        """Since when `call` has waited with no worker connected."""
        return max(self._no_workers_since or 0.0, call.queued_at)
