"""What the scheduler does when a worker dies, hangs, or runs a cancelled item.

A worker's in-flight chunks are ordered as it runs them, so when its channel closes the
first is the one it was running and the rest had not started:

    queued chunks     → back to the front of the retry queue, no penalty
    running chunk     ├ its call was cancelled           → dropped
                      ├ not STARTED yet                  → requeued, no penalty (a few times)
                      ├ a remote worker lost without a   → requeued, no penalty: its host went
                      │ DIED from its agent                down or off the network (a few times)
                      ├ the head killed it for a timeout → ProcessTimeoutError at its item
                      ├ several items                    → split in halves and requeued
                      │                                    (deaths narrow it down to one item)
                      └ one item                         → retried while deaths <= retries
                                                           (remote: at least once), else
                                                           ProcessDiedError naming it
    the worker        → replaced by a fresh one (if this pool started it)
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ...errors import ChannelClosed, ProcessDiedError, ProcessTimeoutError
from ...serializers.codec import Codec
from ._activity import Activity
from ._backlog import Backlog
from ._chunks import Chunk
from ._messages import KILL
from ._workers import WorkerSlot, Workers

log = logging.getLogger("skprocessing.pool")

__all__ = ["Faults", "EARLY_DEATHS", "HOST_LOSSES"]

EARLY_DEATHS = 3   # deaths before a chunk starts, after which its call gives up on it
HOST_LOSSES = 5    # remote workers lost (host or network) while running one chunk: give up


_WHY_REMOTE = {None: "no heartbeat, or it left", "died": "its agent reported the death",
               "timeout": "killed for a timeout", "cancel": "killed: its call was cancelled"}
_WHY_LOCAL = {None: "it died", "timeout": "killed for a timeout",
              "cancel": "killed: its call was cancelled"}


class Faults:
    """Ends workers (a timeout, a cancel) and settles the ones that are gone; scheduler
    thread only. `reliable_last_words`: a dead worker's sends all arrive (a transport
    whose channels close with their process, after what it sent). Each loss is told to
    `activity` (the recent past `status()` shows)."""

    def __init__(self, codec: Codec, workers: Workers, backlog: Backlog, activity: Activity,
                 reliable_last_words: bool):
        self._codec = codec
        self._workers = workers
        self._backlog = backlog
        self._activity = activity
        self._reliable_last_words = reliable_last_words

    def kill(self, slot: WorkerSlot, fate: tuple[str, Any]) -> None:
        slot.fate = fate
        slot.deadline = None
        if slot.handle is not None:
            slot.handle.kill()  # its channel closes; lost() runs when the loop sees it
            return
        for channel, (agent_id, _) in self._workers.agents.items():
            if agent_id is not None and agent_id == slot.agent:
                try:  # its agent ends it (and starts another), so it runs nothing more
                    channel.send(self._codec.encode(KILL, slot.pid))
                except ChannelClosed:
                    pass
        self.lost(slot)  # a worker that joined by address: drop the connection

    def check_deadlines(self) -> None:
        now = time.monotonic()
        for slot in list(self._workers.slots.values()):
            if slot.deadline is not None and slot.deadline <= now and slot.fate is None:
                self.kill(slot, ("timeout", slot.inflight[0]))

    def lost(self, slot: WorkerSlot) -> None:
        """A worker's channel closed: settle what it held, start a replacement."""
        self._workers.remove(slot)
        held = sum(len(c) for c in slot.inflight)
        fate = slot.fate and slot.fate[0]
        if slot.handle is None:
            log.warning("lost %s (%s); %d item(s) it held go elsewhere or settle", slot.describe(),
                        _WHY_REMOTE.get(fate, "?"), held)
        if slot.handle is not None:
            # for its exit code in the error message; a process whose channel closed while
            # it lives on (user code closed its descriptors) is ended, not left running
            if slot.handle.wait(1.0) is None:
                slot.handle.kill()
                slot.handle.wait(5.0)
        why = (_WHY_REMOTE if slot.handle is None else _WHY_LOCAL).get(fate, "?")
        self._activity.lost(slot.pid, slot.host, f"{slot.describe()}: {why}", held)
        if slot.handle is not None:
            self._workers.replace()  # first, so a caller told of the loss sees the replacement
        if slot.inflight:
            running, *queued = slot.inflight
            for chunk in reversed(queued):  # never started: back to the front, no penalty
                self._backlog.requeue_or_drop(chunk)
            self._settle_running(running, slot)

    def _settle_running(self, chunk: Chunk, slot: WorkerSlot) -> None:
        call = chunk.call
        fate = slot.fate[0] if slot.fate else None
        if call.cancelled:
            self._backlog.drop(chunk)
        elif fate is None and slot.handle is None:
            self._host_lost(chunk, slot)  # started or not: never the items' fault
        elif not chunk.started and fate in (None, "died"):
            self._died_before_start(chunk, slot)
        elif fate == "timeout":
            error = ProcessTimeoutError(
                f"{chunk.describe()} ran over its {call.timeout:g} s timeout; its worker "
                f"(pid {slot.pid}) was killed and replaced", section="run", timeout=call.timeout)
            self._backlog.fail_chunk(chunk, error)
        elif len(chunk) > 1:
            self._backlog.split(chunk)  # which item killed it is unknown: narrow it down
        else:
            chunk.deaths += 1
            # Over a network transport a worker's last messages may die with it (still in
            # its ZeroMQ queue), so "it was running this item" is a guess: the item runs
            # again, alone (suspect), and is blamed only when a second worker dies on it.
            allowed = call.retries if self._reliable_last_words else max(call.retries, 1)
            if chunk.deaths > allowed:
                times = f" ({chunk.deaths} attempts)" if chunk.deaths > 1 else ""
                code = slot.handle.wait(0) if slot.handle is not None else (
                    slot.fate[1] if slot.fate and slot.fate[0] == "died" else None)
                self._backlog.fail_chunk(chunk, ProcessDiedError(
                    f"{chunk.describe()} of {call.name} did not finish: {slot.describe()} "
                    f"while running it{times}", exitcode=code))
            else:
                chunk.suspect = True
                self._backlog.retry_first(chunk)

    def _host_lost(self, chunk: Chunk, slot: WorkerSlot) -> None:
        # A remote worker gone without its agent reporting a death: the host died or its
        # network went. Not the item's fault, unless every host that runs it vanishes.
        chunk.host_losses.append(slot.host or f"pid {slot.pid}")
        if len(chunk.host_losses) < HOST_LOSSES:
            chunk.started = False
            self._backlog.retry_first(chunk)
            return
        self._backlog.fail_chunk(chunk, ProcessDiedError(
            f"{chunk.describe()} of {chunk.call.name} did not finish: {len(chunk.host_losses)} "
            f"worker hosts were lost while running it ({', '.join(chunk.host_losses)})"))

    def _died_before_start(self, chunk: Chunk, slot: WorkerSlot) -> None:
        # Not the items' fault, as a rule (a worker killed while idle, a host lost): run
        # them elsewhere. Unless it keeps happening: then loading the callable (or these
        # items) is what kills workers, and the call must end rather than loop.
        chunk.early_deaths += 1
        if chunk.early_deaths < EARLY_DEATHS:
            # Over a network transport "not started" may be a STARTED lost with its
            # worker: run it alone next time, so a death is surely its own.
            chunk.suspect = not self._reliable_last_words
            self._backlog.retry_first(chunk)
            return
        self._backlog.fail_chunk(chunk, ProcessDiedError(
            f"{chunk.describe()} of {chunk.call.name} never started: {chunk.early_deaths} "
            f"workers died before they could begin it, the last one {slot.describe()}; "
            f"loading the callable or these items may be what kills them",
            exitcode=slot.handle and slot.handle.wait(0)))
