"""Name the part of an object that failed to serialize: `Job -> state['conn'] -> _sock`.

Runs only after a serializer has failed, so the successful path pays nothing for it: it
re-tries the parts of the object one by one and descends into the first that fails. The
parts of an object are what pickle would save: its `__reduce_ex__` state when that is a
dict (so attributes a class leaves out of its state are not blamed), else its `__dict__`
and slots; for a function, its closure variables, defaults and the globals it uses.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import SerializationError

_MAX_DEPTH = 40


def _parts(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield f" -> <key {key!r}>", key
            yield f"[{key!r}]", value
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for index, value in enumerate(obj):
            yield f"[{index}]", value
    elif isinstance(obj, types.FunctionType):
        yield from _function_parts(obj)
    else:
        for name, value in _state(obj).items():
            yield f" -> {name}", value


def _function_parts(fn: types.FunctionType) -> Iterator[tuple[str, Any]]:
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            yield f" -> <closure {name}>", cell.cell_contents
        except ValueError:  # an empty cell
            continue
    for index, value in enumerate(fn.__defaults__ or ()):
        yield f" -> <default {index}>", value
    for name in fn.__code__.co_names:
        if name in fn.__globals__:
            yield f" -> <global {name}>", fn.__globals__[name]


def _state(obj: Any) -> dict[str, Any]:
    """What pickle would save of `obj`'s attributes, as a name -> value dict."""
    try:
        reduced = obj.__reduce_ex__(5)
    except Exception:
        reduced = None
    if isinstance(reduced, tuple) and len(reduced) > 2:
        state = reduced[2]
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            merged = dict(state[0] or {})
            merged.update(state[1] or {})
            return merged
        if isinstance(state, dict):
            return state
    state = dict(getattr(obj, "__dict__", None) or {})
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(obj, name) and name not in ("__dict__", "__weakref__"):
                state[name] = getattr(obj, name)
    return state


def find_failing_part(obj: Any, dump: Callable[[Any], Any],
                      log: Callable[[str], None] | None = None) -> tuple[str, Any]:
    """The path to the deepest part of `obj` that `dump` rejects, and that part.

    `log`, when given, receives one line per part tried (the `verbose=True` walk).
    """
    path = type(obj).__name__
    seen = {id(obj)}
    for _ in range(_MAX_DEPTH):
        for label, part in _parts(obj):
            if id(part) in seen:
                continue
            try:
                dump(part)
            except Exception as exc:
                seen.add(id(part))
                path, obj = path + label, part
                if log:
                    log(f"{path}: fails ({type(exc).__name__}: {exc})")
                break
            if log:
                log(f"{path}{label}: ok")
        else:
            break
    return path, obj


def serialization_error(obj: Any, exc: BaseException, dump: Callable[[Any], Any],
                        serializer: str, *, verbose: bool = False) -> SerializationError:
    """A SerializationError for `exc` that names the failing path and its type."""
    if isinstance(exc, SerializationError):
        return exc
    log = (lambda line: print(f"{serializer}: {line}", file=sys.stderr)) if verbose else None
    try:
        path, part = find_failing_part(obj, dump, log)
    except Exception:  # the walk itself must never hide the original error
        path, part = type(obj).__name__, obj
    type_name = f"{type(part).__module__}.{type(part).__qualname__}"
    return SerializationError(
        f"cannot serialize {path} (a {type_name}) with {serializer!r}: {type(exc).__name__}: {exc}",
        path=path, type_name=type_name)
