"""Recognize `share.x op= value` at the read of `share.x`, so it costs no round trip.

Why: `share.counter += 1` is a read, an add and a write. Reading the value only to send
`+= 1` wastes a round trip per increment, the dominant cost of counting from many
processes. CPython compiles an augmented attribute assignment to a fixed shape:

    COPY 1 · LOAD_ATTR x · <operand> · BINARY_OP op= · SWAP 2 · STORE_ATTR x

so when `Share.__getattr__` (or a proxy's) is called from a `LOAD_ATTR` that starts this
shape, the read can return an `InPlaceTarget` instead of the value: its `__iadd__` (etc.)
sends the operation to the coordinator, pipelined, and the following `STORE_ATTR` of the
same target is recognized and skipped. The shape is checked once per code location
(cached); anything else, or another Python version, takes the ordinary read, which is
equally correct. The one visible difference: an in-place operation that fails in the
coordinator (say `share.name += 1` on a string) is reported with the next answered call
instead of at once.
"""

from __future__ import annotations

import dis
import sys
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from ._protocol import AUG, INPLACE_OPS, Path, format_path
from ._values import plain

__all__ = ["in_place_target", "InPlaceTarget", "used_in_place"]

_SUPPORTED = sys.version_info[:2] in ((3, 11), (3, 12), (3, 13))
_shapes: dict[tuple[CodeType, int], bool] = {}
_MAX_SHAPES = 4096


def in_place_target(frame: FrameType | None, name: str, client: Any,
                    path: Path) -> InPlaceTarget | None:
    """An `InPlaceTarget` when `frame` is reading `name` for an augmented assignment."""
    if frame is None or not _SUPPORTED:
        return None
    found = _by_location(_shapes, frame, lambda code, at: _is_augmented_read(code, at, name))
    return InPlaceTarget(client, path) if found else None


def _by_location(cache: dict[tuple[CodeType, int], bool], frame: FrameType,
                 decide: Callable[[CodeType, int], bool]) -> bool:
    """`decide(code, offset)` for the frame's current instruction, cached per code location
    (the bytecode there never changes); the cache is emptied when it grows too large."""
    key = (frame.f_code, frame.f_lasti)
    found = cache.get(key)
    if found is None:
        if len(cache) >= _MAX_SHAPES:
            cache.clear()
        found = cache[key] = decide(frame.f_code, frame.f_lasti)
    return found


def _is_augmented_read(code: CodeType, lasti: int, name: str) -> bool:
    instructions = list(dis.get_instructions(code))
    at = next((i for i, ins in enumerate(instructions) if ins.offset == lasti), None)
    if at is None or at == 0:
        return False
    load, before = instructions[at], instructions[at - 1]
    if load.opname != "LOAD_ATTR" or load.argval != name:
        return False
    if before.opname != "COPY" or before.arg != 1:
        return False
    # An expression cannot contain an in-place operator, so the first one after the read is
    # the one of this statement.
    for i in range(at + 1, len(instructions) - 2):
        ins = instructions[i]
        if ins.opname == "BINARY_OP" and ins.argrepr.endswith("="):
            swap, store = instructions[i + 1], instructions[i + 2]
            return (swap.opname == "SWAP" and swap.arg == 2 and store.opname == "STORE_ATTR"
                    and store.argval == name)
    return False


# What may follow a read of a shared container when the container itself never reaches
# the caller's code: a member access (`share.d.get`), a subscript (`share.d[k]`, `[k] = v`,
# `[k] += 1`), `in`, a for loop, `len(...)`.
_MEMBER = frozenset({"LOAD_METHOD", "LOAD_ATTR", "CONTAINS_OP", "GET_ITER"})
_SIMPLE_LOAD = frozenset({"LOAD_CONST", "LOAD_FAST", "LOAD_NAME", "LOAD_GLOBAL", "LOAD_DEREF"})
_SUBSCRIPT = frozenset({"BINARY_SUBSCR", "STORE_SUBSCR", "DELETE_SUBSCR", "COPY"})
_uses: dict[tuple[CodeType, int], bool] = {}


def used_in_place(frame: FrameType | None) -> bool:
    """True when the value being read at `frame`'s current instruction is only used there
    (see `_MEMBER`), so a stand-in needs no snapshot of its contents (`_faithful.py`)."""
    if frame is None or not _SUPPORTED:
        return False
    return _by_location(_uses, frame, _is_used_in_place)


def _is_used_in_place(code: CodeType, lasti: int) -> bool:
    instructions = list(dis.get_instructions(code))
    at = next((i for i, ins in enumerate(instructions) if ins.offset == lasti), None)
    if at is None or at + 1 >= len(instructions):
        return False
    after = instructions[at + 1]
    if after.opname in _MEMBER:
        return True
    if after.opname in _SIMPLE_LOAD and at + 2 < len(instructions):
        return instructions[at + 2].opname in _SUBSCRIPT
    if after.opname in ("PRECALL", "CALL") and after.arg == 1 and at >= 2:
        callee = instructions[at - 2]  # len(share.x): LOAD_GLOBAL len, LOAD share, LOAD_ATTR x
        return callee.opname in ("LOAD_GLOBAL", "LOAD_NAME") and callee.argval == "len" \
            and instructions[at - 1].opname in _SIMPLE_LOAD
    return False


class InPlaceTarget:
    """Stands for `share.x` between the read and the write of `share.x op= value`."""

    __slots__ = ("client", "path")

    def __init__(self, client: Any, path: Path):
        self.client = client
        self.path = path

    def _apply(self, op: str, operand: Any) -> InPlaceTarget:
        self.client.post(AUG, (self.path, op, plain(operand)), (op, self.path))
        return self

    def __repr__(self) -> str:
        return f"<in-place target {format_path(self.path)}>"


def _method(op: str) -> Any:
    def method(self: InPlaceTarget, operand: Any) -> InPlaceTarget:
        return self._apply(op, operand)
    method.__name__ = f"__{op}__"
    return method


for _op in INPLACE_OPS:
    setattr(InPlaceTarget, f"__{_op}__", _method(_op))
