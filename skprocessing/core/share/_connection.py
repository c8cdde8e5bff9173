"""A client's connection to a coordinator: plain over the local transport, with a reader
thread and batched writes over a network transport.

Local channels deliver a send into the receiver's buffer before `send` returns, so the
client just sends and reads its answer (`Direct`). Over a network transport (ZeroMQ)
sends leave from a background thread and different connections are not ordered, so the
coordinator runs a read barrier (`_barrier.py`): before it answers a read it sends SYNC to
every other client and waits for each one's SYNCED, which travels behind everything that
client sent before. A client may be busy in user code when the SYNC comes, so a reader
thread (`Syncing`) answers it at once and hands real answers to the waiting requester.

Batching. Each transport message costs far more than a `+= 1` does in the coordinator
(signature, sequence number, hand-off to the transport's I/O thread, and the same again
when it arrives), so a `Syncing` connection holds pipelined writes and sends them several
to a message (`_protocol.BATCH`). Nothing can tell the difference, because a batch always
leaves before anything that could let another process look or act:
- any other message this process sends, on any channel of any transport (a tell, a pool
  result, a stop): the core sends those through `core._held.ordered_send`, so another
  process never hears of a write before the write itself is on its way;
- a request of this process goes out in the same message, after the writes before it;
- a SYNC probe (another process is about to read) is answered by a SYNCED appended to the
  held writes, so the barrier still sees every write made before it;
- before this process exits (`core._exit.at_process_exit`: when the core's entry of a
  process started by a transport returns, and at interpreter exit), and when the
  connection closes;
- and otherwise when a batch is full (`BATCH` messages or `BATCH_BYTES`) or `LINGER`
  seconds old, so writes nobody waits for (a shared logger's lines) still arrive soon.
(A process that ends with a bare `os._exit`, as a `multiprocessing` child does, runs no
exit hooks: it may lose the writes of its last `LINGER`, as it may lose what its
transport had not sent yet.)

Write windows: after every `WINDOW` pipelined writes a FENCE request is sent without
waiting; the writer waits for the answer of the fence before it, so at most two windows
of writes are ever unanswered, and the coordinator's queue stays bounded.

Broken sessions: every write and request of a `Syncing` connection is numbered and kept in
the client's `Journal` until an answer proves it applied; a new connection starts with
RESUME and replays the journal, and the coordinator applies each number once
(`_resume.py`). So a write that returned is applied exactly once, whatever the network
did to the connection it left on.

`open_connection` also picks among several advertised addresses (a coordinator bound to
every interface: `Listener.reachable_addresses()`), keeping the first that answers with
the right share id.
"""

from __future__ import annotations

import collections
import os
import queue
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from ...errors import ChannelClosed, TransportError
from ...transports.base import Capability, Channel, Frames, Transport
from .._exit import at_process_exit
from .._held import holding, ordered_send, released
from .._race import first_to_answer
from ._protocol import (FENCE, OK, REPLY, RESUME, SYNC, SYNCED, WHO, Wire, batch_frames,
                        sync_frames, sync_gen)
from ._resume import Journal

__all__ = ["Connection", "Direct", "Syncing", "open_connection", "batched", "WINDOW", "BATCH",
           "BATCH_BYTES", "LINGER"]

WINDOW = 4096          # pipelined writes per FENCE (network transports)
BATCH = 256            # messages per transport message, at most
BATCH_BYTES = 1 << 15  # ... and bytes; a larger message travels alone
LINGER = 0.002         # seconds a held write may wait for others before it is sent anyway


class Connection:
    """What a `Client` talks through: `send` (pipelined), `exchange` (answered), `close`.
    Both return answers to earlier write windows as well (see `Syncing`), which the client
    checks for failures of its pipelined writes."""

    channel: Channel
    journal: Journal | None = None  # a resumable connection's numbered messages

    def send(self, frames: Frames) -> list[Frames]:
        """Send a pipelined message; answers of closed write windows (usually none)."""
        ordered_send(self.channel, frames)
        return []

    def exchange(self, frames: Frames) -> tuple[Frames, list[Frames]]:
        """(the answer, answers of write windows that came before it)."""
        raise NotImplementedError

    def close(self) -> None:
        self.channel.close()

    def forget_after_fork(self) -> None:
        """In a forked child: let go of the parent's connection without touching it."""


class Direct(Connection):
    """The local transport: the requester reads its own answer."""

    def __init__(self, channel: Channel):
        self.channel = channel

    def exchange(self, frames: Frames) -> tuple[Frames, list[Frames]]:
        ordered_send(self.channel, frames)
        answer = self.channel.recv()
        if answer is None:  # recv() without a timeout returns a message or raises
            raise ChannelClosed("no answer from the Share coordinator")
        return answer, []

    def forget_after_fork(self) -> None:
        self.channel.close()  # a socket: closes this process's copy of the descriptor only


class Syncing(Connection):
    """A network transport: batched writes, a reader thread that answers SYNC probes and
    queues answers, and a flusher thread for held writes (see the module docstring).

    `send` and `exchange` are called by one thread at a time (the client's lock); the
    batch is shared with the reader, the flusher and the exit hook under `_lock`, which is
    also held while a batch is handed to the channel, so messages leave in order.
    """

    def __init__(self, channel: Channel, wire: Wire, journal: Journal):
        self.channel = channel
        self.journal = journal
        self._fence = wire.encode(FENCE | REPLY, ())
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._held: list[Frames] = []  # pipelined writes not yet sent
        self._held_bytes = 0
        self._failure: BaseException | None = None  # a flush on another thread failed
        self._closed = False
        self._written = 0    # pipelined writes since the last FENCE
        # FENCEs sent whose answers were not taken yet: the journal number before each
        self._fences: collections.deque[int] = collections.deque()
        self._answers: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._kick = threading.Event()  # set when a batch starts: the flusher's timer
        # First RESUME, then whatever an earlier connection may not have delivered.
        with self._lock:
            try:
                self._queue_locked(wire.encode(RESUME, (journal.ident, journal.first)))
                for _, frames in journal.entries:
                    self._queue_locked(frames)
                self._flush_locked()
            except (ChannelClosed, TransportError, OSError) as exc:
                self._failure = exc  # the next operation finds it and reconnects again
        _open.add(self)
        at_process_exit(_flush_open_connections)
        threading.Thread(target=self._read, name="skprocessing-share-reader",
                         daemon=True).start()
        threading.Thread(target=self._flush_later, name="skprocessing-share-flusher",
                         daemon=True).start()

    # -- threads -----------------------------------------------------------------------------
    def _read(self) -> None:
        channel = self.channel
        try:
            while True:
                frames = channel.recv()
                if frames is None:
                    continue
                generation = sync_gen(frames, SYNC)
                if generation is None:
                    self._answers.put(frames)
                else:
                    # Behind every write this process made before the SYNC arrived.
                    self._send_now(sync_frames(SYNCED, generation))
        except (ChannelClosed, TransportError, OSError) as exc:
            self._answers.put(ChannelClosed(str(exc) or "the channel closed"))

    def _flush_later(self) -> None:
        while not self._closed:
            self._kick.wait()
            self._kick.clear()
            time.sleep(LINGER)
            self.flush()

    # -- sending -----------------------------------------------------------------------------
    def send(self, frames: Frames) -> list[Frames]:
        """(A write that raises ChannelClosed stays in the journal, unsent.)"""
        with self._lock:
            seq = self.journal.add(frames)
            self._raise_failure()
            self._queue_locked(frames)
        self._written += 1
        if self._written < WINDOW:
            return []
        self._written = 0
        windows = []
        if self._fences:  # the window before this one: at most two stay unanswered
            windows.append(self._next())
            self.journal.confirm(self._fences.popleft())
        self._send_now(self._fence)
        self._fences.append(seq)
        return windows

    def _queue_locked(self, frames: Frames) -> None:
        size = _batch_size(frames)
        if size >= BATCH_BYTES:
            self._flush_locked()
            self.channel.send(frames)
            return
        held = self._held
        held.append(frames)
        self._held_bytes += size
        if len(held) == 1:
            holding(self)  # any later send of this process flushes us first
            self._kick.set()
        elif len(held) >= BATCH or self._held_bytes >= BATCH_BYTES:
            self._flush_locked()

    def exchange(self, frames: Frames) -> tuple[Frames, list[Frames]]:
        """(A request that raises ChannelClosed stays in the journal.)"""
        with self._lock:
            seq = self.journal.add(frames)
        self._send_now(frames)
        self._written = 0
        # Answers come in the order the requests left: the FENCEs' first.
        windows = []
        while self._fences:
            windows.append(self._next())
            self.journal.confirm(self._fences.popleft())
        answer = self._next()
        self.journal.confirm(seq)
        return answer, windows

    def replayed_answer(self) -> Frames:
        """The answer to the request this connection replayed last (a new connection
        has no FENCE out: the first answer is that one)."""
        answer = self._next()
        self.journal.confirm(self.journal.next - 1)
        return answer

    def flush(self) -> None:
        """Send the held writes now. It runs on other threads too (the flusher, another
        channel's send), so a failure is kept and raised by the writer's next send."""
        with self._lock:
            try:
                self._flush_locked()
            except (ChannelClosed, TransportError, OSError) as exc:
                self._failure = exc

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise ChannelClosed(f"an earlier batch of writes could not be sent: {self._failure}")

    def _send_now(self, frames: Frames) -> None:
        """Send `frames` behind the held writes (in the same transport message if small)."""
        with self._lock:
            self._raise_failure()
            if self._held and _batch_size(frames) < BATCH_BYTES:
                self._held.append(frames)
                self._flush_locked()
            else:
                self._flush_locked()
                self.channel.send(frames)

    def _flush_locked(self) -> None:
        held = self._held
        if not held:
            return
        self._held, self._held_bytes = [], 0
        released(self)
        self.channel.send(held[0] if len(held) == 1 else batch_frames(held))

    def _next(self) -> Frames:
        answer = self._answers.get()
        if isinstance(answer, ChannelClosed):
            self._answers.put(answer)  # every later read fails the same way
            raise answer
        return answer

    # -- ending ------------------------------------------------------------------------------
    def close(self) -> None:
        self.flush()
        self._closed = True
        self._kick.set()  # the flusher ends
        _open.discard(self)
        self.channel.close()

    def flush_at_exit(self) -> None:
        if self._pid == os.getpid() and not self._closed:
            self.flush()  # a failure: the coordinator is gone, nobody to tell

    def forget_after_fork(self) -> None:
        # The parent's held writes are the parent's to send; its threads are not here.
        self._held = []
        released(self)
        self._closed = True
        _open.discard(self)


def batched(messages: list[Frames]) -> list[Frames]:
    """Pipelined writes as few messages as the batch limits allow (for a `Direct`
    connection: a `Syncing` one batches, and numbers, by itself)."""
    out: list[Frames] = []
    held: list[Frames] = []
    size = 0
    for frames in messages:
        nbytes = _batch_size(frames)
        if held and (len(held) >= BATCH or size + nbytes >= BATCH_BYTES):
            out.append(batch_frames(held) if len(held) > 1 else held[0])
            held, size = [], 0
        if nbytes >= BATCH_BYTES:
            out.append(frames)
            continue
        held.append(frames)
        size += nbytes
    if held:
        out.append(batch_frames(held) if len(held) > 1 else held[0])
    return out


def _batch_size(frames: Frames) -> int:
    """The bytes of a message that may join a batch; `BATCH_BYTES` or more for one that
    travels alone (a large one, or one holding buffers: those go as zero-copy frames)."""
    size = 0
    for frame in frames:
        if type(frame) is not bytes:
            return BATCH_BYTES
        size += len(frame)
    return size


_open: weakref.WeakSet[Syncing] = weakref.WeakSet()


def _flush_open_connections() -> None:
    for connection in list(_open):
        connection.flush_at_exit()


def open_connection(transport: Transport, candidates: Sequence[str], ident: str, wire: Wire,
                    timeout: float, journal: Journal | None = None) -> tuple[Connection, str]:
    """(connection, the address that answered). One candidate: connect to it. Several:
    try them all at once and keep the first that proves to be share `ident` (another
    coordinator may listen at the same port on this host's loopback, say). Over a network
    transport the connection numbers its messages in `journal` and first replays what it
    holds (see `_resume.py`).
    Raises TransportError (or OSError) when none answers within `timeout`."""
    def wrap(channel: Channel) -> Connection:
        if Capability.IMMEDIATE_DELIVERY in transport.capabilities:
            return Direct(channel)
        return Syncing(channel, wire, journal if journal is not None else Journal())
    if len(candidates) == 1:
        return wrap(transport.connect(candidates[0], timeout=timeout)), candidates[0]
    def attempt(address: str) -> Channel:
        channel = transport.connect(address, timeout=timeout)
        try:
            _check_identity(channel, ident, wire, timeout)
        except BaseException:
            channel.close()
            raise
        return channel
    channel, address = first_to_answer(candidates, attempt, timeout=timeout + 1.0,
                                       failure="no advertised address answered",
                                       name="skprocessing-share-connect")
    return wrap(channel), address


def _check_identity(channel: Channel, ident: str, wire: Wire, timeout: float) -> None:
    channel.send(wire.encode(WHO | REPLY, ()))
    while True:
        frames = channel.recv(timeout)
        if frames is None:
            raise TransportError("no answer to the identity check")
        generation = sync_gen(frames, SYNC)
        if generation is not None:  # a barrier started while we were connecting
            channel.send(sync_frames(SYNCED, generation))
            continue
        kind, payload = wire.decode(frames)
        if kind == OK and payload[0] == ident:  # (value, epoch, deferred)
            return
        raise TransportError("a different Share (or another service) listens there")
