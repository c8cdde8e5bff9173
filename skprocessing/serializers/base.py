"""The serializer plugin interface: objects to byte frames and back.

A serializer may return several frames (a header and out-of-band buffers) so large
payloads travel without being joined into one string; transports send frames as they are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from .._frames import Buffer, Frames

__all__ = ["Serializer", "FunctionSerializer"]


class Serializer(ABC):
    """Turns objects into frames and back. Subclasses set `name` and implement both methods.

    `dumps` raises `SerializationError` naming the path to the part that failed;
    `loads` raises `DeserializationError` for truncated or tampered input.
    """

    name: str = ""

    @abstractmethod
    def dumps(self, obj: Any) -> Frames: ...

    @abstractmethod
    def loads(self, frames: Sequence[Buffer]) -> Any: ...

    def __repr__(self) -> str:
        return f"<serializer {self.name!r}>"


class FunctionSerializer(Serializer):
    """A serializer made of a user's `dumps(obj) -> bytes` and `loads(bytes) -> obj`."""

    def __init__(self, name: str, dumps: Callable[[Any], bytes], loads: Callable[[bytes], Any]):
        self.name = name
        self._dumps = dumps
        self._loads = loads

    def dumps(self, obj: Any) -> Frames:
        from ._errors import serialization_error
        try:
            return [self._dumps(obj)]
        except Exception as exc:
            raise serialization_error(obj, exc, self._dumps, self.name) from exc

    def loads(self, frames: Sequence[Buffer]) -> Any:
        from ..errors import DeserializationError
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        try:
            return self._loads(data)
        except (Exception, SystemExit) as exc:  # SystemExit: a tampered pickle may name exit()
            raise DeserializationError(f"serializer {self.name!r} could not load the data: "
                                       f"{type(exc).__name__}: {exc}") from exc
