"""The coordinator: the one process that owns a Share's objects.

    owner ──control channel──┐
                             ▼
    clients ──connect()──> Listener ──accept──> sessions ─┐
                                                          ▼
            main loop: wait(control, listener, sessions) → drain → apply → answer
                                            │
                                          Store (the authoritative objects)

Ordering. Each client's messages are applied in the order it sent them, and the loop is
the only thread touching the store, so every operation happens at one point in a single
order. Pipelined writes (no answer wanted) are applied as soon as they are read. An
answered request is read in one loop turn and answered in the next, after one more sweep
of every channel and of the accept queue: anything any process finished sending before
that request was sent is in some buffer by then, so it is applied first. That is what
lets a process that sends writes, then tells another process "done", have those writes
seen by the other's next read, with no acknowledgement per write. (A client waits for
each answer before sending more, so an answered request is the last in its channel.)
This holds for transports whose send returns once the data is in the receiver's buffer,
as local Unix sockets do. Over a network transport (ZeroMQ: sends leave from a background
thread, and the "done" may overtake the writes on another connection) the one sweep is
replaced by a read barrier: every other client is probed and answers behind its own
writes before the request is answered (`_barrier.py`).

The coordinator ends when the owner says stop, or when the owner's control channel
closes (the owner is gone).
"""

from __future__ import annotations

import collections
import sys
import traceback
from typing import Any

from ...errors import ChannelClosed, DeserializationError
from ...serializers.codec import Codec
from ...transports import get_transport
from ...transports.base import Capability, Channel, Frames, Listener, Transport
from ._barrier import Barrier
from ._handler import Handler, Session
from ._protocol import BATCH_KIND, FENCE, READS, REPLY, RESUME, SYNCED, WHO, Wire, sync_gen, unbatch
from ._resume import Record, Records
from ._store import Store, register_store

__all__ = ["main", "READY", "FAILED", "STOP"]

READY, FAILED, STOP = b"R", b"F", b"S"  # control-channel messages (raw frames)
_IDLE = 1.0  # wait timeout when idle (a stop on the control channel wakes the loop at once)
_SYNCED_KIND = SYNCED[0]
_UNORDERED = (FENCE | REPLY, WHO | REPLY)  # answered at once: a write window, an identity check


def main(transport_spec: Any, codec_token: Any, control: Channel, address: str | None,
         share_key: str, saved: dict[str, list[bytes]]) -> None:
    """Entry point of the coordinator process (started with `Transport.start`): loads the
    `saved` objects, listens (at `address` again after a restart), reports, serves."""
    store = Store()
    try:
        transport = get_transport(transport_spec)
        codec = Wire(Codec.from_token(codec_token))
        store.load(saved, codec.serializer.loads)
        listener = transport.listen(address)
    except Exception:
        control.send([FAILED, traceback.format_exc().encode()])
        return
    register_store(share_key, store)
    coordinator = Coordinator(transport, listener, Handler(store, codec, share_key), control)
    # Then where clients may connect (a listener bound to every interface lists this
    # host's addresses), best first.
    control.send([READY, listener.address.encode(),
                  *(address.encode() for address in listener.reachable_addresses())])
    coordinator.run()


class Coordinator:
    """The main loop; see the module docstring."""

    def __init__(self, transport: Transport, listener: Listener, handler: Handler,
                 control: Channel):
        self.transport = transport
        self.listener = listener
        self.handler = handler
        self.control = control
        self.sessions: dict[Channel, Session] = {}
        self.records = Records()  # network clients' numbering, across their sessions
        self.stopping = False
        # Sends that return before delivery (a network transport) need the read barrier.
        immediate = Capability.IMMEDIATE_DELIVERY in transport.capabilities
        self.barrier = None if immediate else Barrier()

    def run(self) -> None:
        if self.barrier is not None:
            return self._run_with_barrier()
        held: list[tuple[Session, Frames]] = []
        try:
            while not self.stopping:
                # (Transport.wait takes listeners too: ready = a connection to accept.)
                waited = [self.control, self.listener, *self.sessions]
                ready = self.transport.wait(waited, 0.0 if held else _IDLE)
                fresh: list[tuple[Session, Frames]] = []
                for channel in ready:
                    self._serve(channel, fresh)
                if held:
                    # A client may have connected, written and told someone before a held
                    # request was sent, and still sit in the accept queue: take it in first.
                    self._accept_all(fresh)
                    for session, frames in held:
                        self._answer(session, frames)
                held = fresh
        finally:
            self.stopping = True
            self._shut()

    def _run_with_barrier(self) -> None:
        barrier = self.barrier
        try:
            while not self.stopping:
                waited = [self.control, self.listener, *self.sessions]
                ready = self.transport.wait(waited, barrier.timeout(_IDLE))
                fresh: list[tuple[Session, Frames]] = []
                for channel in ready:
                    self._serve(channel, fresh)
                barrier.add(fresh)
                for session, frames in barrier.done():
                    self._answer(session, frames)
                if barrier.queued and barrier.started is None:
                    # Newcomers are probed too: one may have written and signalled already.
                    more: list[tuple[Session, Frames]] = []
                    self._accept_all(more)
                    barrier.add(more)
                    barrier.start(list(self.sessions.values()))
        finally:
            self.stopping = True
            self._shut()

    def _serve(self, channel: Any, fresh: list[tuple[Session, Frames]]) -> None:
        if channel is self.control:
            self._on_control()
        elif channel is self.listener:
            self._accept_all(fresh)
        else:
            self._drain(self.sessions[channel], fresh)

    def _accept_all(self, fresh: list[tuple[Session, Frames]]) -> None:
        while True:
            channel = self.listener.accept(timeout=0)
            if channel is None:
                return
            session = self.sessions[channel] = Session(channel)
            self._drain(session, fresh)

    def _drain(self, session: Session, fresh: list[tuple[Session, Frames]]) -> None:
        """Apply every pipelined message waiting on this channel; hold an answered one."""
        channel = session.channel
        try:
            while channel.poll(0):
                self._take(session, channel.recv(), fresh)
        except ChannelClosed:
            self._drop(session)  # a client gone mid-message: nothing half-applied

    def _take(self, session: Session, frames: Frames, fresh: list[tuple[Session, Frames]]) -> None:
        kind = frames[0][0] if len(frames[0]) else 0
        if kind & REPLY:  # answered next turn, after a sweep
            if kind in _UNORDERED and self.barrier is not None:
                self._answer(session, frames)  # not a read of shared data: no barrier
            else:
                if kind not in _UNORDERED:
                    session.number_request()
                fresh.append((session, frames))
        elif kind == RESUME:
            self._resume(session, frames)
        elif kind == BATCH_KIND:
            self._take_batch(session, frames, fresh)
        elif kind == _SYNCED_KIND and self.barrier is not None \
                and (gen := sync_gen(frames, SYNCED)) is not None:
            self.barrier.synced(session, gen)
        elif session.admit():  # a pipelined write (not one replayed after it was applied)
            self.handler.handle(session, frames)

    def _take_batch(self, session: Session, frames: Frames,
                    fresh: list[tuple[Session, Frames]]) -> None:
        """A client's pipelined writes sent together (`_connection.Syncing`), perhaps
        followed by a request or a SYNCED: each taken as if it had come alone."""
        try:
            messages = unbatch(frames)
        except DeserializationError as exc:  # signed by a client, so a bug: say so, go on
            session.deferred.append(f"a batch of pipelined writes was lost: {exc}")
            return
        handle = self.handler.handle
        for message in messages:
            kind = message[0][0]
            if kind == BATCH_KIND:
                session.deferred.append("a nested batch of pipelined writes was refused")
            elif kind & REPLY or kind == _SYNCED_KIND or kind == RESUME:
                self._take(session, message, fresh)
            elif session.admit():  # the bulk: a pipelined write
                handle(session, message)

    def _resume(self, session: Session, frames: Frames) -> None:
        """A network client's connection begins: number its messages from here on."""
        try:
            ident, first = self.handler.codec.decode(frames)[1]
            session.record = self.records.resume(ident, first)
        except (DeserializationError, ValueError, TypeError) as exc:
            session.deferred.append(f"a reconnection could not resume its writes: {exc}")
            return
        session.next_seq = first

    def _answer(self, session: Session, frames: Frames) -> None:
        record = session.record
        kind = frames[0][0]
        if record is not None and kind not in _UNORDERED:
            answer = self._answer_numbered(session, record, frames, kind & ~REPLY)
        else:
            answer = self.handler.handle(session, frames)
        if answer is None or session.channel not in self.sessions:
            return
        try:
            session.channel.send(answer)
        except ChannelClosed:
            self._drop(session)

    def _answer_numbered(self, session: Session, record: Record, frames: Frames,
                         op: int) -> Frames | None:
        """Apply a numbered request once; a replay gets the answer of the first time (a
        read runs again: it changes nothing)."""
        seq = session.pending_seq
        if seq <= record.applied:
            if record.answered == seq and record.answer is not None:
                return record.answer
            if op not in READS:
                return None  # a stale copy: its client had the answer and went on
            return self.handler.handle(session, frames)
        answer = self.handler.handle(session, frames)
        record.applied = seq
        if op in READS:
            record.answered, record.answer = 0, None
        else:
            record.answered, record.answer = seq, answer
        return answer

    def _drop(self, session: Session) -> None:
        """The client is gone (its channel closed, or an answer to it failed): apply what
        it sent before it went, then forget it. The transport delivers all of that before
        the close, so nothing of it arrives later; but an answer that fails midway through
        reading its channel (a FENCE: its writes go on behind it) leaves some unread."""
        if self.sessions.pop(session.channel, None) is None:
            return
        unanswerable: list[tuple[Session, Frames]] = []
        while True:
            try:
                frames = session.channel.recv(0)
            except ChannelClosed:
                break
            if frames is None:
                break
            self._take(session, frames, unanswerable)
        if self.barrier is not None:
            self.barrier.gone(session)
        self._close(session)

    def _close(self, session: Session) -> None:
        session.channel.close()
        if session.deferred:  # failures nobody was told of: say so rather than lose them
            counts = collections.Counter(session.deferred)  # the same failure, once, counted
            print("skprocessing Share: a process ended before it was told that "
                  + "; ".join(f"{why} ({n} times)" if n > 1 else why for why, n in counts.items()),
                  file=sys.stderr, flush=True)

    def _on_control(self) -> None:
        try:
            frames = self.control.recv(0)
        except ChannelClosed:
            frames = [STOP]  # the owner is gone
        if frames and bytes(frames[0]) == STOP:
            self.stopping = True

    def _shut(self) -> None:
        for closable in (self.listener, *self.sessions):
            try:
                closable.close()
            except Exception:
                pass
        try:
            self.control.send([STOP])  # tells a waiting owner the loop has ended
        except ChannelClosed:
            pass
