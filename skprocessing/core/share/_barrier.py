"""The coordinator's read barrier, for network transports.

Why: a process that writes (pipelined, no answer) and then tells another process "done"
must have its writes seen by that other's next read. Over local Unix sockets a send is in
the coordinator's buffer when it returns, so one more sweep of every channel is enough
(`coordinator.py`). Over ZeroMQ a send leaves from a background thread, and the "done" may
travel on another connection (a Pool result, a pipe) and overtake the writes.

So, before answering requests, the coordinator sends SYNC(generation) to every other
client and waits until each has answered SYNCED(generation) or is gone. A client answers
from its reader thread (`_connection.Syncing`) on the same channel as its writes, so the
SYNCED arrives behind every write that client sent before the SYNC reached it; and the
SYNC was sent after the read arrived, which was after the "done", which was after the
writes. Requests that arrive while a barrier is out wait for the next one (their SYNC must
leave after they arrived). A client that is itself waiting for an answer has nothing in
flight (it sends nothing until answered), so it is not probed.

A client that neither answers nor dies (its heartbeats would stop with it) holds the
answers at most `grace` seconds; then they are given anyway and the delay is logged.

A client that has just exited may still have writes on their way when it is probed: the
probe then fails ("unreachable"), and the transport delivers everything that client sent
before it closes the channel (the ZeroMQ reactor reads what is still queued in its socket
first), so those writes are applied before the coordinator sees the client gone, and the
barrier waits for nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from ...errors import ChannelClosed
from ...transports.base import Frames
from ._handler import Session
from ._protocol import SYNC, sync_frames

__all__ = ["Barrier"]

log = logging.getLogger("skprocessing.share")
Request = tuple[Session, Frames]


class Barrier:
    """One barrier in flight at a time; see the module docstring."""

    def __init__(self, grace: float = 10.0):
        self.grace = grace
        self.generation = 0
        self.waiting: set[Session] = set()   # probed, not yet answered
        self.covered: list[Request] = []     # answered when the barrier in flight completes
        self.queued: list[Request] = []      # arrived later: wait for the next barrier
        self.started: float | None = None    # None: no barrier in flight

    def add(self, requests: list[Request]) -> None:
        self.queued.extend(requests)

    def start(self, sessions: Iterable[Session]) -> None:
        """Probe every session not waiting for an answer (call after accepting newcomers).
        A session already gone is not waited for; its last writes are still in its
        channel, and the coordinator's next sweep applies them before `done()`."""
        if self.started is not None or not self.queued:
            return
        self.generation += 1
        self.covered, self.queued = self.queued, []
        blocked = {session for session, _ in self.covered}
        self.waiting = set()
        self.started = time.monotonic()
        message = sync_frames(SYNC, self.generation)
        for session in sessions:
            if session in blocked:
                continue
            try:
                session.channel.send(message)
                self.waiting.add(session)
            except ChannelClosed:
                pass

    def synced(self, session: Session, generation: int) -> None:
        if generation == self.generation:
            self.waiting.discard(session)

    def gone(self, session: Session) -> None:
        self.waiting.discard(session)
        self.covered = [(s, f) for s, f in self.covered if s is not session]
        self.queued = [(s, f) for s, f in self.queued if s is not session]

    def done(self) -> list[Request]:
        """The requests that may be answered now (empty while the barrier is out)."""
        if self.started is None:
            return []
        if self.waiting and time.monotonic() - self.started < self.grace:
            return []
        if self.waiting:
            log.warning("Share coordinator: %d client(s) did not answer a read barrier within "
                        "%.0fs; answering anyway", len(self.waiting), self.grace)
        ready, self.covered = self.covered, []
        self.waiting = set()
        self.started = None
        return ready

    def timeout(self, idle: float) -> float:
        """How long the coordinator's wait may block."""
        if self.queued and self.started is None:  # the next barrier starts this turn
            return 0.0
        if self.started is not None and not self.waiting:  # done: answered next turn
            return 0.0
        if self.started is not None:
            return max(0.0, min(idle, self.started + self.grace - time.monotonic()))
        return idle
