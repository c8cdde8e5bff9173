"""A client's connection to a coordinator: plain over the local transport, with a reader
thread over a network transport.

Local channels deliver a send into the receiver's buffer before `send` returns, so the
client just sends and reads its answer (`Direct`). Over a network transport (ZeroMQ)
sends leave from a background thread and different connections are not ordered, so the
coordinator runs a read barrier (`_barrier.py`): before it answers a read it sends SYNC to
every other client and waits for each one's SYNCED, which travels behind everything that
client sent before. A client may be busy in user code when the SYNC comes, so a reader
thread (`Syncing`) answers it at once and hands real answers to the waiting requester.

A `Syncing` connection also bounds a client's unanswered writes (a FENCE request after
every `WINDOW` writes, at most two unanswered). So a client that exits leaves at most a
few hundred messages still arriving, which the barrier waits out before probing it.

`open_connection` also picks among several advertised addresses (a coordinator bound to
every interface: `_reach.py`), keeping the first that answers with the right share id.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

from ...errors import ChannelClosed, TransportError
from ...transports.base import Channel, Frames, Transport
from ._protocol import FENCE, OK, REPLY, SYNC, SYNCED, WHO, Wire, sync_frames, sync_gen

__all__ = ["Connection", "Direct", "Syncing", "open_connection", "WINDOW"]

WINDOW = 512  # pipelined writes between two FENCE round trips (network transports)


class Connection:
    """What a `Client` talks through: `send` (pipelined), `exchange` (answered), `close`.
    Both return answers to earlier write windows as well (see `Syncing`), which the client
    checks for failures of its pipelined writes."""

    channel: Channel

    def send(self, frames: Frames) -> list[Frames]:
        """Send a pipelined message; answers of closed write windows (usually none)."""
        self.channel.send(frames)
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
        self.channel.send(frames)
        answer = self.channel.recv()
        if answer is None:  # recv() without a timeout returns a message or raises
            raise ChannelClosed("no answer from the Share coordinator")
        return answer, []

    def forget_after_fork(self) -> None:
        self.channel.close()  # a socket: closes this process's copy of the descriptor only


class Syncing(Connection):
    """A network transport: a reader thread answers SYNC probes and queues answers.

    Write windows: after every `WINDOW` pipelined writes the writer waits for a FENCE
    round trip, so at most `WINDOW` writes are ever unacknowledged.
    """

    def __init__(self, channel: Channel, fence: Frames):
        self.channel = channel
        self._fence = fence
        self._unfenced = 0   # writes since the last answered exchange
        self._answers: queue.SimpleQueue[Any] = queue.SimpleQueue()
        threading.Thread(target=self._read, name="skprocessing-share-reader",
                         daemon=True).start()

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
                    # Sent behind every write this process made before the SYNC arrived.
                    channel.send(sync_frames(SYNCED, generation))
        except (ChannelClosed, TransportError, OSError) as exc:
            self._answers.put(ChannelClosed(str(exc) or "the channel closed"))

    def send(self, frames: Frames) -> list[Frames]:
        self.channel.send(frames)
        self._unfenced += 1
        if self._unfenced < WINDOW:
            return []
        # Waited for: the coordinator never answers a process that may have exited (a
        # send to a peer that is gone makes the transport drop what it still had from it).
        return [self.exchange(self._fence)[0]]

    def exchange(self, frames: Frames) -> tuple[Frames, list[Frames]]:
        self.channel.send(frames)
        self._unfenced = 0
        return self._next(), []

    def _next(self) -> Frames:
        answer = self._answers.get()
        if isinstance(answer, ChannelClosed):
            self._answers.put(answer)  # every later read fails the same way
            raise answer
        return answer


def open_connection(transport: Transport, candidates: Sequence[str], ident: str, wire: Wire,
                    timeout: float) -> tuple[Connection, str]:
    """(connection, the address that answered). One candidate: connect to it. Several:
    try them all at once and keep the first that proves to be share `ident` (another
    coordinator may listen at the same port on this host's loopback, say).
    Raises TransportError (or OSError) when none answers within `timeout`."""
    def wrap(channel: Channel) -> Connection:
        if transport.name == "local":
            return Direct(channel)
        return Syncing(channel, wire.encode(FENCE | REPLY, ()))
    if len(candidates) == 1:
        return wrap(transport.connect(candidates[0], timeout=timeout)), candidates[0]
    race = _Race(len(candidates))
    for address in candidates:
        threading.Thread(target=race.attempt, args=(transport, address, ident, wire, timeout),
                         name="skprocessing-share-connect", daemon=True).start()
    channel, address = race.result(timeout + 1.0)
    return wrap(channel), address


class _Race:
    """The first candidate to connect and identify itself wins; later ones are closed."""

    def __init__(self, count: int):
        self._left = count
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._winner: tuple[Channel, str] | None = None
        self._errors: list[str] = []
        self._abandoned = False  # result() gave up: whatever connects later is closed

    def attempt(self, transport: Transport, address: str, ident: str, wire: Wire,
                timeout: float) -> None:
        channel = None
        try:
            channel = transport.connect(address, timeout=timeout)
            _check_identity(channel, ident, wire, timeout)
        except Exception as exc:
            if channel is not None:
                channel.close()
            self._finish(None, f"{address}: {exc}")
            return
        self._finish((channel, address), None)

    def _finish(self, won: tuple[Channel, str] | None, error: str | None) -> None:
        with self._lock:
            self._left -= 1
            if won is not None and self._winner is None and not self._abandoned:
                self._winner = won
                won = None
            elif error:
                self._errors.append(error)
            if self._winner is not None or self._left == 0:
                self._done.set()
        if won is not None:
            won[0].close()  # a slower duplicate

    def result(self, timeout: float) -> tuple[Channel, str]:
        self._done.wait(timeout)
        with self._lock:
            if self._winner is not None:
                return self._winner
            self._abandoned = True
            raise TransportError("no advertised address answered: " + "; ".join(self._errors))


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
