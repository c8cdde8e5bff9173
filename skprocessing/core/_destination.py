"""Which pool the payload being serialized now is bound for, and the moves that implies.

A `Share()` made with no transport serves on this host only. When one is pickled into a
task of a pool on a network transport, it must move onto that pool's transport, so the
workers on other hosts can reach it. Pickling offers no way to pass the pool along, hence
a thread-local set around the pool's (and `start(on=pool)`'s) serialization; and pickling
must change nothing, so `Share.__reduce__` only notes the move it needs
(`relocate_later`). `serialize_for` makes the noted moves once the pickling is over, then
serializes again, so the payload names where the Share now serves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["bound_for", "destination", "relocate_later", "serialize_for"]

T = TypeVar("T")

_current = threading.local()


@contextmanager
def bound_for(pool: Any) -> Iterator[list[Callable[[], None]]]:
    """Serialization inside this block is for tasks of `pool`; yields the moves noted."""
    previous = getattr(_current, "pool", None), getattr(_current, "moves", None)
    _current.pool, _current.moves = pool, []
    try:
        yield _current.moves
    finally:
        _current.pool, _current.moves = previous


def destination() -> Any:
    """The pool whose tasks are being serialized in this thread, or None."""
    return getattr(_current, "pool", None)


def relocate_later(move: Callable[[], None]) -> None:
    """From a `__reduce__` inside `bound_for`: run `move()` once this serialization ends."""
    moves = getattr(_current, "moves", None)
    if moves is not None and move not in moves:
        moves.append(move)


def serialize_for(pool: Any, encode: Callable[[], T]) -> T:
    """`encode()` bound for `pool`; if that noted moves, make them and encode again."""
    with bound_for(pool) as moves:
        encoded = encode()
    if not moves:
        return encoded
    for move in moves:
        move()
    with bound_for(pool):
        return encode()
