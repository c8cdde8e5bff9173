"""Numbers and strings read from a Share, marked with where they came from.

`share.counter` is a real `int` (a subclass: arithmetic, comparisons, `json`, `isinstance`
all behave as for `int`) that remembers it was read from `share.counter`. In-place
operators on it compute the new value locally (so `share.name += 1` on a string raises
TypeError at once, as in plain Python) and return a value that also remembers the
operation. When that value is assigned back to the same place, as `share.counter += 1`
does, the assignment is sent as the operation (`+= 1`), which the coordinator applies to
the current value in one step: no update from another process is lost.

A marked value pickles, copies and serializes as its plain type.
"""

from __future__ import annotations

import operator
from typing import Any

from ._protocol import INPLACE_OPS, Path

__all__ = ["mark", "plain", "in_place_of", "MARKED"]


def _binary(op: str) -> Any:
    name = op[1:]  # "iadd" -> "add"
    return getattr(operator, name + "_" if name in ("and", "or") else name)


def _make_in_place(base: type, op: str) -> Any:
    binary = _binary(op)

    def in_place(self: Any, other: Any) -> Any:
        operand = plain(other)
        result = binary(base(self), operand)  # raises here, in the caller, if it must
        marked_class = MARKED.get(type(result))
        if marked_class is None:
            return result  # not markable: assigned back as a plain value
        marked = marked_class(result)
        marked._sk_client = self._sk_client
        marked._sk_path = self._sk_path
        marked._sk_op = (op, operand)
        return marked

    in_place.__name__ = f"__{op}__"
    return in_place


def _marked_class(base: type) -> type:
    def __reduce_ex__(self: Any, protocol: int) -> Any:
        return (base, (base(self),))

    namespace: dict[str, Any] = {
        "__doc__": f"A {base.__name__} read from a Share (see skprocessing.core.share._values).",
        "__reduce_ex__": __reduce_ex__,
        "__reduce__": lambda self: __reduce_ex__(self, 2),
        "__copy__": lambda self: base(self),
        "__deepcopy__": lambda self, memo: base(self),
        "_sk_base": base, "_sk_client": None, "_sk_path": None, "_sk_op": None,
    }
    for op in INPLACE_OPS:
        if hasattr(base, "__" + op[1:] + "__"):
            namespace[f"__{op}__"] = _make_in_place(base, op)
    return type(f"Shared{base.__name__.capitalize()}", (base,), namespace)


MARKED: dict[type, type] = {base: _marked_class(base)
                            for base in (int, float, complex, str, bytes, tuple, frozenset)}
_MARKED_TYPES = frozenset(MARKED.values())


def mark(value: Any, client: Any, path: Path) -> Any:
    """`value`, marked as read from `path` through `client` when its type can be."""
    cls = MARKED.get(type(value))
    if cls is None:
        return value
    marked = cls(value)
    marked._sk_client = client
    marked._sk_path = path
    return marked


def plain(value: Any) -> Any:
    return value._sk_base(value) if type(value) in _MARKED_TYPES else value


def in_place_of(value: Any, client: Any, path: Path) -> tuple[str, Any] | None:
    """(op, operand) when `value` is the result of `<read of path> op= operand`."""
    if type(value) in _MARKED_TYPES and value._sk_op is not None \
            and value._sk_client is client and value._sk_path == path:
        return value._sk_op
    return None
