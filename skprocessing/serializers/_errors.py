"""Name the part of an object that failed to serialize: `Job -> state['conn'] -> _sock`.

Runs only after a serializer has failed, so the successful path pays nothing for it: it
re-tries the parts of the object one by one and descends into the first that fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..errors import SerializationError

_MAX_DEPTH = 40


def _parts(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield f"[{key!r}]", value
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for index, value in enumerate(obj):
            yield f"[{index}]", value
        return
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        for name, value in state.items():
            yield f" -> {name}", value
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(obj, name) and name not in ("__dict__", "__weakref__"):
                yield f" -> {name}", getattr(obj, name)


def find_failing_part(obj: Any, dump: Callable[[Any], Any]) -> tuple[str, Any]:
    """The path to the deepest part of `obj` that `dump` rejects, and that part."""
    path = type(obj).__name__
    seen = {id(obj)}
    for _ in range(_MAX_DEPTH):
        for label, part in _parts(obj):
            if id(part) in seen:
                continue
            try:
                dump(part)
            except Exception:
                seen.add(id(part))
                path, obj = path + label, part
                break
        else:
            break
    return path, obj


def serialization_error(obj: Any, exc: BaseException, dump: Callable[[Any], Any],
                        serializer: str) -> SerializationError:
    """A SerializationError for `exc` that names the failing path and its type."""
    if isinstance(exc, SerializationError):
        return exc
    path, part = find_failing_part(obj, dump)
    type_name = f"{type(part).__module__}.{type(part).__qualname__}"
    return SerializationError(
        f"cannot serialize {path} (a {type_name}) with {serializer!r}: {type(exc).__name__}: {exc}",
        path=path, type_name=type_name)
