"""The reactor's inbound path: every received message is checked here, in this order.

    0. size         at most `MAX_FRAMES` payload frames (the rest of a larger message is
                    discarded a slice at a time, see `protocol.py` "Limits"); a sender
                    without a session: exactly a small HELLO's two frames
    1. shape        enough frames for a signature and an envelope
    2. signature    HMAC over prefix + envelope + payload, constant-time compare; before
                    anything reads the envelope or the payload
    3. envelope     msgpack, and the payload frames must match its lengths
    4. handshake    an unknown sender may only say HELLO (fresh session, sane time,
                    a known ticket or a listener that accepts)
    5. sequence     not above the last: a replay, dropped; skipping one: messages were
                    lost, the channel closes
    6. delivery     DATA to the channel's Inbox, PING only proves life, BYE ends it

A message failing 1-5 is dropped, counted in `Port.stats` under its reason, and logged
(at most 20 lines a second per socket) with the sender's address; nothing else happens.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import zmq

from .bulk import BulkError, BulkFrames, BulkWriter, sender_prefix, shared_dir
from .heartbeat import Link
from .ports import Port, discard_rest, here, peer_address, recv_parts, same_host_pid
from .protocol import (BYE, CLAIM_BYTES, DATA, HANDSHAKE_BYTES, HELLO, KIND_NAMES, MAX_FRAMES,
                       MAX_HALF_OPEN, NO_SESSION, PING, SESSION_BYTES, WELCOME, Malformed,
                       join_frames, pack_envelope, unpack_envelope)

__all__ = ["Inbound", "log"]

log = logging.getLogger("skprocessing.transports.zmq")
_BATCH = 256  # messages read from one socket before looking at the others
_SMALL = 1 << 16  # frames below this are copied to bytes; larger ones stay zero-copy
# A new peer's message that fails the check: the signature cannot say more, but this is
# what a user meets when one side's key differs, so the line says what to do.
WRONG_KEY = ("bad signature (a worker or client is trying to connect with a different key: "
             "give every side the same key, the same key file, key= text or SKPROCESSING_KEY; "
             "or a session left from an earlier run at this address, which ends by itself)")
_OVERSIZED_HELLO = "oversized handshake (a sender with no session may send a small HELLO only)"
_DISCARD_SLICE = 8192  # frames of an oversized message discarded per reactor step


class Inbound:
    """Mixed into `Reactor`: reading and checking messages (reactor thread only)."""

    _send: Any
    _try_send: Any
    _lose: Any

    def _read(self, port: Port) -> None:
        if port.discarding and not self._discard(port):
            return
        limit = self._router_limit(port) if port.router else _dealer_limit
        for _ in range(_BATCH):
            try:
                msg, cut = recv_parts(port.sock, limit)
            except zmq.Again:
                return
            if cut:  # more frames than this sender may send: the rest goes unread
                self._drop(port, msg, _OVERSIZED_HELLO if port.router and _claimed(port, msg)
                           is None else f"too many frames (more than {MAX_FRAMES})")
                port.discarding = time.monotonic()
                if not self._discard(port):
                    return
                continue
            if port.router:
                self._on_router_message(port, msg)
            else:
                self._on_dealer_message(port, msg)
            if port.sock.closed:
                return

    @staticmethod
    def _router_limit(port: Port):
        def limit(parts: list[zmq.Frame]) -> int:
            # A sender with no session may send a HELLO only: [rid, claim, envelope]. (The
            # claim is not proven yet: a peer that read a session id on the wire may make
            # this process read a long message, never act on it.)
            return MAX_FRAMES + 3 if _claimed(port, parts) is not None else 3
        return limit

    def _discard(self, port: Port) -> bool:
        """Discard the next slice of an oversized message; True once it is all gone. The
        time it took is not held against the socket's other peers (see `_tick`)."""
        if not discard_rest(port.sock, _DISCARD_SLICE):
            return False
        busy = time.monotonic() - port.discarding
        port.discarding = 0.0
        for link in port.links.values():
            link.excuse(busy)
        return True

    def _on_router_message(self, port: Port, msg: list[zmq.Frame]) -> None:
        if len(msg) < 3:
            return self._drop(port, msg, "malformed (too few frames)")
        claim = msg[1].bytes
        if len(claim) != CLAIM_BYTES:
            return self._drop(port, msg, "unknown sender (no session claim)")
        session, signature = claim[:SESSION_BYTES], claim[SESSION_BYTES:]
        link = port.links.get(session)
        if link is None and (len(msg) != 3 or len(msg[2]) > HANDSHAKE_BYTES):
            if session in port.ended:  # e.g. a message that crossed our BYE
                port.stats["late message of an ended session"] += 1
                return None
            return self._drop(port, msg, _OVERSIZED_HELLO)
        ended = port.ended.get(session) if link is None else None
        if ended is not None and self._on_late_message(port, msg, signature, ended):
            return None  # a PING that crossed our BYE, or a peer that missed it
        prefix = link.prefix if link is not None else session + NO_SESSION
        late = link is None and session in port.ended
        parsed = self._verify(port, msg, signature, msg[2], msg[3:], prefix, late,
                              handshake=link is None and not late)
        if parsed is None:
            return
        kind, seq, extra = parsed
        if link is None:
            if kind != HELLO:
                return self._drop(port, msg, f"{KIND_NAMES[kind]} before any handshake")
            return self._on_hello(port, msg, msg[0].bytes, session, seq, extra)
        if seq > link.rx_seq:  # fresh: only that proves the sender holds the session now
            link.rid = msg[0].bytes  # the same, or the connection it reconnected on
            if not link.confirmed and seq == 1:
                self._confirm(port, link)
        self._on_link_message(link, msg, kind, seq, extra)

    def _on_late_message(self, port: Port, msg: list[zmq.Frame], signature: bytes,
                         ended: Any) -> bool:
        """A message of a session this side ended. Signed with that session's keys, it
        comes from a peer that still thinks the session lives: our BYE was lost (a TCP
        connection reset at that moment). A peer on this host is never judged by silence,
        so it would wait forever: say BYE again (at most once per heartbeat)."""
        if not port.signer.verify(signature, ended.prefix, msg[2].buffer, [f.buffer for f in msg[3:]]):
            return False  # not that session's: judged as before (a replayed HELLO, ...)
        port.stats["late message of an ended session"] += 1
        now = time.monotonic()
        if now - ended.last_sent >= ended.liveness.heartbeat:
            ended.last_sent = now
            ended.rid = msg[0].bytes
            ended.tx_seq += 1  # past anything the peer may have missed: it ends the session
            bye = pack_envelope(BYE, ended.tx_seq, (), {"why": ended.why or "the session ended"})
            self._try_send(ended, [ended.signer.sign(ended.prefix, bye, ()), bye])  # never backlogged
        return True

    def _on_dealer_message(self, port: Port, msg: list[zmq.Frame]) -> None:
        link = port.links.get(b"")
        if link is None or len(msg) < 2:
            return self._drop(port, msg, "malformed or unexpected")
        parsed = self._verify(port, msg, msg[0].buffer, msg[1], msg[2:], link.prefix)
        if parsed is None:
            return
        kind, seq, extra = parsed
        channel = link.channel
        if kind == WELCOME and link.rx_seq == 0 and channel is not None and not channel.joined.is_set():
            session = (extra or {}).get("s")
            if not isinstance(session, bytes) or len(session) != SESSION_BYTES:
                return self._drop(port, msg, "malformed WELCOME")
            link.prefix = link.session + session
            link.last_heard = time.monotonic()
            link.peer_pid = same_host_pid(port, msg[0], extra)
            # None unless same host and user. Files are named after the session id the
            # ROUTER chose (random), so no peer can pick a name that is another's.
            link.bulk = BulkWriter.accept(extra.get("b"), session)
            link.submit(PING)  # the answer to the WELCOME's challenge: seq 1, before any DATA
            channel._join(link)
            return
        self._on_link_message(link, msg, kind, seq, extra)

    def _verify(self, port: Port, msg: list, signature: Any, envelope: zmq.Frame,
                payload: list, prefix: bytes, late: bool = False,
                handshake: bool = False) -> tuple[int, int, dict | None] | None:
        # The signature is checked before anything reads the envelope or the payload.
        buffers = [f.buffer for f in payload]
        if not port.signer.verify(signature, prefix, envelope.buffer, buffers):
            if late:
                port.stats["late message of an ended session"] += 1
                return None
            if handshake:
                return self._drop(port, msg, WRONG_KEY)
            return self._drop(port, msg, "bad signature (unsigned, tampered, or a wrong key)")
        try:
            return unpack_envelope(envelope.buffer, buffers)
        except Malformed as exc:
            return self._drop(port, msg, f"malformed ({exc})")

    def _on_hello(self, port: Port, msg: list, rid: bytes, session: bytes, seq: int,
                  extra: dict | None) -> None:
        extra = extra or {}
        ticket, sent_at = extra.get("ticket"), extra.get("t")
        if not isinstance(sent_at, (int, float)) or not isinstance(ticket, (bytes, type(None))):
            return self._drop(port, msg, "malformed HELLO")
        refusal = port.guard.admit(session, float(sent_at))
        if refusal is None and seq != 0:
            refusal = "HELLO out of sequence"
        if refusal is None:
            refusal = _refuse_new(port, ticket)
        if refusal is not None:
            return self._drop(port, msg, refusal)
        link = Link(self, port, rid, session, peer_address(msg[1], rid), port.signer, port.liveness)
        link.peer_pid = same_host_pid(port, msg[1], extra)
        link.ticket = ticket
        router_session = os.urandom(SESSION_BYTES)  # the challenge the peer must answer
        bulk = shared_dir()
        offer = bulk.offer() if bulk is not None else None
        welcome = pack_envelope(WELCOME, 0, (), {"s": router_session, **here(),
                                                 **({"b": offer} if offer else {})})
        link.handed = -1  # the WELCOME is not numbered; it does not count as outstanding
        self._send(link, [port.signer.sign(link.prefix, welcome, ()), welcome])
        if not link.alive:  # the peer vanished right after its HELLO (EHOSTUNREACH)
            return
        link.prefix = session + router_session
        port.links[session] = link
        port.half_open[session] = link
        while len(port.half_open) > MAX_HALF_OPEN:  # a flood of replayed HELLOs: oldest go
            self._expire(port, next(iter(port.half_open.values())), "too many half-open sessions")

    def _confirm(self, port: Port, link: Link) -> None:
        """The peer answered the WELCOME's challenge: its session is accepted now."""
        link.confirmed = True
        port.half_open.pop(link.session, None)
        refusal = _refuse_new(port, link.ticket)
        if refusal is not None:  # the pipe end was abandoned, the listener closed meanwhile
            return self._lose(link, refusal, True)
        if link.ticket is not None:
            port.deadlines.pop(link.ticket, None)
            port.tickets.pop(link.ticket)._join(link)
        else:
            from .channel import ZmqChannel
            channel = ZmqChannel(self, port.hwm)
            channel._join(link)
            port.accept(channel)  # type: ignore[misc]
        log.debug("session from %s on %s", link.address, port.endpoint)

    def _expire(self, port: Port, link: Link, why: str) -> None:
        """Forget a half-open session (a replayed HELLO, or a peer gone right after it)."""
        port.half_open.pop(link.session, None)
        port.stats["handshake not completed"] += 1
        self._log(port, f"a handshake from {link.address} on {port.endpoint} was not completed "
                        f"({why}: a replayed HELLO, or a peer gone right after its HELLO)")
        self._lose(link, f"handshake not completed ({why})", True)

    def _on_link_message(self, link: Link, msg: list, kind: int, seq: int, extra: dict | None) -> None:
        if seq <= link.rx_seq:
            return self._drop(link.port, msg, f"replayed {KIND_NAMES[kind]} (sequence {seq} "
                                              f"after {link.rx_seq})")
        if seq != link.rx_seq + 1:
            return self._lose(link, f"messages from {link.address} were lost (sequence jumped "
                                    f"from {link.rx_seq} to {seq}, a reconnect dropped them)", True)
        link.rx_seq = seq
        link.last_heard = time.monotonic()
        if kind == DATA:
            frames = [f.bytes if len(f) < _SMALL else f.buffer for f in msg[_head(link):]]
            if extra and "j" in extra:  # frames too large for one ZeroMQ frame
                try:
                    frames = join_frames(frames, extra["j"])
                except Malformed as exc:
                    return self._lose(link, f"a message from {link.address} was malformed: {exc}", True)
            if extra and "b" in extra:
                try:
                    frames = _take_bulk(link, frames, extra["b"])
                except BulkError as exc:  # authenticated but undeliverable: data was lost
                    return self._lose(link, f"a message from {link.address} could not be "
                                            f"delivered: {exc}", True)
            channel = link.channel
            if channel is not None:  # else dropped by the user; its __del__ ends the session
                channel._deliver(frames)
        elif kind == BYE:
            self._lose(link, str((extra or {}).get("why", "the peer closed the channel")), False)
        elif kind != PING:
            self._drop(link.port, msg, f"unexpected {KIND_NAMES[kind]} in a session")

    # -- ending ------------------------------------------------------------------------------
    def _drop(self, port: Port, msg: list, reason: str) -> None:
        rid = msg[0].bytes if port.router else b""
        port.stats["dropped"] += 1
        port.stats[reason.split(" (")[0]] += 1
        sender = peer_address(msg[1] if port.router and len(msg) > 1 else msg[0], rid)
        self._log(port, f"dropped a message from {sender} on {port.endpoint}: {reason} "
                        f"({port.stats['dropped']} dropped so far)")
        return None

    @staticmethod
    def _log(port: Port, line: str) -> None:
        now = time.monotonic()
        since, count = port._logged
        if now - since > 1.0:
            since, count = now, 0
        if count < 20:  # at most 20 lines a second per socket, whatever an attacker sends
            log.warning("%s", line)
        port._logged = (since, count + 1)


def _take_bulk(link: Link, frames: list, refs: Any) -> BulkFrames:
    """`frames` with each bulk reference replaced by its (checked) file; see bulk.py."""
    bulk = shared_dir() if link.port.router else None
    if bulk is None or not isinstance(refs, list):
        raise BulkError("a bulk reference this socket never offered")
    sender = sender_prefix(link.prefix[-SESSION_BYTES:])  # the session id we chose for it
    link.bulk_sender = sender  # its files are removed when the session ends
    for ref in refs:
        if (not isinstance(ref, list) or len(ref) != 3 or type(ref[0]) is not int
                or not 0 <= ref[0] < len(frames) or type(frames[ref[0]]) is not bytes):
            raise BulkError("malformed bulk reference")
        frames[ref[0]] = bulk.take(frames[ref[0]], ref[1], ref[2], sender)
    return BulkFrames(frames)


def _dealer_limit(parts: list[zmq.Frame]) -> int:
    return MAX_FRAMES + 2


def _claimed(port: Port, parts: list[zmq.Frame]) -> Link | None:
    """The session a ROUTER message's claim frame names (not yet proven), if any."""
    if len(parts) < 2:
        return None
    claim = parts[1].bytes  # (a Frame keeps this copy: _on_router_message reads it again)
    return port.links.get(claim[:SESSION_BYTES]) if len(claim) == CLAIM_BYTES else None


def _refuse_new(port: Port, ticket: bytes | None) -> str | None:
    """Why a new session may not start on `port`, or None."""
    if ticket is not None and ticket not in port.tickets:
        return "unknown or used pipe ticket"
    if ticket is None and port.accept is None:
        return "this socket accepts no new connections"
    return None


def _head(link: Link) -> int:
    return 3 if link.port.router else 2
