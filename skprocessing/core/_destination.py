"""Which pool the payload being serialized now is bound for.

A `Share()` made with no transport serves on this host only. When one is pickled into a
task of a pool on a network transport, it moves onto that pool's transport first, so the
workers on other hosts can reach it (`Share.__reduce__`). Pickling offers no way to pass
that along, hence this thread-local, set around the pool's (and `start(on=pool)`'s)
serialization.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["bound_for", "destination"]

_current = threading.local()


@contextmanager
def bound_for(pool: Any) -> Iterator[None]:
    """Serialization inside this block is for tasks of `pool`."""
    previous = getattr(_current, "pool", None)
    _current.pool = pool
    try:
        yield
    finally:
        _current.pool = previous


def destination() -> Any:
    """The pool whose tasks are being serialized in this thread, or None."""
    return getattr(_current, "pool", None)
