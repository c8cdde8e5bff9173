"""The scheduler: one thread that owns every worker channel and all of the pool's I/O.

    caller threads                    scheduler thread                      workers
    ──────────────                    ────────────────                      ───────
    Pool.map ─ submit(Call) ─┐
    cancel / close ──────────┼─► commands + wake ─► loop:                ┌─► worker_main
                             │     channel          wait(wake, *workers) │   (connects to
    Acceptor thread ─ admit ─┘                      ├ RESULT → Call ─────┼──  the listener,
      (listener.accept +                            ├ closed → requeue,  │   says HELLO,
       HELLO)                                       │   retry or fail    │   runs chunks)
                                                    ├ timed item overdue │
    Call.get() ◄── finished chunks ─────────────────┤   → kill, replace  │
                                                    └ dispatch: cut chunks, FUNC once
                                                      per worker, TASK while credits ───┘

Only this thread touches worker channels, slots, the retry queue and the list of calls,
so none of them needs a lock; other threads talk to it through `_command`. Workers that
join by address, and the agents that start them on other hosts, are handled in
`_hosts.py`; dispatch in `_dispatch.py`; deaths, losses and timeouts in `_faults.py`.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from typing import Any

from ..._deadline import Deadline
from ...errors import ChannelClosed, DeserializationError, ProcessError, StateError
from ...serializers.codec import Codec
from ...transports.base import Capability, Channel, ProcessHandle, Transport
from ._call import Call
from ._chunks import Chunk
from ._dispatch import Dispatching
from ._faults import FaultHandling
from ._hosts import RemoteWorkers
from ._messages import AGENT, RESULT, STARTED, STOP
from ._worker import worker_main
from ._workers import Acceptor, WorkerSlot

__all__ = ["Scheduler"]

log = logging.getLogger("skprocessing.pool")


class Scheduler(Dispatching, FaultHandling, RemoteWorkers):
    """Runs calls on `size` workers it starts through `transport` (and any that join)."""

    def __init__(self, transport: Transport, codec: Codec, size: int, credits: int,
                 owns_transport: bool = False):
        self.transport = transport
        self._owns_transport = owns_transport  # built by the Pool: closed when the loop ends
        self.codec = codec
        self.size = size
        self.credits = credits
        self.broken: BaseException | None = None
        self._listener = transport.listen()
        self.address = self._listener.address
        self._wake_tx, self._wake_rx = transport.pipe()
        self._commands: collections.deque[tuple] = collections.deque()
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        self._slots: dict[Channel, WorkerSlot] = {}
        self._agents: dict[Channel, tuple[str, str]] = {}  # a worker host's nanny: (id, host)
        self._done_items = 0
        self._duplicates = 0
        self._lost_workers = 0
        self._no_workers_since: float | None = time.monotonic()
        self._next_handle_check = 0.0
        self._watch_handles = Capability.DEATH_CLOSES_CHANNELS not in transport.capabilities
        self._settling: set[Channel] = set()
        self._reliable_last_words = not self._watch_handles
        self._starting: dict[int, ProcessHandle] = {}
        self._calls: list[Call] = []
        self._requeue: collections.deque[Chunk] = collections.deque()
        self._chunk_ids = itertools.count(1)
        self._worker_ids = itertools.count(1)
        self._boot_failures = 0
        self._running = True
        self._stopped = threading.Event()  # the loop is over
        self._done = threading.Event()  # and its transport closed, if it was the pool's
        self._spec = transport.spec()
        self._token = codec.token()
        self._acceptor = Acceptor(self._listener, codec, self._admit)
        self._acceptor.start()
        for _ in range(size):
            self._start_worker()
        self._thread = threading.Thread(target=self._run, name="skprocessing-pool", daemon=True)
        self._thread.start()

    # -- called from other threads -----------------------------------------------------------
    def submit(self, call: Call) -> None:
        call.wake = self._wake
        self._command("submit", call)

    def cancel(self, call: Call, kill: bool) -> None:
        """Stop cutting chunks for `call` and drop its results; with `kill`, also end the
        workers running its items now (they are replaced), so nothing of it runs on."""
        call.cancelled = True
        call.planner.close()  # stop reading its input
        self._command("cancel", call, kill)

    def stop(self, timeout: float | None = None, terminate: bool = False) -> bool:
        """End the scheduler: STOP the workers (or kill them), wait for them to exit."""
        self._command("terminate" if terminate else "stop")
        return self._done.wait(timeout)

    def worker_pids(self) -> list[int]:
        """Pids of the workers it started that are running or starting (for tests, tools)."""
        handles = [s.handle for s in list(self._slots.values())] + list(self._starting.values())
        return [h.pid for h in handles if h is not None and h.pid is not None]

    def status(self, timeout: float = 60.0) -> dict[str, Any]:
        """A snapshot taken by the scheduler thread (see `Pool.status`). A busy machine
        may delay the answer; only a loop that has ended, or `timeout`, makes it fail."""
        box: dict[str, Any] = {}
        done = threading.Event()
        self._command("status", box, done)
        deadline = Deadline(timeout)
        while not done.wait(0.05):
            if self._stopped.is_set() and not done.is_set():
                raise StateError("the pool's scheduler has ended (the pool is closed or failed)")
            if deadline.expired():
                raise StateError(f"the pool's scheduler did not answer within {timeout:g}s")
        return box

    def _admit(self, channel: Channel, hello: tuple) -> None:
        self._command("admit", channel, hello)
        if self._stopped.is_set():  # the loop is over: nobody else will answer it
            self._turn_away_late_joiners()

    def _turn_away_late_joiners(self) -> None:
        # A worker greeted while the loop was ending (an agent replacing a worker it had
        # just stopped, say) is told to STOP and its session closed, not left open: an
        # open session keeps the listening port bound, and a new pool could not bind it.
        commands = self._commands
        while commands:
            try:
                name, *args = commands.popleft()
            except IndexError:
                return
            if name == "admit":
                channel = args[0]
                _send_quietly(channel, self.codec.encode(STOP, None))
                channel.close()

    def _command(self, *command: Any) -> None:
        self._commands.append(command)
        self._wake()

    def _wake(self) -> None:
        with self._wake_lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self._wake_tx.send([b""])
        except ChannelClosed:
            pass  # the loop has ended; the caller sees `broken` or a closed pool

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while self._running:
                ready = self.transport.wait([self._wake_rx, *self._slots, *self._agents],
                                            self._wait_time())
                for channel in ready:
                    if channel is self._wake_rx:
                        self._on_wake()
                    elif channel in self._slots:
                        self._on_message(self._slots[channel])
                    elif channel in self._agents:
                        self._on_agent_message(channel)
                self._check_starting()
                self._check_handles()
                self._check_no_workers()
                self._check_deadlines()
                self._dispatch()
        except BaseException as exc:  # a bug or a broken transport must not hang callers
            self._break(exc)
        finally:
            self._stopped.set()
            self._turn_away_late_joiners()
            if self._owns_transport:
                self._close_transport()
            self._done.set()

    def _close_transport(self) -> None:
        # Here, after every exit path (close, terminate, a dropped pool, a failure) and
        # before `stop()` returns: its ports and private directories go with the pool.
        # The acceptor may still be closing the listener: give it a moment first.
        self._acceptor.join(1.0)
        try:
            self.transport.close()
        except Exception:
            log.exception("closing the pool's transport failed")

    def _wait_time(self) -> float | None:
        if self._starting:
            return 0.05  # watch for workers that die before they say HELLO
        deadlines = [s.deadline for s in self._slots.values() if s.deadline is not None]
        if self._watch_handles and any(s.handle is not None for s in self._slots.values()):
            deadlines.append(self._next_handle_check)
        deadlines += [self._slots[c].settle_at for c in self._settling if c in self._slots]
        if self._no_workers_since is not None:
            deadlines += [self._waiting_since(c) + c.timeout for c in self._waiting_calls()
                          if c.timeout is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _on_wake(self) -> None:
        self._wake_rx.recv()
        with self._wake_lock:
            self._wake_pending = False
        while self._commands:
            name, *args = self._commands.popleft()
            getattr(self, f"_do_{name}")(*args)

    def _on_message(self, slot: WorkerSlot) -> None:
        try:
            frames = slot.channel.recv()
        except ChannelClosed:
            self._lost(slot)
            return
        try:
            kind, body = self.codec.decode(frames)
        except DeserializationError as exc:
            kind, body = RESULT, exc
        if kind == STARTED:
            if slot.inflight and slot.inflight[0].chunk_id == body and not slot.inflight[0].started:
                self._started(slot)
            return
        if kind != RESULT or not slot.inflight:
            return  # nothing else is expected from a worker: drop it rather than die
        if isinstance(body, DeserializationError) or body[0] is None:
            chunk = slot.inflight.popleft()  # the chunk it was running: it had no id to give
        else:
            chunk = _take(slot.inflight, body[0])
            if chunk is None:
                # Not a chunk this worker holds: a late duplicate (the chunk was settled
                # elsewhere after this worker was given up on). Each result counts once.
                self._duplicates += 1
                log.warning("dropped a duplicate result of chunk %s from %s", body[0], slot.describe())
                return
        slot.credits += 1
        slot.deadline = None
        if isinstance(body, DeserializationError):
            self._fail_chunk(chunk, DeserializationError(
                f"the results of {chunk.describe()} could not be loaded: {body}"))
            return
        chunk_id, values, errors, seconds, *rest = body
        if rest and rest[0] and slot.inflight and not slot.inflight[0].started:
            self._started(slot)  # it was waiting in the worker: it starts now (see STARTED)
        if chunk_id is None:
            self._unloadable(chunk, errors)
            return
        slot.done += len(chunk)
        self._done_items += len(chunk)
        chunk.call.finished(chunk, values, errors, seconds, sum(memoryview(f).nbytes for f in frames))

    def _started(self, slot: WorkerSlot) -> None:
        running = slot.inflight[0]
        running.started = True
        if running.call.timeout is not None:
            slot.deadline = time.monotonic() + running.call.timeout

    # -- commands ----------------------------------------------------------------------------
    def _do_submit(self, call: Call) -> None:
        if self.broken is not None:
            call.fail(self.broken)
        else:
            call.queued_at = time.monotonic()  # type: ignore[attr-defined]  # see _hosts
            self._calls.append(call)

    def _do_cancel(self, call: Call, kill: bool) -> None:
        kept = [c for c in self._requeue if c.call is not call]
        call.outstanding -= len(self._requeue) - len(kept)
        self._requeue = collections.deque(kept)
        if kill:
            for slot in list(self._slots.values()):  # _kill may remove a slot
                if slot.inflight and slot.inflight[0].call is call:
                    self._kill(slot, ("cancel", None))
        call.check_done()

    def _do_admit(self, channel: Channel, hello: tuple) -> None:
        worker_id, pid, credits, *more = hello
        host, agent = (list(more) + [None, None])[:2]
        if not self._running:
            _send_quietly(channel, self.codec.encode(STOP, None))
            channel.close()
            return
        if worker_id == AGENT:
            self._agents[channel] = (agent, host)
            log.info("agent of host %s joined (pid %s)", host, pid)
            return
        handle = self._starting.get(worker_id) if isinstance(worker_id, int) else None
        # Into _slots before out of _starting: worker_pids() (another thread) sees it always.
        self._slots[channel] = WorkerSlot(channel, pid, max(1, int(credits)), handle, host, agent)
        self._starting.pop(worker_id, None)
        self._boot_failures = 0
        if handle is None:
            log.info("worker pid %s of host %s joined (%d connected)", pid, host, len(self._slots))

    def _do_stop(self) -> None:
        self._running = False
        stop = self.codec.encode(STOP, None)
        for slot in self._slots.values():
            _send_quietly(slot.channel, stop)
        self._shutdown(kill=False)

    def _do_terminate(self) -> None:
        self._running = False
        self._fail_calls(StateError("the pool was terminated while this map was running"))
        self._shutdown(kill=True)

    def _shutdown(self, kill: bool) -> None:
        self._acceptor.stopping.set()
        handles = [s.handle for s in self._slots.values() if s.handle is not None]
        for handle in self._starting.values():
            handle.kill()
        for handle in handles:
            if kill:
                handle.kill()
        deadline = Deadline(5.0)
        for handle in [*handles, *self._starting.values()]:
            if not handle.join(deadline.remaining()):
                handle.kill()
                handle.join(1.0)
        for slot in self._slots.values():
            slot.channel.close()
        for channel in self._agents:
            channel.close()
        self._slots.clear()
        self._agents.clear()
        self._starting.clear()
        self._wake_rx.close()
        self._wake_tx.close()

    def _break(self, exc: BaseException) -> None:
        self.broken = ProcessError(f"the pool's scheduler failed: {type(exc).__name__}: {exc}")
        self.broken.__cause__ = exc
        self._fail_calls(self.broken)
        try:
            self._shutdown(kill=True)
        except Exception:
            pass

    def _fail_calls(self, error: BaseException) -> None:
        for call in {*self._calls, *(c.call for c in self._requeue),
                     *(c.call for s in self._slots.values() for c in s.inflight)}:
            call.fail(error)
        self._calls.clear()
        self._requeue.clear()

    # -- workers -----------------------------------------------------------------------------
    def _start_worker(self) -> None:
        worker_id = next(self._worker_ids)
        self._starting[worker_id] = self.transport.start(
            worker_main, self._spec, self.address, self._token, worker_id, self.credits)


def _take(inflight: collections.deque[Chunk], chunk_id: int) -> Chunk | None:
    """Remove and return the chunk `chunk_id` (almost always the first), or None."""
    if inflight and inflight[0].chunk_id == chunk_id:
        return inflight.popleft()
    for chunk in inflight:
        if chunk.chunk_id == chunk_id:
            inflight.remove(chunk)
            return chunk
    return None


def _send_quietly(channel: Channel, frames: list) -> None:
    try:
        channel.send(frames)
    except ChannelClosed:
        pass
