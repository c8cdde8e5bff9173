"""The `pickle` plugin: protocol 5, with large buffers sent as their own out-of-band frames."""

from __future__ import annotations

import pickle as _pickle
from collections.abc import Sequence
from typing import Any

from ..errors import DeserializationError
from .._frames import Buffer, Frames
from ._errors import serialization_error
from ._oob import OUT_OF_BAND_MIN, lift_large_buffers
from .base import Serializer

__all__ = ["PickleSerializer", "OUT_OF_BAND_MIN"]


class PickleSerializer(Serializer):
    """Frames: `[pickle, *out-of-band buffers]`. Objects the stdlib cannot pickle are refused
    with a `SerializationError` naming the failing part; bad input to `loads` raises
    `DeserializationError`.

    A large `bytes`/`bytearray`/`memoryview` (64 KiB or more) in the message, or directly
    inside a small tuple, list or dict of it, is a frame of its own: the buffer itself, not
    a copy, so a 100 MB payload is never joined into one big string.
    """

    name = "pickle"
    _dumps = staticmethod(_pickle.dumps)

    def dumps(self, obj: Any) -> Frames:
        buffers: list[Buffer] = []

        def keep_large(buffer: _pickle.PickleBuffer) -> bool:
            view = buffer.raw()
            if view.nbytes < OUT_OF_BAND_MIN:
                return True  # serialize inline
            buffers.append(view)
            return False

        try:
            head = self._dumps(lift_large_buffers(obj), protocol=5, buffer_callback=keep_large)
        except Exception as exc:
            raise serialization_error(obj, exc, self._probe, self.name) from exc
        return [head, *buffers]

    def _probe(self, obj: Any) -> bytes:
        return self._dumps(obj, protocol=5)

    def loads(self, frames: Sequence[Buffer]) -> Any:
        if not frames:
            raise DeserializationError(f"{self.name}: no frames to load")
        try:
            return _pickle.loads(frames[0], buffers=frames[1:])
        except (Exception, SystemExit) as exc:  # SystemExit: a tampered stream may name exit()
            raise DeserializationError(
                f"{self.name} could not load the data ({len(frames)} frames): "
                f"{type(exc).__name__}: {exc}") from exc
