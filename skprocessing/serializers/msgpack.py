"""The `msgpack` plugin: plain data only (None, bool, int, float, str, bytes, list, dict,
and tuples), compact and readable from other languages.

Anything else is refused with a `SerializationError` naming the part, never converted
silently. A tuple comes back a tuple (as a msgpack extension type) unless the serializer
is made with `tuples="list"` (plain msgpack arrays, for non-Python readers) or
`tuples="error"`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgpack as _msgpack

from ..errors import DeserializationError
from .._frames import Buffer, Frames
from ._errors import serialization_error
from .base import Serializer

__all__ = ["MsgpackSerializer"]

_TUPLE = 1  # extension type code of a tuple: its payload is the packed items as an array


class MsgpackSerializer(Serializer):
    """Frames: one msgpack document. `tuples` is "keep" (default), "list" or "error"."""

    name = "msgpack"

    def __init__(self, tuples: Literal["keep", "list", "error"] = "keep"):
        if tuples not in ("keep", "list", "error"):
            raise ValueError(f"tuples must be 'keep', 'list' or 'error', not {tuples!r}")
        self.tuples = tuples

    def _default(self, obj: Any) -> Any:
        # Called by msgpack for every object it has no exact type for (strict_types=True).
        if type(obj) is tuple:
            if self.tuples == "keep":
                return _msgpack.ExtType(_TUPLE, self._pack(list(obj)))
            if self.tuples == "list":
                return list(obj)
        raise TypeError(f"msgpack carries plain data only (None, bool, int, float, str, "
                        f"bytes, list, dict, tuple); got {type(obj).__module__}."
                        f"{type(obj).__qualname__}")

    def _pack(self, obj: Any) -> bytes:
        return _msgpack.packb(obj, default=self._default, strict_types=True, use_bin_type=True)

    def dumps(self, obj: Any) -> Frames:
        try:
            return [self._pack(obj)]
        except Exception as exc:
            raise serialization_error(obj, exc, self._pack, self.name) from exc

    @staticmethod
    def _ext(code: int, data: bytes) -> Any:
        if code == _TUPLE:
            return tuple(_msgpack.unpackb(data, ext_hook=MsgpackSerializer._ext, raw=False,
                                          strict_map_key=False, use_list=True))
        raise ValueError(f"unknown msgpack extension type {code}")

    def loads(self, frames: Sequence[Buffer]) -> Any:
        if len(frames) != 1:
            raise DeserializationError(f"msgpack expects one frame, got {len(frames)}")
        try:
            return _msgpack.unpackb(frames[0], ext_hook=self._ext, raw=False,
                                    strict_map_key=False)
        except Exception as exc:
            raise DeserializationError(f"msgpack could not load the data: "
                                       f"{type(exc).__name__}: {exc}") from exc
