"""Liveness: heartbeat settings, and the `Link` (one authenticated session) they apply to.

Rules (see `protocol.py`): a side that has sent nothing for `heartbeat` seconds sends a
PING; a peer not heard from for `dead_after` seconds is declared dead and its channel
raises `ChannelClosed`. The reactor thread checks every `tick` seconds, so a loss is
noticed at most `dead_after + tick` after the peer's last message. User code never sends
the heartbeats, so a long task in the user's threads does not make its process look dead.

A slow process is not a dead one:
- silence is measured on this process's own clock, minus its own stalls: when the
  reactor runs late (this process was stopped, or a C call held the GIL), the time it
  could not have read anything is not held against any peer (`Link.excuse`);
- a peer on this host (an ipc:// or inproc:// session: the kernel tells us its pid) is
  never judged by silence at all: it is dead when its process is gone, which is seen
  within two heartbeats; a stopped or busy one is waited for, as a local pipe would be.
  So the channels inside one process (a pool's wake-up pipe) and between a parent and
  its children (a Share's control channel) survive any pause.
A peer across TCP that is merely paused for longer than `dead_after` cannot be told
from a lost host, and is declared dead.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .bulk import BULK_MIN, forget_sender
from .protocol import BYE, DATA, MAX_FRAMES, NO_SESSION, PING, pack_envelope, split_frames

if TYPE_CHECKING:
    from .reactor import Port, Reactor
    from .security import Signer

__all__ = ["Liveness", "Link"]


@dataclass(frozen=True)
class Liveness:
    """`heartbeat`: seconds of silence before a PING; `dead_after`: seconds of silence
    from the peer before it is declared dead (default 4 s, so a loss shows within 5 s)."""

    heartbeat: float = 1.0
    dead_after: float = 4.0

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat < self.dead_after:
            raise ValueError(f"need 0 < heartbeat ({self.heartbeat}) < dead_after ({self.dead_after})")

    @property
    def tick(self) -> float:
        return min(self.heartbeat / 2, self.dead_after / 8, 0.25)


class Link:
    """One session between a DEALER and a ROUTER, as seen from one end.

    Sending (`submit`) happens in any thread: the sequence number, signature and the
    reactor's queue order are taken under `lock`, so numbers go out in order. Receiving
    state (`rx_seq`, `last_heard`) is touched by the reactor thread only.
    """

    def __init__(self, reactor: Reactor, port: Port, rid: bytes | None, session: bytes,
                 address: str, signer: Signer, liveness: Liveness):
        self.reactor = reactor
        self.port = port
        self.rid = rid  # on a ROUTER: the connection it routes to (moves on a reconnect)
        self.session = session  # the DEALER's session id (on a ROUTER, the link's key)
        # DEALER-side messages carry the session beside their signature (protocol.py).
        self.claim = session if rid is None else b""
        self.prefix = session + NO_SESSION  # completed by the handshake
        self.address = address
        self.signer = signer
        self.liveness = liveness
        self.lock = threading.Lock()
        self.tx_seq = 0
        self.rx_seq = 0
        self.handed = 0  # messages the reactor passed to ZeroMQ (written by the reactor only)
        self.backlog: deque[list[Any]] = deque()  # refused by a full ZeroMQ queue, retried
        now = time.monotonic()
        self.last_heard = now
        self.last_sent = now
        self.alive = True
        self.why = ""
        self._channel: Any = None
        self.bulk: Any = None  # a `bulk.BulkWriter` once the peer offered a shared directory
        self.bulk_sender: str | None = None  # set once the peer sent us bulk files
        self.peer_pid: int | None = None  # the peer's process, when it is on this host
        # A ROUTER's session is half-open from its WELCOME until the peer's signed answer.
        self.confirmed = rid is None
        self.ticket: bytes | None = None  # the pipe ticket its HELLO claimed

    # The channel is held weakly: a channel the user dropped is collected (and its
    # __del__ ends the session) although the reactor still knows the link.
    @property
    def channel(self) -> Any:
        return self._channel() if self._channel is not None else None

    @channel.setter
    def channel(self, channel: Any) -> None:
        self._channel = weakref.ref(channel)

    @property
    def outstanding(self) -> int:
        """Messages submitted but not yet handed to ZeroMQ."""
        return self.tx_seq - self.handed

    def submit(self, kind: int, frames: Any = (), extra: dict | None = None) -> None:
        """Number, sign and queue one message for the reactor to send."""
        written: list[str] = []
        if self.bulk is not None and kind == DATA:
            frames, extra, written = self._to_bulk(frames, extra)
        frames, joins = split_frames(frames)
        if joins:
            extra = dict(extra or {}, j=joins)
        if len(frames) > MAX_FRAMES:
            if written:
                self.bulk.discard(written)
            from ...errors import TransportError
            raise TransportError(f"a message of {len(frames)} frames is more than a ZeroMQ "
                                 f"channel carries ({MAX_FRAMES}); send fewer, larger frames")
        with self.lock:
            if not self.alive:
                if written:
                    self.bulk.discard(written)
                from ...errors import ChannelClosed
                raise ChannelClosed(self.why or "the channel is closed")
            self.tx_seq += 1
            envelope = pack_envelope(kind, self.tx_seq, frames, extra)
            signature = self.claim + self.signer.sign(self.prefix, envelope, frames)
            self.last_sent = time.monotonic()
            self.reactor.post_send(self, [signature, envelope, *frames])

    def _to_bulk(self, frames: Any, extra: dict | None) -> tuple[Any, dict | None, list[str]]:
        # Large frames go to files in the peer's directory (see bulk.py), written before
        # the lock is taken: the file write is the slow part, and the GIL is free meanwhile.
        out, refs, written = None, [], []
        for index, frame in enumerate(frames):
            size = frame.nbytes if isinstance(frame, memoryview) else len(frame)
            if size < BULK_MIN:
                continue
            put = self.bulk.put(frame)
            if put is None:
                continue
            name, reuse = put
            if out is None:
                out = list(frames)
            out[index] = name.encode()
            refs.append([index, size, reuse])
            written.append(name)
        if out is None:
            return frames, extra, written
        return out, dict(extra or {}, b=refs), written

    def end(self, why: str, tell_peer: bool) -> bool:
        """Mark the session over (once); send a BYE first when `tell_peer`."""
        with self.lock:
            if not self.alive:
                return False
            if tell_peer:
                self.tx_seq += 1
                envelope = pack_envelope(BYE, self.tx_seq, (), {"why": why})
                signature = self.claim + self.signer.sign(self.prefix, envelope, ())
                self.reactor.post_send(self, [signature, envelope])
            self.alive = False
            self.why = why
        if self.bulk is not None:
            self.bulk.close()  # its files freed by the peer; nothing more will be sent
        if self.bulk_sender is not None:
            forget_sender(self.bulk_sender)  # what the peer left in our directory
        return True

    def excuse(self, seconds: float) -> None:
        """Do not count `seconds` of silence against the peer: time this process could
        not have read it (its own stall, or its socket busy discarding an attacker's
        message). A peer that really went meanwhile is found that much later, once."""
        self.last_heard = min(time.monotonic(), self.last_heard + seconds)

    def check(self, now: float, judge: bool = True) -> str | None:
        """Called by the reactor each tick: 'dead' (only when `judge`), 'ping' or None."""
        silent = now - self.last_heard
        if judge and self.peer_pid is not None:  # on this host: dead when its process is
            if silent > 2 * self.liveness.heartbeat and not process_exists(self.peer_pid):
                return "dead"
        elif judge and silent > self.liveness.dead_after:
            return "dead"
        if now - self.last_sent >= self.liveness.heartbeat:
            return "ping"
        return None

    def death(self, now: float) -> str:
        """Why `check` said 'dead'."""
        if self.peer_pid is not None:
            return f"process {self.peer_pid} at {self.address} exited"
        return (f"no message from {self.address} for {now - self.last_heard:.1f}s "
                f"(dead_after={self.liveness.dead_after}s): host down, network cut or process killed")

    def ping(self) -> None:
        try:
            self.submit(PING)
        except Exception:
            pass  # ended meanwhile; the tick that follows drops it


def process_exists(pid: int) -> bool:
    """True while process `pid` (of this pid namespace) runs, stopped or not; a zombie
    (exited, not yet reaped) counts as gone."""
    if pid == os.getpid():
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
        return state not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
