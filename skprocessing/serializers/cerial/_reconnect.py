"""`reconnect_all`: replace every `Reconnector` inside an object with its live resource.

Walks lists, tuples, sets, dict values, instance `__dict__`s and slots, in place (a
tuple that held a placeholder is rebuilt and put back where it was). A placeholder that
appears twice is reconnected once, so shared references stay shared. Credentials come
from `auth`, keyed by type then attribute name:

    reconnect_all(job, **{"psycopg2.Connection": {"*": "default-pw", "analytics": "other"}})
"""

from __future__ import annotations

import logging
import threading
import types
from typing import Any

from .reconnectors import Reconnector, ThreadReconnector

__all__ = ["reconnect_all"]

_LEAVES = (str, bytes, bytearray, int, float, complex, bool, type(None), type,
           types.ModuleType, types.FunctionType, types.BuiltinFunctionType, memoryview,
           logging.Logger, threading.Thread)


class _Walk:
    def __init__(self, start_threads: bool, auth: dict[str, Any]):
        self.start_threads = start_threads
        self.auth = auth
        self.visited: set[int] = set()
        self.replaced: dict[int, Any] = {}
        self.threads: list[threading.Thread] = []

    def credential(self, placeholder: Reconnector, attr: str | None) -> Any:
        for key in placeholder.auth_keys:
            if key not in self.auth:
                continue
            by_attr = self.auth[key]
            if not isinstance(by_attr, dict):
                return by_attr
            if attr is not None and attr in by_attr:
                return by_attr[attr]
            return by_attr.get("*")
        return None

    def reconnect(self, placeholder: Reconnector, attr: str | None) -> Any:
        key = id(placeholder)
        if key in self.replaced:
            return self.replaced[key]
        live = placeholder._live
        if live is None:
            credential = self.credential(placeholder, attr)
            try:
                live = (placeholder.reconnect() if credential is None
                        else placeholder.reconnect(auth=credential))
            except Exception as exc:
                # Left in place, saying why: the caller can look, fix and retry.
                placeholder.reconnect_error = f"{type(exc).__name__}: {exc}"
                live = placeholder
        if isinstance(placeholder, ThreadReconnector) and live is not placeholder:
            self.threads.append(live)
        self.replaced[key] = live
        return live

    def visit(self, item: Any, attr: str | None) -> Any:
        """The value to put where `item` was (itself, or a live replacement)."""
        if isinstance(item, Reconnector):
            return self.reconnect(item, attr)
        if isinstance(item, _LEAVES) or id(item) in self.visited:
            return item
        self.visited.add(id(item))
        if isinstance(item, list):
            for index, value in enumerate(item):
                item[index] = self.visit(value, attr)
        elif isinstance(item, dict):
            for key, value in list(item.items()):
                new = self.visit(value, key if isinstance(key, str) else attr)
                if new is not value:
                    item[key] = new
        elif isinstance(item, tuple):
            new_items = tuple(self.visit(value, attr) for value in item)
            if any(a is not b for a, b in zip(new_items, item)):
                return type(item)(*new_items) if hasattr(item, "_fields") else type(item)(new_items)
        elif isinstance(item, set):
            for value in list(item):
                new = self.visit(value, attr)
                if new is not value:
                    item.discard(value)
                    item.add(new)
        else:
            self.visit_attributes(item)
        return item

    def visit_attributes(self, obj: Any) -> None:
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict):
            for name, value in list(state.items()):
                new = self.visit(value, name)
                if new is not value:
                    state[name] = new
        for cls in type(obj).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if name in ("__dict__", "__weakref__") or not hasattr(obj, name):
                    continue
                value = getattr(obj, name)
                new = self.visit(value, name)
                if new is not value:
                    setattr(obj, name, new)


def reconnect_all(obj: Any, *, start_threads: bool = False, **auth: Any) -> Any:
    """Replace every `Reconnector` inside `obj` (in place) and return `obj` (or, if `obj`
    is itself a placeholder, its live resource).

    `auth` maps a type key (`"sqlite3.Connection"`, `"psycopg2.Connection"`,
    `"redis.Redis"`, or the exact dotted type name) to `{"*": default, "attr": override}`.
    `start_threads=True` starts every thread rebuilt from a `ThreadReconnector`. Never
    raises for a placeholder that cannot reconnect: it stays, with `reconnect_error` set.
    """
    walk = _Walk(start_threads, auth)
    result = walk.visit(obj, None)
    if start_threads:
        for thread in walk.threads:
            if not thread.is_alive() and thread.ident is None:
                thread.start()
    return result
