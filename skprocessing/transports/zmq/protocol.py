"""The wire protocol of the ZeroMQ transport: message kinds, envelope, signing, sequence.

A connection is a DEALER (the side that called `connect`) talking to a ROUTER (a
`Listener`); one ROUTER serves many DEALERs, each seen as its own `Channel`.

One message on the wire (ZeroMQ multipart; the ROUTER side also sees/adds the routing id):

    [routing id]      ROUTER side only: ZeroMQ's own, one per connection (DEALERs set none)
    [session]         DEALER -> ROUTER only: the DEALER's session id (16 bytes), in the
                      same frame as the signature (a lookup key, proven by the signature)
    signature         32 bytes: HMAC-SHA256(key, prefix + envelope + payload frames)
    envelope          msgpack [kind, seq, [payload frame lengths], extra]
    payload...        the serializer's frames, each its own zero-copy ZeroMQ frame

    prefix = dealer session (16 random bytes) + router session (16 random bytes);
             the router session is 16 zero bytes in HELLO and WELCOME

A session is its two ids, never the connection it arrived on: the ROUTER routes to the
connection of the session's latest authenticated, fresh message (a DEALER that
reconnected, after a link cut or a reset, takes its session back with the first message
it sends there: a DATA, or its PING within `heartbeat`; what the ROUTER sent meanwhile to
the old connection is lost, and the sequence gap then closes the channel, as before).
A peer without the key cannot claim a session: a routing id it picks is only its own
connection's (ROUTER_HANDOVER is off), and a message it replays is not fresh (see
"Sequence"), so neither moves the route.

The envelope is serializer-agnostic: the payload is opaque bytes here, and nothing reads
it (nor the envelope) before the signature has been checked in constant time.

Kinds
    HELLO    dealer -> router  seq 0, extra {"t": unix time, "ticket": bytes | None}
                               asks for a session; the ticket claims a pre-made pipe end
    WELCOME  router -> dealer  seq 0, extra {"s": router session, "b": bulk offer (optional)}
                               the router session is fresh: the listener's challenge
    (PING)   dealer -> router  seq 1, at once: the answer, signed with both session ids.
                               Only then is the session accepted (or the pipe end joined):
                               a HELLO replayed to any listener gets a WELCOME nobody can
                               answer, and the half-open session is forgotten after
                               `dead_after` (counted as "handshake not completed", logged)
    DATA     both ways         a user message (the Channel's frames); extra {"b": [[index,
                               size, reuse], ...]} when payload frames name same-host
                               files instead of carrying the bytes (see `bulk.py`)
    PING     both ways         a heartbeat, sent after `heartbeat` seconds of not sending
    BYE      both ways         extra {"why": text}: this end closed; the other raises
                               `ChannelClosed` once it has read what came before

Sequence. Each direction numbers its messages 1, 2, 3... after the handshake. A number
not above the last one seen is a replay: dropped, counted, logged. A number that skips
one means messages were lost (a reconnect dropped them): a Channel is a reliable stream
or it is closed, so the channel closes and says why. Both session ids are in every
signature, so a message captured from one session is worthless in another; a HELLO
replayed to the same listener is refused by `security.SessionGuard`, and to another
listener it is never answered (the WELCOME's fresh router session).

Limits. Nothing is read or hashed for a sender before its size is known to be bounded:
- ZeroMQ itself (ZMQ_MAXMSGSIZE = `MAX_WIRE_FRAME`) disconnects a peer that announces a
  frame larger than that, before buffering it; so a frame larger than `WIRE_FRAME`
  travels as pieces (extra {"j": [[first wire frame, pieces], ...]}, under the
  signature) and is joined on arrival; a peer that has not completed a handshake can
  make this process hold at most one such frame per connection being read;
- a sender without a session may only send a HELLO: exactly [session + signature, envelope],
  the envelope at most `HANDSHAKE_BYTES`; anything else is dropped before its signature
  is computed;
- a message of more than `MAX_FRAMES` payload frames is dropped after reading that many;
  its remaining frames are read and discarded a slice at a time between the reactor's
  other work, so one message cannot stall the thread (and the silence of the other
  peers of that socket meanwhile is not held against them).

Heartbeats. Any valid message proves the peer alive. A side that has sent nothing for
`heartbeat` seconds sends a PING; a peer silent for `dead_after` seconds is dead: its
channel raises `ChannelClosed`. Both are sent and checked by the reactor thread, never
by user code, so a busy task does not stop them.
"""

from __future__ import annotations

import os
from typing import Any

import msgpack

__all__ = ["HELLO", "WELCOME", "DATA", "PING", "BYE", "KIND_NAMES", "SESSION_BYTES",
           "NO_SESSION", "new_session", "pack_envelope", "unpack_envelope", "Malformed",
           "MAX_FRAMES", "WIRE_FRAME", "MAX_WIRE_FRAME", "HANDSHAKE_BYTES", "split_frames",
           "join_frames", "CLAIM_BYTES", "MAX_HALF_OPEN"]

HELLO, WELCOME, DATA, PING, BYE = 1, 2, 3, 4, 5
KIND_NAMES = {HELLO: "HELLO", WELCOME: "WELCOME", DATA: "DATA", PING: "PING", BYE: "BYE"}
SESSION_BYTES = 16
NO_SESSION = bytes(SESSION_BYTES)
SIGNATURE_BYTES = 32
CLAIM_BYTES = SESSION_BYTES + SIGNATURE_BYTES  # a DEALER's first frame: session + signature
MAX_HALF_OPEN = 1024  # sessions a ROUTER holds between WELCOME and the answer (oldest go)

# Limits on what a peer may make this process hold or read before its message is
# authenticated (see "Limits" above).
MAX_FRAMES = 65536          # payload frames of one message, as they travel
WIRE_FRAME = 16 << 20       # a larger payload frame travels as pieces of this size
MAX_WIRE_FRAME = WIRE_FRAME + (1 << 20)  # ZMQ_MAXMSGSIZE (room for the largest envelope)
HANDSHAKE_BYTES = 1024      # the envelope of a message from a sender with no session


class Malformed(ValueError):
    """A message that was signed correctly but does not follow the protocol."""


def new_session() -> bytes:
    """A fresh session id (random; never a leading 0, as a ZeroMQ routing id)."""
    session = os.urandom(SESSION_BYTES)
    return b"\x80" + session[1:] if session[0] == 0 else session


def _nbytes(frame: Any) -> int:
    return frame.nbytes if isinstance(frame, memoryview) else len(frame)


def pack_envelope(kind: int, seq: int, frames: Any = (), extra: dict | None = None) -> bytes:
    return msgpack.packb([kind, seq, [_nbytes(f) for f in frames], extra])


def unpack_envelope(data: Any, frames: list) -> tuple[int, int, dict | None]:
    """(kind, seq, extra) of a verified envelope; `Malformed` if it does not fit `frames`."""
    try:
        kind, seq, lengths, extra = msgpack.unpackb(data, raw=False)
    except Exception as exc:  # msgpack raises several types; all mean the same here
        raise Malformed(f"unreadable envelope ({exc})") from None
    if kind not in KIND_NAMES or not isinstance(seq, int) or not isinstance(lengths, list):
        raise Malformed(f"bad envelope fields (kind={kind!r})")
    if len(lengths) != len(frames) or any(n != _nbytes(f) for n, f in zip(lengths, frames)):
        raise Malformed("payload frames do not match the envelope")
    if extra is not None and not isinstance(extra, dict):
        raise Malformed("bad envelope extra")
    return kind, seq, extra


def split_frames(frames: Any) -> tuple[Any, list[list[int]] | None]:
    """(wire frames, joins): each payload frame larger than `WIRE_FRAME` cut into pieces
    (zero-copy views); `joins` lists [first piece index, piece count] for the receiver."""
    out: list[Any] | None = None
    joins: list[list[int]] = []
    for index, frame in enumerate(frames):
        size = _nbytes(frame)
        if size <= WIRE_FRAME:
            if out is not None:
                out.append(frame)
            continue
        if out is None:
            out = list(frames[:index])
        view = memoryview(frame)
        view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
        joins.append([len(out), -(-size // WIRE_FRAME)])
        out.extend(view[at:at + WIRE_FRAME] for at in range(0, size, WIRE_FRAME))
    return (frames, None) if out is None else (out, joins)


def join_frames(frames: list, joins: Any) -> list:
    """Undo `split_frames` on a verified message; `Malformed` if `joins` does not fit."""
    if not isinstance(joins, list):
        raise Malformed("bad frame joins")
    out: list[Any] = []
    at = 0
    for join in joins:
        if (not isinstance(join, list) or len(join) != 2 or type(join[0]) is not int
                or type(join[1]) is not int or join[0] < at or join[1] < 2
                or join[0] + join[1] > len(frames)):
            raise Malformed("bad frame joins")
        first, count = join
        out.extend(frames[at:first])
        whole = bytearray(sum(_nbytes(f) for f in frames[first:first + count]))
        offset = 0
        for piece in frames[first:first + count]:
            size = _nbytes(piece)
            whole[offset:offset + size] = piece
            offset += size
        out.append(memoryview(whole))
        at = first + count
    out.extend(frames[at:])
    return out
