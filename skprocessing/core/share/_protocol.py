"""The Share wire protocol: operation codes, paths, and what a read sends back.

A request is one codec message whose kind byte is the operation (`| REPLY` when the caller
waits for an answer) and whose payload is a tuple starting with a *path*:

    path = (root_name, (ATTR, "cfg"), (ITEM, "k"), ...)     share.root_name.cfg["k"]

A read sends back the value itself when it is immutable (numbers, strings, tuples, ...)
and a `Ref` (type name + its method names, the latter once per connection) for anything
else, so the client can hand out a proxy without copying the object. A read that asks for
a snapshot (`GET (path, True)`) of a plain container (dict, list, set, ...) also gets its
contents in the `Ref`, for the faithful stand-in of `_faithful.py`.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import fractions
import marshal
import numbers
import pathlib
import uuid
from collections.abc import Sequence
from typing import Any

from ...errors import DeserializationError, ShareError
from ...serializers import Codec, Serializer, register_serializer

__all__ = ["GET", "SET", "DEL", "CALL", "AUG", "OP", "SNAPSHOT", "CLEAR", "NAMES",
           "RECONNECT", "REPLY", "OK", "ERR", "ATTR", "ITEM", "Path", "Ref", "format_path",
           "is_value", "type_key", "type_methods", "PIPELINED_METHODS", "INPLACE_OPS",
           "ShareError", "Wire", "PLAIN", "WHO", "FENCE", "RESUME", "READS", "SYNC", "SYNCED", "sync_frames", "sync_gen",
           "BATCH", "BATCH_KIND", "batch_frames", "unbatch"]

# operations (the codec's kind byte)
GET, SET, DEL, CALL, AUG, OP, SNAPSHOT, CLEAR, NAMES, RECONNECT, WHO, FENCE, RESUME = range(1, 14)
# RESUME (pipelined, payload (client id, first sequence)): the first message of a network
# client's connection. From it on, the coordinator numbers that client's writes and requests
# (FENCE and WHO aside) in arrival order, so a connection that replays what a broken one
# may have lost has every message applied exactly once (see `_resume.py`).
READS = frozenset({GET, SNAPSHOT, NAMES})  # answered requests that change nothing
REPLY = 0x80  # or-ed into the kind: the caller waits for an answer
OK, ERR = 0x40, 0x41  # kinds of answers

# The read barrier of a network transport (see `_barrier.py`): the coordinator sends
# SYNC(generation), the client's reader thread answers SYNCED(generation) on the same
# channel. Both are one raw frame (kind byte + 8-byte generation), never a codec message.
SYNC, SYNCED = b"\x50", b"\x51"


def sync_frames(kind: bytes, generation: int) -> list:
    return [kind + generation.to_bytes(8, "little")]


def sync_gen(frames: Sequence[Any], kind: bytes) -> int | None:
    """The generation of a SYNC/SYNCED message of `kind`, or None for any other message."""
    if len(frames) == 1 and len(frames[0]) == 9 and bytes(frames[0][:1]) == kind:
        return int.from_bytes(bytes(frames[0][1:]), "little")
    return None


# A client on a network transport sends its pipelined writes several to a transport
# message (`_connection.Syncing`): per message, the transport signs, numbers and hands
# over to its I/O thread, which costs more than applying a `+= 1`. A batch is two frames:
# BATCH and the marshal of a list of messages, each a list of byte frames (only small
# messages of plain bytes are batched). marshal, as for plain messages: loading it never
# imports or calls anything, and the transport has authenticated the whole batch.
BATCH = b"\x52"
BATCH_KIND = BATCH[0]


def batch_frames(messages: list[Any]) -> list:
    return [BATCH, marshal.dumps(messages, 4)]


def unbatch(frames: Sequence[Any]) -> list[list[bytes]]:
    """The messages of a batch; `DeserializationError` if it is not one."""
    try:
        messages = marshal.loads(frames[1]) if len(frames) == 2 else None
    except (EOFError, ValueError, TypeError) as exc:
        raise DeserializationError(f"bad Share batch: {exc}") from exc
    # (Enough for the coordinator's dispatch on the first byte; the rest is checked by
    # the decoding of each message.)
    if type(messages) is not list or not all(type(m) is list and m and type(m[0]) is bytes
                                             and m[0] for m in messages):
        raise DeserializationError("bad Share batch: not a list of messages")
    return messages

# path steps
ATTR, ITEM = 0, 1

Path = tuple  # (root_name, *steps)


def format_path(path: Path) -> str:
    """`share.cfg.retries`, `share.d['k']`: how a path reads in messages."""
    text = f"share.{path[0]}"
    for kind, key in path[1:]:
        text += f".{key}" if kind == ATTR else f"[{key!r}]"
    return text


# Immutable values travel as copies; everything else stays in the coordinator behind a proxy.
_VALUE_TYPES = frozenset({
    int, float, complex, bool, str, bytes, type(None), tuple, frozenset, range, slice,
    type(Ellipsis), decimal.Decimal, fractions.Fraction, datetime.datetime, datetime.date,
    datetime.time, datetime.timedelta, datetime.timezone, uuid.UUID,
})


def is_value(obj: Any) -> bool:
    """True for objects a read returns as a copy (nothing to mutate in place)."""
    cls = type(obj)
    # numbers.Number also covers numpy's scalars, which are immutable too.
    return cls in _VALUE_TYPES or isinstance(obj, (numbers.Number, enum.Enum, pathlib.PurePath))


def type_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


_methods_cache: dict[type, frozenset[str]] = {}


def type_methods(cls: type) -> frozenset[str]:
    """Names of callables on the class: `proxy.name` for these needs no round trip."""
    found = _methods_cache.get(cls)
    if found is None:
        names = set()
        for name in dir(cls):
            try:
                if callable(getattr(cls, name)):
                    names.add(name)
            except Exception:  # a descriptor that refuses class access is not a method
                pass
        found = _methods_cache[cls] = frozenset(names)
    return found


class Ref:
    """A read's answer for a mutable object: its type, (first time) its method names, and
    the contents when a snapshot was asked for (else `NO_SNAPSHOT`)."""

    __slots__ = ("key", "methods", "value")

    def __init__(self, key: str, methods: frozenset[str] | None, value: Any = None):
        self.key = key
        self.methods = methods
        self.value = NO_SNAPSHOT if value is None else value

    def __reduce__(self):
        value = self.value
        return (Ref, (self.key, self.methods, None if value is NO_SNAPSHOT else value))


class _NoSnapshot:
    def __reduce__(self):
        return "NO_SNAPSHOT"


NO_SNAPSHOT: Any = _NoSnapshot()


# Methods that return None and cannot fail on their own type are sent without waiting for
# an answer (pipelined); a failure (say, the object was replaced by another type) is
# reported with the caller's next answered call. Everything else waits for its result.
PIPELINED_METHODS: dict[str, frozenset[str]] = {
    "builtins.list": frozenset({"append"}),
    "collections.deque": frozenset({"append", "appendleft"}),
    "skprocessing.core.timers.Sktimer": frozenset({"add_time"}),
    "logging.Logger": frozenset({"debug", "info", "warning", "error", "critical", "log"}),
    "logging.RootLogger": frozenset({"debug", "info", "warning", "error", "critical", "log"}),
}

# In-place operators a shared number/string/proxy may receive, by the name sent on the wire.
INPLACE_OPS = ("iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow",
               "ilshift", "irshift", "iand", "ior", "ixor", "imatmul")


class _PlainSerializer(Serializer):
    """`marshal` for messages made only of plain builtin data (the bulk of Share traffic:
    paths, numbers, strings). It is ~10x cheaper than a pickler, and loading it can never
    import or call anything. Anything else raises ValueError here and goes to the Share's
    own serializer instead."""

    name = "skprocessing-share-plain"

    def dumps(self, obj: Any) -> list:
        return [marshal.dumps(obj, 4)]

    def loads(self, frames: Sequence[Any]) -> Any:
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        try:
            return marshal.loads(data)
        except (EOFError, ValueError, TypeError) as exc:
            raise DeserializationError(f"bad plain Share message: {exc}") from exc


PLAIN = register_serializer(_PlainSerializer())


# marshal writes any object with the buffer protocol (bytearray, array, memoryview, ctypes
# values) as bytes, and a subclass of a builtin as its base: both would come back as
# another type. Only these exact types go by marshal.
_PLAIN_SCALARS = frozenset({int, float, complex, bool, str, bytes, type(None)})
_PLAIN_CONTAINERS = frozenset({tuple, list, frozenset, set})


def _plain_data(obj: Any) -> bool:
    cls = type(obj)
    if cls in _PLAIN_SCALARS:
        return True
    if cls in _PLAIN_CONTAINERS:
        return all(map(_plain_data, obj))
    if cls is dict:
        return all(map(_plain_data, obj.keys())) and all(map(_plain_data, obj.values()))
    return False


class Wire:
    """A Share's codec: plain messages with marshal, the rest with the chosen serializer
    (both named in each message's header, as `Codec` does; only these two are accepted)."""

    def __init__(self, codec: Codec):
        self.serializer = codec.serializer
        self._codec = Codec(codec.serializer, accept=[PLAIN])
        self._plain = Codec(PLAIN)
        self._plain_name = PLAIN.name.encode()

    # The plain path writes and reads exactly what `Codec(PLAIN)` would, minus two calls:
    # it is the per-operation cost of every `share.x += 1`.
    def encode(self, kind: int, payload: Any) -> list:
        if not _plain_data(payload):
            return self._codec.encode(kind, payload)
        try:
            body = marshal.dumps(payload, 4)
        except ValueError:  # not plain data after all (say, too deep)
            return self._codec.encode(kind, payload)
        return [self._plain.header(kind), body]

    def decode(self, frames: Sequence[Any]) -> tuple[int, Any]:
        head = frames[0]
        if len(frames) == 2 and head[1:] == self._plain_name:
            try:
                return head[0], marshal.loads(frames[1])
            except (EOFError, ValueError, TypeError) as exc:
                raise DeserializationError(f"bad plain Share message: {exc}") from exc
        return self._codec.decode(frames)

    def token(self) -> tuple:
        return self._codec.token()
