"""`@autoreconnect`: an `Skprocess` subclass whose live resources come back by themselves.

    @autoreconnect(**{"psycopg2.Connection": {"*": password}})
    class Job(Skprocess):
        def __init__(self):
            self.db = psycopg2.connect(...)       # travels as a DbReconnector
        def __run__(self):
            self.db.cursor()...                   # a live connection again, in the child

The settings (and so the secrets) stay in this process, in `_settings`, keyed by the
class: the class itself only carries a marker, so pickling it by value (a class defined in
`__main__` or in a function) never writes a password into the bytes. `Skprocess.start()`
hands the settings to the child as a start argument (for the local transport, over the
launcher's private socket); the engine rebuilds the object, then runs cerial's
`reconnect_all` over it in place.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar, overload

__all__ = ["autoreconnect", "settings_for", "reconnect"]

C = TypeVar("C", bound=type)
Settings = tuple[bool, dict[str, Any]]  # (start_threads, auth)

_settings: weakref.WeakKeyDictionary[type, Settings] = weakref.WeakKeyDictionary()


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

        _settings[target] = (start_threads, dict(auth))
        target._sk_autoreconnect = True  # a marker only: no secret travels with the class
        return target

    return apply if cls is None else apply(cls)


def settings_for(cls: type) -> Settings | None:
    """The settings of the nearest decorated class in `cls`'s MRO, or None."""
    for klass in cls.__mro__:
        found = _settings.get(klass)
        if found is not None:
            return found
    return None


def reconnect(obj: Any, settings: Settings) -> None:
    """Reconnect every `Reconnector` in `obj`, in place, with `settings`."""
    from ..serializers.cerial import reconnect_all
    start_threads, auth = settings
    reconnect_all(obj, start_threads=start_threads, **auth)
