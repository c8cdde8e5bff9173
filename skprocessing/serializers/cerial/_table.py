"""The reducer table: which function turns a live resource into plain, picklable data.

A reducer takes the object and returns a pickle reduce value (`(rebuild, args)` or
`(rebuild, args, state)`), or `NotImplemented` to let pickle handle the object. It is
looked up by the object's type, then by the dotted name of each class in its MRO
(`"psycopg2.extensions.connection"`), so optional libraries are matched without ever
being imported just to check. The answer for each type is cached: after the first object
of a type, finding its reducer costs one dict lookup.

Objects whose class defines `__serialize__(self) -> state` and `__deserialize__(state)`
(a class or static method returning the rebuilt object) use those instead.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from typing import Any

__all__ = ["Reducer", "register_reducer", "resolve", "CLOUDPICKLE", "cache"]

Reducer = Callable[[Any], Any]

# Marks types that cloudpickle's own reducer_override handles: classes and functions.
CLOUDPICKLE: Reducer = lambda obj: NotImplemented  # noqa: E731  (a unique sentinel)

_by_type: dict[type, Reducer] = {}
_by_name: dict[str, Reducer] = {}
_lock = threading.Lock()
# type -> reducer (or None: plain pickling). Read without the lock: dict reads are atomic,
# and a race only means a type is resolved twice to the same answer.
cache: dict[type, Reducer | None] = {}
# Classes made at run time (local classes, one per call) would otherwise pile up here.
_CACHE_LIMIT = 4096


def register_reducer(key: type | str, reducer: Reducer) -> None:
    """Make `reducer` handle objects of `key`: a type, or a dotted type name such as
    `"redis.client.Redis"` (matched against every class in the object's MRO).

    Raises `TypeError` if `key` is neither a type nor a string.
    """
    with _lock:
        if isinstance(key, type):
            _by_type[key] = reducer
        elif isinstance(key, str):
            _by_name[key] = reducer
        else:
            raise TypeError(f"register_reducer needs a type or a dotted name, not {key!r}")
        cache.clear()  # earlier answers may now be wrong


def _dotted(cls: type) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls.__name__)}"


def resolve(cls: type) -> Reducer | None:
    """The reducer for objects of type `cls` (cached), or None for plain pickling."""
    reducer = _find(cls)
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[cls] = reducer
    return reducer


def _find(cls: type) -> Reducer | None:
    if issubclass(cls, type):
        return CLOUDPICKLE  # a class object (any metaclass)
    if getattr(cls, "__serialize__", None) is not None:
        return _hook_reducer(cls)
    mro = getattr(cls, "__mro__", (cls,))
    for index, klass in enumerate(mro):
        if klass is object:
            break
        reducer = _by_type.get(klass) or _by_name.get(_dotted(klass))
        if reducer is not None:
            # A subclass that says how to pickle itself is taken at its word.
            return None if _pickles_itself(mro[:index]) else reducer
    if issubclass(cls, types.FunctionType):
        return CLOUDPICKLE
    return None


_OWN_PICKLING = ("__reduce_ex__", "__reduce__", "__getstate__")


def _pickles_itself(subclasses: tuple[type, ...]) -> bool:
    return any(name in klass.__dict__ for klass in subclasses for name in _OWN_PICKLING)


def _hook_reducer(cls: type) -> Reducer:
    if getattr(cls, "__deserialize__", None) is None:
        def refuse(obj: Any) -> Any:
            raise TypeError(f"{cls.__qualname__} defines __serialize__ but no __deserialize__ "
                            f"to rebuild it with")
        return refuse

    def reduce_with_hooks(obj: Any) -> Any:
        return rebuild_from_hook, (cls, obj.__serialize__())
    return reduce_with_hooks


def rebuild_from_hook(cls: type, state: Any) -> Any:
    """Rebuild an object through its class's `__deserialize__(state)`."""
    return cls.__deserialize__(state)
