"""Reducers for interpreter objects pickle refuses: matches, generators, weak references,
context variables.

A generator cannot be copied mid-flight, so it travels as the values it has left: they are
drawn from it (the sender's generator is consumed by serializing it) and replayed by a new
generator where it lands. An endless generator is refused after `GENERATOR_LIMIT` values.
A weak reference travels with its referent, so it stays alive only if something else in
the payload holds the referent too: exactly as weak as it was.
"""

from __future__ import annotations

import contextvars
import re
import types
import weakref
from collections.abc import Generator, Iterable
from typing import Any

from ._table import register_reducer
from .reconnectors import MatchReconnector

__all__ = ["GENERATOR_LIMIT"]

GENERATOR_LIMIT = 1_000_000


def _reduce_match(match: re.Match) -> Any:
    return MatchReconnector, (match.re, match.string, match.pos, match.endpos, match.span(),
                              match.groups())


def replay(values: Iterable[Any]) -> Generator[Any, None, None]:
    """A generator that yields `values`: what a serialized generator becomes."""
    yield from values


def _reduce_generator(generator: types.GeneratorType) -> Any:
    if generator.gi_running:
        raise TypeError("cannot serialize a generator while it is running")
    values = []
    for value in generator:
        values.append(value)
        if len(values) > GENERATOR_LIMIT:
            raise ValueError(f"generator {generator.__qualname__} yielded more than "
                             f"{GENERATOR_LIMIT:,} values: is it endless?")
    return replay, (values,)


class _Gone:
    """Stands in for the referent of a dead weak reference."""


def dead_ref() -> weakref.ref:
    return weakref.ref(_Gone())  # the referent dies at once: a dead reference


def _reduce_ref(ref: weakref.ref) -> Any:
    referent = ref()
    if referent is None:
        return dead_ref, ()
    if isinstance(ref, weakref.WeakMethod):
        return weakref.WeakMethod, (referent,)
    return weakref.ref, (referent,)


def rebuild_weak_mapping(cls: type, items: list) -> Any:
    return cls(items)


def _reduce_weak_mapping(mapping: Any) -> Any:
    return rebuild_weak_mapping, (type(mapping), list(mapping.items()))


_UNSET = "__skprocessing_unset__"  # a string, so it pickles by value


def _is_unset(value: Any) -> bool:
    return isinstance(value, str) and value == _UNSET


def rebuild_contextvar(name: str, default: Any, value: Any) -> contextvars.ContextVar:
    var: contextvars.ContextVar = (contextvars.ContextVar(name) if _is_unset(default)
                                   else contextvars.ContextVar(name, default=default))
    if not _is_unset(value):
        var.set(value)  # in the context that deserializes
    return var


def _reduce_contextvar(var: contextvars.ContextVar) -> Any:
    value = var.get(_UNSET)
    try:
        default = contextvars.Context().run(var.get)  # a fresh context sees only the default
    except LookupError:
        default = _UNSET
    return rebuild_contextvar, (var.name, default, value)


register_reducer(re.Match, _reduce_match)
register_reducer(types.GeneratorType, _reduce_generator)
register_reducer(weakref.ref, _reduce_ref)  # and WeakMethod, a subclass
register_reducer(weakref.WeakValueDictionary, _reduce_weak_mapping)
register_reducer(weakref.WeakKeyDictionary, _reduce_weak_mapping)
register_reducer(contextvars.ContextVar, _reduce_contextvar)
