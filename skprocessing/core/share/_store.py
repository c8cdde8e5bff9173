"""The authoritative objects of one Share, and the operations on them.

Used by the coordinator process (the running Share) and, in the owner's process, by a
stopped Share (so queued changes go through exactly the same code). Not thread-safe: its
one caller applies operations in one order.
"""

from __future__ import annotations

import collections.abc as abc
import operator
import types
from collections.abc import Callable
from typing import Any

from ._protocol import ATTR, Path

__all__ = ["Store", "register_store", "unregister_store", "resolve_in_process"]

# Results that are lazy views of the authoritative object are sent back as lists.
_LAZY = (abc.KeysView, abc.ValuesView, abc.ItemsView, types.GeneratorType, map, filter, zip,
         enumerate, reversed, type(iter([])), type(iter(())), type(iter({})), type(iter(set())),
         type(iter(range(0))), type(iter("")))


def _reflected(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda obj, other: fn(other, obj)


# Operations a proxy forwards (`len(proxy)`, `proxy == x`, `proxy + x`, ...), by wire name.
OPS: dict[str, Callable[..., Any]] = {
    "len": len, "contains": operator.contains, "iter": list, "repr": repr, "str": str,
    "bool": bool, "hash": hash, "format": format, "int": int, "float": float,
    "complex": complex, "index": operator.index, "getitem": operator.getitem,
    "copy": lambda obj: obj,
    "reversed": lambda obj: list(reversed(obj)), "dir": lambda obj: sorted(dir(obj)),
    "neg": operator.neg, "pos": operator.pos, "abs": abs, "invert": operator.invert,
}
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    OPS[_name] = getattr(operator, _name)
for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor",
              "lshift", "rshift", "matmul"):
    _fn = getattr(operator, _name + "_" if _name in ("and", "or") else _name)
    OPS[_name] = _fn
    OPS["r" + _name] = _reflected(_fn)


class Store:
    """The root namespace (`share.<name>`) and path-addressed operations on it.

    `epoch` changes whenever a root name is deleted or rebound to another type, so clients
    know when their cache of "this name holds a list" may be stale.
    """

    def __init__(self) -> None:
        self.root: dict[str, Any] = {}
        self.epoch = 0

    # -- paths -------------------------------------------------------------------------------
    def get(self, path: Path) -> Any:
        try:
            obj = self.root[path[0]]
        except KeyError:
            raise AttributeError(f"share has no attribute {path[0]!r}") from None
        for kind, key in path[1:]:
            obj = getattr(obj, key) if kind == ATTR else obj[key]
        return obj

    def set(self, path: Path, value: Any) -> None:
        if len(path) == 1:
            old = self.root.get(path[0], _MISSING)
            if type(old) is not type(value):
                self.epoch += 1
            self.root[path[0]] = value
            return
        parent = self.get(path[:-1])
        kind, key = path[-1]
        if kind == ATTR:
            setattr(parent, key, value)
        else:
            parent[key] = value

    def delete(self, path: Path) -> None:
        if len(path) == 1:
            if path[0] not in self.root:
                raise AttributeError(f"share has no attribute {path[0]!r}")
            del self.root[path[0]]
            self.epoch += 1
            return
        parent = self.get(path[:-1])
        kind, key = path[-1]
        if kind == ATTR:
            delattr(parent, key)
        else:
            del parent[key]

    # -- operations --------------------------------------------------------------------------
    def call(self, path: Path, args: tuple, kwargs: dict) -> Any:
        result = self.get(path)(*args, **kwargs)
        return list(result) if isinstance(result, _LAZY) else result

    def aug(self, path: Path, op: str, operand: Any) -> None:
        """`path op= operand` as one step (no other operation can come in between)."""
        self.set(path, getattr(operator, op)(self.get(path), operand))

    def op(self, path: Path, name: str, args: tuple) -> Any:
        return OPS[name](self.get(path), *args)

    def names(self) -> list[str]:
        return sorted(self.root)

    def clear(self) -> None:
        self.root.clear()
        self.epoch += 1

    def snapshot(self, dumps: Callable[[Any], list]
                 ) -> tuple[dict[str, list[bytes]], dict[str, str]]:
        """Each root object as serialized frames, and why any that failed did."""
        saved, failed = {}, {}
        for name, obj in self.root.items():
            try:
                saved[name] = [bytes(f) for f in dumps(obj)]
            except Exception as exc:
                failed[name] = f"{type(exc).__name__}: {exc}"
        return saved, failed

    def load(self, saved: dict[str, list[bytes]], loads: Callable[[list], Any]) -> None:
        for name, frames in saved.items():
            self.root[name] = loads(frames)
        self.epoch += 1

    def reconnect_all(self, reconnect: Callable[..., Any], start_threads: bool,
                      auth: dict[str, Any]) -> list[str]:
        """Replace reconnectors in every root object with live resources; the names done."""
        done = []
        for name, obj in list(self.root.items()):
            self.root[name] = reconnect(obj, start_threads=start_threads, **auth)
            done.append(name)
        return done


_MISSING = object()

# The stores this process holds, by share key: a proxy that arrives here inside a value
# stands for the object itself (so `share.a = share.b` aliases, as plain Python would).
_stores: dict[str, Store] = {}


def register_store(key: str, store: Store) -> None:
    _stores[key] = store


def unregister_store(key: str, store: Store) -> None:
    if _stores.get(key) is store:
        del _stores[key]


def forget_stores() -> None:
    """In a forked child: the parent's stores are copies, not the authority."""
    _stores.clear()


def resolve_in_process(key: str, path: Path) -> tuple[bool, Any]:
    """(True, the object) when this process holds the store of share `key`."""
    store = _stores.get(key)
    if store is None:
        return False, None
    return True, store.get(path)
