"""Large byte buffers as their own frames (pickle protocol 5, out of band), never copied
into the pickle stream.

The C pickler writes `bytes` and `bytearray` in-band before any hook can see them, so
the large ones are lifted first: the message itself, or an item of a small tuple, list or
dict around it (the shape of message envelopes and argument tuples), is replaced by a
`_Lifted` wrapper whose reduction is a `PickleBuffer`. The search is bounded (depth and
width), so it costs a few type checks whatever the message.
"""

from __future__ import annotations

import pickle
from typing import Any

__all__ = ["OUT_OF_BAND_MIN", "lift_large_buffers", "as_bytes", "as_bytearray", "as_memoryview"]

OUT_OF_BAND_MIN = 64 * 1024  # smaller buffers are cheaper inline than as frames
_MAX_DEPTH = 2
_MAX_WIDTH = 16
_BUFFERS = (bytes, bytearray, memoryview)


def as_bytes(buffer: Any) -> bytes:
    """The loaded frame as `bytes` (the frame itself when it already is)."""
    return buffer if type(buffer) is bytes else bytes(buffer)


def as_bytearray(buffer: Any) -> bytearray:
    return buffer if type(buffer) is bytearray else bytearray(buffer)


def as_memoryview(buffer: Any) -> memoryview:
    return memoryview(buffer)


_REBUILD = {bytes: as_bytes, bytearray: as_bytearray, memoryview: as_memoryview}


class _Lifted:
    __slots__ = ("buffer",)

    def __init__(self, buffer: Any):
        self.buffer = buffer

    def __reduce_ex__(self, protocol: int) -> Any:
        buffer = self.buffer
        if isinstance(buffer, memoryview) and not buffer.contiguous:
            return as_memoryview, (buffer.tobytes(),)
        return _REBUILD[type(buffer)], (pickle.PickleBuffer(buffer),)


def _large(obj: Any) -> bool:
    return type(obj) in _REBUILD and memoryview(obj).nbytes >= OUT_OF_BAND_MIN


def lift_large_buffers(obj: Any, depth: int = 0) -> Any:
    """`obj` with its large buffers wrapped for out-of-band pickling (a new container
    only where something was wrapped; `obj` itself otherwise)."""
    cls = type(obj)
    if cls in _REBUILD:
        return _Lifted(obj) if _large(obj) else obj
    if depth >= _MAX_DEPTH or cls not in (tuple, list, dict) or len(obj) > _MAX_WIDTH:
        return obj
    if cls is dict:
        lifted = {k: lift_large_buffers(v, depth + 1) for k, v in obj.items()}
        changed = any(lifted[k] is not v for k, v in obj.items())
    else:
        lifted = [lift_large_buffers(v, depth + 1) for v in obj]
        changed = any(a is not b for a, b in zip(lifted, obj))
        if changed and cls is tuple:
            lifted = tuple(lifted)
    return lifted if changed else obj
