"""Workers that join by address: agents (worker hosts' nannies), deaths they report,
dead processes seen before their heartbeats stop, maps waiting for a first worker, and
`status()`. Mixed into `Scheduler`; runs on the scheduler thread only.

    agent session ── HELLO "agent" ─► _agents[channel] = (agent id, host)
                  ── DIED pid ──────► that worker: fate "died", settled after GRACE
                  ◄─ KILL pid ─────── (from _faults._kill: a timeout or a cancel)
                  ── closed ────────► its workers settled after GRACE, at no cost
    own worker process seen dead ───► settled after GRACE (its last messages may be
                                      still on their way)
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

from ...errors import ChannelClosed, DeserializationError, ProcessTimeoutError
from ...serializers.codec import Codec
from ...transports.base import Channel
from ._call import Call
from ._messages import DIED
from ._workers import WorkerSlot

__all__ = ["RemoteWorkers", "GRACE", "HANDLE_CHECK"]

log = logging.getLogger("skprocessing.pool")
HANDLE_CHECK = 0.1  # seconds between looks at our own workers' processes (non-local transports)
GRACE = 0.3  # seconds a dead worker's last messages get to arrive before it is settled


class RemoteWorkers:
    """Mixed into `Scheduler`; runs on the scheduler thread only."""

    codec: Codec
    address: str
    _slots: dict[Channel, WorkerSlot]
    _agents: dict[Channel, tuple[str, str]]
    _starting: dict[int, Any]
    _calls: list[Call]
    _requeue: collections.deque
    _done_items: int
    _duplicates: int
    _lost_workers: int
    _activity: Any  # _activity.Activity
    _no_workers_since: float | None
    _next_handle_check: float
    _watch_handles: bool
    _settling: set[Channel]  # slots whose worker is known gone, settled at settle_at

    _on_message: Any  # Scheduler._on_message
    _lost: Any        # FaultHandling._lost
    _do_cancel: Any   # Scheduler._do_cancel: drop a call's queued chunks

    def _on_agent_message(self, channel: Channel) -> None:
        agent_id, host = self._agents[channel]
        try:
            frames = channel.recv()
        except ChannelClosed:
            del self._agents[channel]
            channel.close()
            log.info("the agent of host %s left", host)
            # Its workers go with it (an agent's exit ends them): settle them now rather
            # than after their heartbeats stop, at no cost to their items.
            for slot in self._slots.values():
                if slot.agent == agent_id and slot.settle_at is None:
                    self._settle_later(slot)
            return
        try:
            kind, body = self.codec.decode(frames)
        except DeserializationError:
            return
        if kind != DIED:
            return
        pid, exitcode = body
        for slot in self._slots.values():
            if slot.agent == agent_id and slot.pid == pid and slot.fate is None:
                slot.fate = ("died", exitcode)
                self._settle_later(slot)

    def _check_handles(self) -> None:
        # Over a network transport a dead process's channel closes only when its
        # heartbeats stop; for the workers we started, the process itself says so sooner.
        # What it sent just before it died may still be on its way (in the sockets of
        # both sides): it gets GRACE seconds to arrive before the worker is settled.
        now = time.monotonic()
        if self._watch_handles and now >= self._next_handle_check:
            self._next_handle_check = now + HANDLE_CHECK
            for slot in self._slots.values():
                if (slot.handle is not None and slot.settle_at is None
                        and not slot.handle.is_alive()):
                    self._settle_later(slot)
        for channel in list(self._settling):
            slot = self._slots.get(channel)
            if slot is None:  # already settled another way
                self._settling.discard(channel)
            elif slot.settle_at is not None and slot.settle_at <= now:
                self._settling.discard(channel)
                while slot.channel in self._slots and slot.channel.poll(0):
                    self._on_message(slot)  # what it sent before it died still counts
                if slot.channel in self._slots:
                    self._lost(slot)

    def _settle_later(self, slot: WorkerSlot) -> None:
        """`slot`'s worker is gone: settle it after GRACE seconds (late messages)."""
        slot.settle_at = time.monotonic() + GRACE
        self._settling.add(slot.channel)

    def _check_no_workers(self) -> None:
        """A call with a per-item timeout waits that long for a first worker, not forever."""
        if self._slots or self._starting:
            self._no_workers_since = None
            return
        now = time.monotonic()
        if self._no_workers_since is None:
            self._no_workers_since = now
            return
        for call in self._waiting_calls():
            if call.timeout is not None and now - self._waiting_since(call) >= call.timeout:
                call.cancelled = True
                call.fail(ProcessTimeoutError(
                    f"{call.name}: no worker was connected for {call.timeout:g} s (the call's "
                    f"per-item timeout); start workers with `python -m skprocessing worker "
                    f"{self.address}`", section="run", timeout=call.timeout))
                # Its queued chunks (requeued ones too: a lost host's) go now, rather than
                # when a worker joins: `status()` shows no work that nobody will do.
                self._do_cancel(call, False)

    def _waiting_calls(self) -> list[Call]:
        """Calls with work not yet sent: still cutting chunks, or chunks queued."""
        calls = {id(c): c for c in self._calls if not c.done}
        calls.update((id(c.call), c.call) for c in self._requeue if not c.call.done)
        return list(calls.values())

    def _waiting_since(self, call: Call) -> float:
        """Since when `call` has waited with no worker connected."""
        return max(self._no_workers_since or 0.0, getattr(call, "queued_at", 0.0))

    def _do_status(self, box: dict, done: threading.Event) -> None:
        hosts: dict[str, int] = collections.Counter(
            s.host or "?" for s in self._slots.values())
        box.update(
            address=self.address,
            workers=len(self._slots),
            starting=len(self._starting),
            hosts=dict(hosts),
            agents=sorted(host for _, host in self._agents.values()),
            in_flight=sum(len(c) for s in self._slots.values() for c in s.inflight),
            queued=sum(len(c) for c in self._requeue),
            done=self._done_items,
            calls=len({id(c) for c in [*self._calls, *(k.call for k in self._requeue),
                                       *(k.call for s in self._slots.values() for k in s.inflight)]
                       if not c.done}),
            lost_workers=self._lost_workers,
            duplicates_dropped=self._duplicates,
            throughput=round(self._activity.throughput(self._done_items), 3),
            uptime=round(time.monotonic() - self._activity.started, 3),
            recent_losses=list(self._activity.losses),
            per_worker=[{"pid": s.pid, "host": s.host, "in_flight": sum(len(c) for c in s.inflight),
                         "done": s.done, "credits": s.credits} for s in self._slots.values()])
        done.set()
