"""`@autoreconnect`: an `Skprocess` subclass whose live resources come back by themselves.

    @autoreconnect(**{"psycopg2.Connection": {"*": password}})
    class Job(Skprocess):
        def __init__(self):
            self.db = psycopg2.connect(...)       # travels as a DbReconnector
        def __run__(self):
            self.db.cursor()...                   # a live connection again, in the child

The engine rebuilds the object in the child, then calls `type(process)._sk_autoreconnect`
(see `engine.main`), which runs cerial's `reconnect_all` over the object in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

__all__ = ["autoreconnect"]

C = TypeVar("C", bound=type)


@overload
def autoreconnect(cls: C, /) -> C: ...
@overload
def autoreconnect(*, start_threads: bool = False, **auth: Any) -> Callable[[C], C]: ...


def autoreconnect(cls: Any = None, /, *, start_threads: bool = False, **auth: Any) -> Any:
    """Mark a class so every `Reconnector` in its instances is reconnected after the
    instance is rebuilt in a child process. `auth` maps a type key to credentials:
    `{"sqlite3.Connection": {"*": default, "attr_name": override}}`; `start_threads=True`
    starts rebuilt threads. Usable bare (`@autoreconnect`) or called. A placeholder that
    cannot reconnect stays in place with `reconnect_error` set; it never stops the process.

    Raises `TypeError` when applied to something that is not a class.
    """
    def apply(target: C) -> C:
        if not isinstance(target, type):
            raise TypeError(f"@autoreconnect decorates a class, not {target!r}")

        def reconnect(process: Any) -> None:
            from ..serializers.cerial import reconnect_all
            reconnect_all(process, start_threads=start_threads, **auth)

        target._sk_autoreconnect = staticmethod(reconnect)  # type: ignore[attr-defined]
        return target

    return apply if cls is None else apply(cls)
