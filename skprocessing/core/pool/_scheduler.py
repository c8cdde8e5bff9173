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
so none of them needs a lock; other threads talk to it through `_command` (a bound method
and its arguments, run on this thread). The scheduler reads workers' messages and runs
the loop; its parts are objects of their own, each with its state:

    Workers     (_workers.py)   connected, starting and agents; start, admit, replace, end
    Backlog     (_backlog.py)   calls and the retry queue; the next chunk; split, fail
    Dispatcher  (_dispatch.py)  backlog chunks to free credits; FUNC once per worker
    Faults      (_faults.py)    kill for a timeout or cancel; settle a lost worker's chunks
    Hosts       (_hosts.py)     agents' reports, dead processes, maps with no worker yet
    Activity    (_activity.py)  throughput lately and recent losses, for status()
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..._deadline import Deadline
from ...errors import ChannelClosed, DeserializationError, ProcessError, ShareError, StateError
from ...serializers.codec import Codec
from ...transports.base import Capability, Channel, Transport
from .. import _task_writes
from ._activity import Activity
from ._backlog import Backlog
from ._call import Call
from ._chunks import Chunk
from ._dispatch import Dispatcher
from ._faults import Faults
from ._hosts import Hosts
from ._messages import RESULT, STARTED, STOP
from ._workers import Acceptor, WorkerSlot, Workers

__all__ = ["Scheduler"]

log = logging.getLogger("skprocessing.pool")


class Scheduler:
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
        self._commands: collections.deque[tuple[Callable[..., None], tuple]] = collections.deque()
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        self._done_items = 0
        self._duplicates = 0
        self._watch_handles = Capability.DEATH_CLOSES_CHANNELS not in transport.capabilities
        self._stopped = threading.Event()  # the loop is over
        self._done = threading.Event()  # and its transport closed, if it was the pool's
        self._activity = Activity()  # throughput lately, recent losses (for status)
        self._workers = Workers(transport, self.address, codec, credits)
        self._backlog = Backlog(codec)
        self._faults = Faults(codec, self._workers, self._backlog, self._activity,
                              reliable_last_words=not self._watch_handles)
        self._dispatcher = Dispatcher(codec, self._workers, self._backlog, self._faults.lost)
        self._hosts = Hosts(codec, self.address, self._workers, self._backlog, self._watch_handles,
                            read=self._on_message, lost=self._faults.lost, cancel=self._drop_queued)
        self._acceptor = Acceptor(self._listener, codec, self._admit,
                                  status=lambda: self.status(timeout=10.0))
        self._acceptor.start()
        for _ in range(size):
            self._workers.start()
        self._thread = threading.Thread(target=self._run, name="skprocessing-pool", daemon=True)
        self._thread.start()

    # -- called from other threads -----------------------------------------------------------
    def submit(self, call: Call) -> None:
        call.wake = self._wake
        self._command(self._do_submit, call)

    def cancel(self, call: Call, kill: bool) -> None:
        """Stop cutting chunks for `call` and drop its results; with `kill`, also end the
        workers running its items now (they are replaced), so nothing of it runs on."""
        call.cancelled = True
        call.planner.close()  # stop reading its input
        self._command(self._do_cancel, call, kill)

    def stop(self, timeout: float | None = None, terminate: bool = False) -> bool:
        """End the scheduler: STOP the workers (or kill them), wait for them to exit."""
        self._command(self._do_terminate if terminate else self._do_stop)
        return self._done.wait(timeout)

    def worker_pids(self) -> list[int]:
        """Pids of the workers it started that are running or starting (for tests, tools)."""
        return self._workers.pids()

    def status(self, timeout: float = 60.0) -> dict[str, Any]:
        """A snapshot taken by the scheduler thread (see `Pool.status`). A busy machine
        may delay the answer; only a loop that has ended, or `timeout`, makes it fail."""
        box: dict[str, Any] = {}
        done = threading.Event()
        self._command(self._do_status, box, done)
        deadline = Deadline(timeout)
        while not done.wait(0.05):
            if self._stopped.is_set() and not done.is_set():
                raise StateError("the pool's scheduler has ended (the pool is closed or failed)")
            if deadline.expired():
                raise StateError(f"the pool's scheduler did not answer within {timeout:g}s")
        return box

    def _admit(self, channel: Channel, hello: tuple) -> None:
        self._command(self._do_admit, channel, hello)
        if self._stopped.is_set():  # the loop is over: nobody else will answer it
            self._turn_away_late_joiners()

    def _turn_away_late_joiners(self) -> None:
        # A worker greeted while the loop was ending (an agent replacing a worker it had
        # just stopped, say) is told to STOP and its session closed, not left open: an
        # open session keeps the listening port bound, and a new pool could not bind it.
        commands = self._commands
        while commands:
            try:
                command, args = commands.popleft()
            except IndexError:
                return
            if command == self._do_admit:
                channel = args[0]
                _send_quietly(channel, self.codec.encode(STOP, None))
                channel.close()

    def _command(self, command: Callable[..., None], *args: Any) -> None:
        self._commands.append((command, args))
        self._wake()

    def _wake(self) -> None:
        # The flag is set only once the byte is sent: a Ctrl-C landing between the two
        # must not leave it set with nothing to read, or no command would wake the loop again.
        with self._wake_lock:
            if self._wake_pending:
                return
            try:
                self._wake_tx.send([b""])
            except ChannelClosed:
                return  # the loop has ended; the caller sees `broken` or a closed pool
            self._wake_pending = True

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        workers = self._workers
        try:
            while workers.running:
                ready = self.transport.wait([self._wake_rx, *workers.slots, *workers.agents],
                                            self._wait_time())
                for channel in ready:
                    if channel is self._wake_rx:
                        self._on_wake()
                    elif channel in workers.slots:
                        self._on_message(workers.slots[channel])
                    elif channel in workers.agents:
                        self._hosts.on_agent_message(channel)
                if workers.starting and not self._acceptor.is_alive():
                    raise ProcessError("the pool's listener failed: no worker can join any more")
                workers.check_starting()
                self._hosts.check_handles()
                self._hosts.check_no_workers()
                self._faults.check_deadlines()
                self._dispatcher.dispatch()
                self._activity.sample(self._done_items)
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
        if self._workers.starting:
            return 0.05  # watch for workers that die before they say HELLO
        deadlines = [s.deadline for s in self._workers.slots.values() if s.deadline is not None]
        deadlines += self._hosts.deadlines()
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _on_wake(self) -> None:
        self._wake_rx.recv()
        with self._wake_lock:
            self._wake_pending = False
        while self._commands:
            command, args = self._commands.popleft()
            command(*args)

    def _on_message(self, slot: WorkerSlot) -> None:
        try:
            frames = slot.channel.recv()
        except ChannelClosed:
            self._faults.lost(slot)
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
            self._backlog.fail_chunk(chunk, DeserializationError(
                f"the results of {chunk.describe()} could not be loaded: {body}"))
            return
        chunk_id, values, errors, seconds, *rest = body
        if rest and rest[0] and slot.inflight and not slot.inflight[0].started:
            self._started(slot)  # it was waiting in the worker: it starts now (see STARTED)
        if chunk_id is None:
            self._backlog.unloadable(chunk, errors)
            return
        if len(rest) > 1 and rest[1] and not self._apply_task_writes(chunk, rest[1]):
            return
        slot.done += len(chunk)
        self._done_items += len(chunk)
        chunk.call.finished(chunk, values, errors, seconds, sum(memoryview(f).nbytes for f in frames))

    def _apply_task_writes(self, chunk: Chunk, writes: list) -> bool:
        # This result is the chunk's (a duplicate never gets here): its held Share writes
        # count now, once, before the caller can see the result (core/_task_writes.py).
        try:
            _task_writes.apply(writes)
        except Exception as exc:
            self._backlog.fail_chunk(chunk, ShareError(
                f"the Share writes of {chunk.describe()} could not be applied: {exc}"))
            return False
        return True

    def _started(self, slot: WorkerSlot) -> None:
        running = slot.inflight[0]
        running.started = True
        if running.call.timeout is not None:
            slot.deadline = time.monotonic() + running.call.timeout

    # -- commands (run on this thread) -------------------------------------------------------
    def _do_submit(self, call: Call) -> None:
        if self.broken is not None:
            call.fail(self.broken)
        else:
            self._backlog.add(call)

    def _do_cancel(self, call: Call, kill: bool) -> None:
        self._backlog.cancel(call)
        if kill:
            for slot in list(self._workers.slots.values()):  # kill() may remove a slot
                if slot.inflight and slot.inflight[0].call is call:
                    self._faults.kill(slot, ("cancel", None))
        call.check_done()

    def _drop_queued(self, call: Call) -> None:
        self._do_cancel(call, False)

    def _do_admit(self, channel: Channel, hello: tuple) -> None:
        if not self._workers.running:
            _send_quietly(channel, self.codec.encode(STOP, None))
            channel.close()
            return
        self._workers.admit(channel, hello)

    def _do_stop(self) -> None:
        self._workers.running = False
        stop = self.codec.encode(STOP, None)
        for slot in self._workers.slots.values():
            _send_quietly(slot.channel, stop)
        self._shutdown(kill=False)

    def _do_terminate(self) -> None:
        self._workers.running = False
        self._fail_calls(StateError("the pool was terminated while this map was running"))
        self._shutdown(kill=True)

    def _do_status(self, box: dict, done: threading.Event) -> None:
        slots = self._workers.slots.values()
        box.update(
            address=self.address,
            workers=len(slots),
            starting=len(self._workers.starting),
            hosts=dict(collections.Counter(s.host or "?" for s in slots)),
            agents=sorted(host for _, host in self._workers.agents.values()),
            in_flight=sum(len(c) for c in self._workers.held()),
            queued=sum(len(c) for c in self._backlog.requeue),
            done=self._done_items,
            calls=len({id(c) for c in [*self._backlog.calls, *(k.call for k in self._backlog.requeue),
                                       *(k.call for k in self._workers.held())]
                       if not c.done}),
            lost_workers=self._workers.lost,
            duplicates_dropped=self._duplicates,
            throughput=round(self._activity.throughput(self._done_items), 3),
            uptime=round(time.monotonic() - self._activity.started, 3),
            recent_losses=list(self._activity.losses),
            per_worker=[{"pid": s.pid, "host": s.host, "in_flight": sum(len(c) for c in s.inflight),
                         "done": s.done, "credits": s.credits} for s in slots])
        done.set()

    def _shutdown(self, kill: bool) -> None:
        self._acceptor.stopping.set()
        self._workers.shutdown(kill)
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
        self._backlog.fail_all(error, self._workers.held())


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
