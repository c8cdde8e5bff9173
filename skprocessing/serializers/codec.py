"""The message envelope: `[header, *payload frames]`, header = kind byte + serializer name.

The serializer's name travels in every message, and a receiver decodes only with the
serializers it was told to accept: data that names any other is refused, not loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import DeserializationError
from .._frames import Buffer, Frames
from .base import Serializer
from .registry import get_serializer

__all__ = ["Codec"]


class Codec:
    """Encodes `(kind, obj)` to frames with one serializer; decodes with the accepted ones."""

    def __init__(self, serializer: str | Serializer | None = None,
                 accept: Iterable[str | Serializer] | None = None):
        self.serializer = get_serializer(serializer)
        accepted = [self.serializer, *(get_serializer(s) for s in accept or ())]
        self._accepted = {s.name.encode(): s for s in accepted}
        self._headers: dict[int, bytes] = {}

    def header(self, kind: int) -> bytes:
        head = self._headers.get(kind)
        if head is None:
            head = self._headers[kind] = bytes((kind,)) + self.serializer.name.encode()
        return head

    def encode(self, kind: int, obj: Any) -> Frames:
        return [self.header(kind), *self.serializer.dumps(obj)]

    def decode(self, frames: Sequence[Buffer]) -> tuple[int, Any]:
        if not frames or not len(frames[0]):
            raise DeserializationError("empty message: no header frame")
        head = bytes(frames[0])
        serializer = self._accepted.get(head[1:])
        if serializer is None:
            raise DeserializationError(
                f"refusing a message serialized with {head[1:].decode(errors='replace')!r}: "
                f"this receiver accepts {sorted(n.decode() for n in self._accepted)}")
        return head[0], serializer.loads(frames[1:])

    def token(self) -> tuple[str, bytes | None]:
        """What a fresh process needs to rebuild this codec: the name, and the serializer
        itself (by value) when that process's registry may not know the name."""
        from .registry import is_builtin
        name = self.serializer.name
        if is_builtin(name):
            return name, None
        import cloudpickle
        return name, cloudpickle.dumps(self.serializer)

    @classmethod
    def from_token(cls, token: tuple[str, bytes | None]) -> Codec:
        name, blob = token
        if blob is None:
            return cls(name)
        import cloudpickle
        from .registry import register_serializer
        return cls(register_serializer(cloudpickle.loads(blob)))
