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
so none of them needs a lock; other threads talk to it through `_command`.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from typing import Any

from ...errors import ChannelClosed, ProcessDiedError, ProcessError, ProcessTimeoutError, StateError
from ...serializers.codec import Codec
from ...transports.base import Channel, ProcessHandle, Transport
from ._call import Call
from ._chunks import Chunk
from ._messages import FUNC, RESULT, STOP, TASK, pack_error
from ._worker import worker_main
from ._workers import Acceptor, WorkerSlot

__all__ = ["Scheduler"]

BOOT_FAILURES = 5  # workers in a row that die before saying HELLO: the pool is broken


class Scheduler:
    """Runs calls on `size` workers it starts through `transport` (and any that join)."""

    def __init__(self, transport: Transport, codec: Codec, size: int, credits: int):
        self.transport = transport
        self.codec = codec
        self.size = size
        self.credits = credits
        self.broken: BaseException | None = None
        self._listener = transport.listen()
        self._wake_tx, self._wake_rx = transport.pipe()
        self._commands: collections.deque[tuple] = collections.deque()
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        self._slots: dict[Channel, WorkerSlot] = {}
        self._starting: dict[int, ProcessHandle] = {}
        self._calls: list[Call] = []
        self._requeue: collections.deque[Chunk] = collections.deque()
        self._chunk_ids = itertools.count(1)
        self._worker_ids = itertools.count(1)
        self._boot_failures = 0
        self._running = True
        self._stopped = threading.Event()
        self._spec = getattr(transport, "url", None) or transport.name
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
        self._command("cancel", call, kill)

    def stop(self, timeout: float | None = None, terminate: bool = False) -> bool:
        """End the scheduler: STOP the workers (or kill them), wait for them to exit."""
        self._command("terminate" if terminate else "stop")
        return self._stopped.wait(timeout)

    def worker_pids(self) -> list[int]:
        """Pids of the workers it started that are running or starting (for tests, tools)."""
        handles = [s.handle for s in list(self._slots.values())] + list(self._starting.values())
        return [h.pid for h in handles if h is not None and h.pid is not None]

    def _admit(self, channel: Channel, hello: tuple) -> None:
        self._command("admit", channel, hello)

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
                ready = self.transport.wait([self._wake_rx, *self._slots], self._wait_time())
                for channel in ready:
                    if channel is self._wake_rx:
                        self._on_wake()
                    elif channel in self._slots:
                        self._on_message(self._slots[channel])
                self._check_starting()
                self._check_deadlines()
                self._dispatch()
        except BaseException as exc:  # a bug or a broken transport must not hang callers
            self._break(exc)
        finally:
            self._stopped.set()

    def _wait_time(self) -> float | None:
        if self._starting:
            return 0.05  # watch for workers that die before they say HELLO
        deadlines = [s.deadline for s in self._slots.values() if s.deadline is not None]
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
        kind, body = self.codec.decode(frames)
        if kind != RESULT:
            return  # nothing else is expected from a worker; ignore, do not die
        chunk_id, values, errors, seconds = body
        chunk = slot.inflight.popleft()
        if chunk.chunk_id != chunk_id:
            raise ProcessError(f"protocol error: {slot.describe()} answered chunk {chunk_id}, "
                               f"expected {chunk.chunk_id}")
        slot.credits += 1
        slot.deadline = None
        chunk.call.finished(chunk, values, errors, seconds)
        # Lost workers are replaced in _lost; a surplus of credits needs nothing here.

    # -- commands ----------------------------------------------------------------------------
    def _do_submit(self, call: Call) -> None:
        if self.broken is not None:
            call.fail(self.broken)
        else:
            self._calls.append(call)

    def _do_cancel(self, call: Call, kill: bool) -> None:
        kept = [c for c in self._requeue if c.call is not call]
        call.outstanding -= len(self._requeue) - len(kept)
        self._requeue = collections.deque(kept)
        if kill:
            for slot in self._slots.values():
                if slot.inflight and slot.inflight[0].call is call:
                    self._kill(slot, ("cancel", None))
        call.check_done()

    def _do_admit(self, channel: Channel, hello: tuple) -> None:
        worker_id, pid, credits = hello
        handle = self._starting.pop(worker_id, None)
        if not self._running:
            _send_quietly(channel, self.codec.encode(STOP, None))
            channel.close()
            return
        self._slots[channel] = WorkerSlot(channel, pid, max(1, int(credits)), handle)
        self._boot_failures = 0

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
        deadline = time.monotonic() + 5.0
        for handle in [*handles, *self._starting.values()]:
            if not handle.join(max(0.0, deadline - time.monotonic())):
                handle.kill()
                handle.join(1.0)
        for slot in self._slots.values():
            slot.channel.close()
        self._slots.clear()
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
            worker_main, self._spec, self._listener.address, self._token, worker_id, self.credits)

    def _check_starting(self) -> None:
        for worker_id, handle in list(self._starting.items()):
            if handle.is_alive():
                continue
            del self._starting[worker_id]
            self._boot_failures += 1
            if self._boot_failures >= BOOT_FAILURES:
                raise ProcessError(f"pool workers exit before they start working (the last "
                                   f"exited with code {handle.exitcode}); see their stderr")
            if self._running:
                self._start_worker()

    def _kill(self, slot: WorkerSlot, fate: tuple[str, Any]) -> None:
        slot.fate = fate
        slot.deadline = None
        if slot.handle is not None:
            slot.handle.kill()  # its channel closes; _lost() runs when the loop sees it
        else:
            self._lost(slot)  # a worker that joined by address: drop the connection

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for slot in list(self._slots.values()):
            if slot.deadline is not None and slot.deadline <= now and slot.fate is None:
                self._kill(slot, ("timeout", slot.inflight[0]))

    def _lost(self, slot: WorkerSlot) -> None:
        """A worker's channel closed: settle what it held, start a replacement."""
        del self._slots[slot.channel]
        slot.channel.close()
        if slot.handle is not None:
            slot.handle.join(1.0)  # for its exit code in the error message
        if slot.inflight:
            running, *queued = slot.inflight
            for chunk in reversed(queued):  # never started: back to the front, no penalty
                self._requeue_or_drop(chunk)
            self._settle_running(running, slot)
        if self._running and slot.handle is not None:
            self._start_worker()

    def _requeue_or_drop(self, chunk: Chunk) -> None:
        if chunk.call.cancelled:
            chunk.call.outstanding -= 1
            chunk.call.check_done()
        else:
            self._requeue.appendleft(chunk)

    def _settle_running(self, chunk: Chunk, slot: WorkerSlot) -> None:
        call = chunk.call
        fate = slot.fate[0] if slot.fate else None
        if call.cancelled:
            self._drop(chunk)
        elif fate == "timeout":
            error = ProcessTimeoutError(
                f"{chunk.describe()} ran over its {call.timeout:g} s timeout; its worker "
                f"(pid {slot.pid}) was killed and replaced", section="run", timeout=call.timeout)
            self._fail_chunk(chunk, error)
        elif len(chunk) > 1:
            # Which item killed it is unknown: run each alone, so the next death names one.
            call.outstanding -= 1
            for offset in reversed(range(len(chunk))):
                item = chunk.items[offset]
                chunk_id = next(self._chunk_ids)
                frames = self.codec.encode(TASK, (chunk_id, call.call_id, [item]))
                single = Chunk(call, chunk_id, chunk.start + offset, [item], frames)
                call.outstanding += 1
                self._requeue.appendleft(single)
        else:
            chunk.deaths += 1
            if chunk.deaths > call.retries:
                times = f" ({chunk.deaths} attempts)" if chunk.deaths > 1 else ""
                self._fail_chunk(chunk, ProcessDiedError(
                    f"{chunk.describe()} of {call.name} did not finish: {slot.describe()} "
                    f"while running it{times}", exitcode=slot.handle and slot.handle.exitcode))
            else:
                self._requeue.appendleft(chunk)

    def _drop(self, chunk: Chunk) -> None:
        chunk.call.outstanding -= 1
        chunk.call.check_done()

    def _fail_chunk(self, chunk: Chunk, error: BaseException) -> None:
        packed = pack_error(error, "")
        chunk.call.finished(chunk, [None] * len(chunk), dict.fromkeys(range(len(chunk)), packed), 0.0)

    # -- dispatch ----------------------------------------------------------------------------
    def _dispatch(self) -> None:
        self._calls = [c for c in self._calls if not (c.cancelled or c.done or c.planner.exhausted)]
        if not self._running or not (self._calls or self._requeue):
            return
        sent = True
        while sent:  # one chunk per worker per round, so work spreads evenly
            sent = False
            for slot in list(self._slots.values()):
                if slot.credits > 0 and not slot.timed and slot.fate is None:
                    chunk = self._next_chunk(idle=not slot.inflight)
                    if chunk is not None:
                        self._send(slot, chunk)
                        sent = True

    def _next_chunk(self, idle: bool) -> Chunk | None:
        # A chunk with a per-item timeout goes only to an idle worker, so the clock that
        # starts when it is sent measures that item alone.
        for index, chunk in enumerate(self._requeue):
            if chunk.call.timeout is None or idle:
                del self._requeue[index]
                return chunk
        for call in self._calls:
            if (call.timeout is None or idle) and call.wants_more():
                try:
                    chunks = call.next_chunks(self.codec, self.size, self._chunk_ids.__next__)
                except Exception as exc:  # the caller's iterator raised: the call fails with it
                    call.fail(exc)
                    continue
                if chunks:
                    self._requeue.extendleft(reversed(chunks[1:]))
                    return chunks[0]
        return None

    def _send(self, slot: WorkerSlot, chunk: Chunk) -> None:
        call = chunk.call
        slot.inflight.append(chunk)
        slot.credits -= 1
        try:
            if call.call_id not in slot.functions:
                forget = [cid for cid in slot.functions if cid not in {c.call_id for c in self._calls}]
                slot.channel.send(self.codec.encode(
                    FUNC, (call.call_id, call.star, call.skprocess, call.function, forget)))
                slot.functions.difference_update(forget)
                slot.functions.add(call.call_id)
            slot.channel.send(chunk.frames)
        except ChannelClosed:
            self._lost(slot)
            return
        if call.timeout is not None:
            slot.deadline = time.monotonic() + call.timeout


def _send_quietly(channel: Channel, frames: list) -> None:
    try:
        channel.send(frames)
    except ChannelClosed:
        pass
