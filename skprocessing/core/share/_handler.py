"""Messages to store operations: decode a request, apply it, encode the answer.

One `Handler` serves every connection of a coordinator (and the owner's stopped Share, with
a single `Session`). A request that fails is answered with the exception and its traceback
text; a pipelined request (no answer wanted) that fails is remembered on its session and
reported with that session's next answer, never dropped silently.
"""

from __future__ import annotations

import traceback
from typing import Any

from ...errors import SerializationError
from ...transports.base import Channel, Frames
from ._protocol import (AUG, CALL, CLEAR, DEL, ERR, GET, NAMES, OK, OP, RECONNECT, REPLY,
                        SET, SNAPSHOT, WHO, FENCE, Ref, ShareError, Wire, format_path, is_value, type_key,
                        type_methods)
from ._faithful import FAITHFUL_TYPES
from ._resume import Record
from ._store import Store

__all__ = ["Handler", "Session"]

_OP_NAMES = {GET: "read", SET: "assignment", DEL: "deletion", CALL: "call", AUG: "in-place update",
             OP: "operation", SNAPSHOT: "snapshot", CLEAR: "clear", NAMES: "names",
             RECONNECT: "reconnect_all", WHO: "identity check",
             FENCE: "write window"}


class Session:
    """What the coordinator remembers about one connected client."""

    __slots__ = ("channel", "sent_types", "deferred", "record", "next_seq", "pending_seq")

    def __init__(self, channel: Channel | None = None):
        self.channel = channel
        self.sent_types: set[str] = set()  # type keys whose method names it already has
        self.deferred: list[str] = []      # failures of its pipelined requests, not yet told
        # A network client's numbering (`_resume.py`), from its RESUME on; None: unnumbered.
        self.record: Record | None = None
        self.next_seq = 0
        self.pending_seq = 0               # the number of its request waiting for an answer

    def admit(self) -> bool:
        """Number the pipelined write just read: True to apply it, False for a replay of
        one already applied."""
        record = self.record
        if record is None:
            return True
        seq = self.next_seq
        self.next_seq = seq + 1
        if seq <= record.applied:
            return False
        record.applied = seq
        record.answer = None  # the client sends on only once it has its last answer
        return True

    def number_request(self) -> None:
        """Number the answered request just read (it is applied later, see `answered`)."""
        if self.record is not None:
            self.pending_seq = self.next_seq
            self.next_seq += 1

    def take_deferred(self) -> list[str] | None:
        if not self.deferred:
            return None
        told, self.deferred = self.deferred, []
        return told


class Handler:
    """Applies requests to one `Store`; see the module docstring."""

    def __init__(self, store: Store, codec: Wire, ident: str | None = None):
        self.store = store
        self.codec = codec
        self.ident = ident  # the share's id: a client reaching us by a guessed address checks it

    def handle(self, session: Session, frames: Frames) -> Frames | None:
        """The answer to send back, or None for a pipelined request."""
        kind = frames[0][0] if frames and len(frames[0]) else 0
        wants_answer = bool(kind & REPLY)
        payload: Any = None
        try:
            payload = self.codec.decode(frames)[1]
            result = self._apply(session, kind & ~REPLY, payload)
        except Exception as exc:
            if wants_answer:
                return self._error(exc)
            session.deferred.append(self._describe(kind & ~REPLY, payload, exc))
            return None
        if not wants_answer:
            return None
        try:
            return self.codec.encode(OK, (result, self.store.epoch, session.take_deferred()))
        except SerializationError as exc:
            return self._error(ShareError(f"the answer could not be sent back: {exc}"))

    def _apply(self, session: Session, op: int, payload: tuple) -> Any:
        store = self.store
        if op == AUG:  # the hot path (`share.x += 1`) first
            return store.aug(*payload)
        if op == GET:
            return self._answer(session, store.get(payload[0]), len(payload) > 1 and payload[1])
        if op == CALL:
            return store.call(*payload)
        if op == SET:
            return store.set(*payload)
        if op == OP:
            return store.op(*payload)
        if op == DEL:
            return store.delete(*payload)
        if op == NAMES:
            return store.names()
        if op == CLEAR:
            return store.clear()
        if op == SNAPSHOT:
            return store.snapshot(self.codec.serializer.dumps)
        if op == RECONNECT:
            return store.reconnect_all(_reconnector(self.codec), *payload)
        if op == WHO:
            return self.ident
        if op == FENCE:
            return None
        raise ShareError(f"unknown Share operation {op}")

    def _answer(self, session: Session, obj: Any, snapshot: bool = False) -> Any:
        """A read sends immutable values; anything else stays here behind a `Ref` (with
        the contents of a plain container when the reader asked for a snapshot)."""
        if is_value(obj):
            return obj
        cls = type(obj)
        key = type_key(cls)
        value = obj if snapshot and cls in FAITHFUL_TYPES else None
        if key in session.sent_types:
            return Ref(key, None, value)
        session.sent_types.add(key)
        return Ref(key, type_methods(cls), value)

    def _error(self, exc: BaseException) -> Frames:
        text = traceback.format_exc() if exc.__traceback__ is not None else ""
        summary = f"{type(exc).__qualname__}: {exc}"
        try:
            return self.codec.encode(ERR, (exc, summary, text))
        except Exception:  # the exception itself does not travel; its text does
            return self.codec.encode(ERR, (None, summary, text))

    @staticmethod
    def _describe(op: int, payload: Any, exc: BaseException) -> str:
        what = _OP_NAMES.get(op, f"operation {op}")
        where = ""
        if isinstance(payload, tuple) and payload and isinstance(payload[0], tuple) and payload[0]:
            where = f" of {format_path(payload[0])}"
        return f"the pipelined {what}{where} failed: {type(exc).__qualname__}: {exc}"


def _reconnector(codec: Wire) -> Any:
    """The serializer's `reconnect_all(obj, start_threads=..., **auth)`, if it has one."""
    found = getattr(codec.serializer, "reconnect_all", None)
    if found is None:
        from ... import serializers
        found = getattr(serializers, "reconnect_all", None)
    return found or (lambda obj, **_: obj)
