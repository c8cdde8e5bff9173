"""Faithful stand-ins for shared containers: `share.d` is a real `dict`.

Why: code that receives a value from a Share hands it to code that knows nothing about
shares (`json.dumps`, `dataclasses.asdict`, `copy.deepcopy`, `pickle`, `isinstance`
checks). So a read of a shared `dict`, `list`, `set`, `bytearray`, `deque`, `OrderedDict`,
`defaultdict`, `Counter` or `array.array` returns an instance of a subclass of that very
type (`SharedDict(dict)`, ...), which

- holds a snapshot of the contents, taken at the read, in its own storage: what C code
  that reads a container's storage directly sees (json's list encoder, `str.join`), and
  what a detached copy (below) starts from;
- forwards every method call and operator (`d.update(...)`, `d[k] = v`, `len(d)`,
  `d == {...}`, `for x in d`) to the authoritative object in the coordinator, as a
  `Proxy` does, and mirrors the mutations into its snapshot;
- copies (`copy.copy`, `copy.deepcopy`) as a plain object of its type, fetched fresh;
- pickles as a reference (another process reconnects to the same object; the snapshot
  travels with it);
- built by the type's own constructor (`type(d)(pairs)`, as `dataclasses.asdict` does),
  is *detached*: a plain container in all but name.

A read that is only the first step of a member access, subscript, `in`, loop or `len()`
(`share.items.append(x)`, `share.d[k] = v`) needs no snapshot and takes none (the caller's
bytecode says so: `_inplace.used_in_place`), so those stay one small message.
"""

from __future__ import annotations

import array
import collections
import contextlib
import copy
import sys
from collections.abc import Callable, Iterator
from typing import Any

from ...errors import ShareError
from ._protocol import (ATTR, AUG, CALL, INPLACE_OPS, ITEM, NO_SNAPSHOT, OP, PIPELINED_METHODS, Path,
                        format_path, type_key)
from ._values import plain

__all__ = ["FAITHFUL_TYPES", "Faithful", "faithful_class", "make_faithful"]

# The containers that get a faithful stand-in, and how to rebuild each as its plain type.
_REBUILD: dict[type, Callable[[Any], Any]] = {
    dict: dict,
    list: list,
    set: set,
    bytearray: bytearray,
    collections.OrderedDict: collections.OrderedDict,
    collections.Counter: collections.Counter,
    collections.defaultdict: lambda d: collections.defaultdict(d.default_factory, d),
    collections.deque: lambda d: collections.deque(d, d.maxlen),
    array.array: lambda a: array.array(a.typecode, a),
}
FAITHFUL_TYPES = frozenset(_REBUILD)

# Methods that change the container: mirrored into the snapshot after the coordinator ran them.
# Mutators that answer with a value: inside a pool task of an exactly_once Share there is
# no answer yet (see core/_task_writes.py). The others return None: held like a write.
_ANSWERED_MUTATORS = frozenset({"pop", "popitem", "popleft", "setdefault"})
_MUTATORS: dict[type, frozenset[str]] = {
    dict: frozenset({"clear", "pop", "popitem", "setdefault", "update"}),
    list: frozenset({"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"}),
    set: frozenset({"add", "discard", "remove", "pop", "clear", "update", "difference_update",
                    "intersection_update", "symmetric_difference_update"}),
    bytearray: frozenset({"append", "extend", "insert", "pop", "remove", "reverse", "clear"}),
    collections.deque: frozenset({"append", "appendleft", "extend", "extendleft", "pop", "popleft",
                                  "remove", "rotate", "clear", "insert", "reverse"}),
    array.array: frozenset({"append", "extend", "insert", "pop", "remove", "reverse", "frombytes",
                            "fromlist", "byteswap"}),
}
for _dict_like in (collections.OrderedDict, collections.Counter, collections.defaultdict):
    _MUTATORS[_dict_like] = _MUTATORS[dict] | {"move_to_end", "subtract"}

# Operators forwarded as the coordinator's OP of the same name (see `_store.OPS`).
_OPERATORS = ("len", "contains", "iter", "reversed", "repr", "str", "bool", "eq", "ne", "lt", "le",
              "gt", "ge", "add", "radd", "sub", "rsub", "mul", "rmul", "or", "ror", "and", "rand",
              "xor", "rxor", "mod", "format")


class Faithful:
    """The behaviour every stand-in adds to its container type (first in its MRO)."""

    __slots__ = ()
    _sk_base: type = object
    _sk_methods: frozenset[str] = frozenset()
    _sk_mutators: frozenset[str] = frozenset()
    _sk_pipelined: frozenset[str] = frozenset()
    # Per instance (in its __dict__); these class values mean "detached".
    _sk_client: Any = None
    _sk_path: Path = ()
    _sk_full = False  # holds a snapshot (else its storage is empty: used in place only)

    def __getattribute__(self, name: str) -> Any:
        if name[0] == "_" or name not in type(self)._sk_methods \
                or object.__getattribute__(self, "_sk_client") is None:
            return object.__getattribute__(self, name)
        return _Method(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_sk_") or self._sk_client is None:
            object.__setattr__(self, name, value)
            return
        from .proxies import assign
        assign(self._sk_client, self._sk_path + ((ATTR, name),), value)
        object.__setattr__(self, name, value)  # e.g. a defaultdict's default_factory

    def __getitem__(self, key: Any) -> Any:
        client = self._sk_client
        if client is None:
            return self._sk_base.__getitem__(self, key)
        if isinstance(key, slice):
            return self._sk_op("getitem", key)  # a slice is a copy, as in plain Python
        from .proxies import read
        return read(client, self._sk_path + ((ITEM, plain(key)),), sys._getframe(1))

    def __setitem__(self, key: Any, value: Any) -> None:
        client = self._sk_client
        if client is None:
            return self._sk_base.__setitem__(self, key, value)
        from .proxies import assign
        key = plain(key)
        pipelined = issubclass(self._sk_base, dict) and _hashable(key)
        assign(client, self._sk_path + ((ITEM, key),), value, pipelined)
        self._sk_mirror("__setitem__", (key, plain(value)), {})

    def __delitem__(self, key: Any) -> None:
        client = self._sk_client
        if client is None:
            return self._sk_base.__delitem__(self, key)
        from ._protocol import DEL
        path = self._sk_path + ((ITEM, plain(key)),)
        client.request(DEL, (path,), ("del", path))
        self._sk_mirror("__delitem__", (plain(key),), {})

    # -- copies, pickling --------------------------------------------------------------------
    def __copy__(self) -> Any:
        if self._sk_client is None:
            return _REBUILD[self._sk_base](self)
        return self._sk_op("copy")  # the coordinator's object, sent here: a fresh copy

    def __deepcopy__(self, memo: dict) -> Any:
        if self._sk_client is None:
            return copy.deepcopy(_REBUILD[self._sk_base](self), memo)
        return self._sk_op("copy")  # deserialized here: already a deep copy

    def __reduce_ex__(self, protocol: int) -> Any:
        if self._sk_client is None:
            return (_REBUILD[self._sk_base], (self._sk_local_copy(),))
        client = self._sk_client
        if client.address is None:
            from ...errors import StateError
            raise StateError("a Share must be started before its objects are passed to another "
                             "process (call share.start())")
        snapshot = self._sk_local_copy() if self._sk_full else None
        return (_faithful_from_token, (client.token(), self._sk_path, type_key(self._sk_base), snapshot))

    def __reduce__(self) -> Any:
        return self.__reduce_ex__(2)

    # -- internals ---------------------------------------------------------------------------
    def _sk_op(self, name: str, *args: Any) -> Any:
        return self._sk_client.request(OP, (self._sk_path, name, args), (f"{name}() on", self._sk_path))

    def _sk_copy(self) -> Any:
        return self._sk_op("copy")

    def _sk_local_copy(self) -> Any:
        """The snapshot as a plain container (no message)."""
        with self._sk_detached():
            return _REBUILD[self._sk_base](self)

    @contextlib.contextmanager
    def _sk_detached(self) -> Iterator[None]:
        state = object.__getattribute__(self, "__dict__")
        client = state.pop("_sk_client", None)
        try:
            yield
        finally:
            if client is not None:
                state["_sk_client"] = client

    def _sk_mirror(self, name: str, args: tuple, kwargs: dict) -> None:
        """Apply a mutation the coordinator made to the snapshot too."""
        if not self._sk_full:
            return
        with self._sk_detached():
            try:
                getattr(self._sk_base, name)(self, *args, **kwargs)
            except Exception:
                pass  # the snapshot was older than the coordinator's object: keep it as it is


class _Method:
    """`share.d.update`: runs on the authoritative object, then on the snapshot."""

    __slots__ = ("owner", "name")

    def __init__(self, owner: Faithful, name: str):
        self.owner = owner
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        owner, name = self.owner, self.name
        client = object.__getattribute__(owner, "_sk_client")
        path = object.__getattribute__(owner, "_sk_path") + ((ATTR, name),)
        cls = type(owner)
        what = ("calling", path)
        if name in cls._sk_pipelined:
            result = client.post(CALL, (path, args, kwargs), what)
        elif name in cls._sk_mutators and client.holds_task_writes():
            if name in _ANSWERED_MUTATORS:
                raise ShareError(
                    f"{name}() on {format_path(path)} inside a pool task: its answer would "
                    f"come from the Share before the task's result is accepted, which an "
                    f"exactly_once Share does not allow (the task's writes are held until "
                    f"then); read the value and assign or `del` it instead")
            result = client.post(CALL, (path, args, kwargs), what)  # held with the result
        else:
            result = client.request(CALL, (path, args, kwargs), what)
        if name in cls._sk_mutators:
            owner._sk_mirror(name, args, kwargs)
        return result

    def __repr__(self) -> str:
        return f"<shared method {self.name} of {type(self.owner).__name__}>"


def _forward(base: type, op: str) -> Callable[..., Any]:
    local = getattr(base, f"__{op}__")

    def method(self: Faithful, *args: Any) -> Any:
        if self._sk_client is None:
            return local(self, *args)
        return self._sk_op(op, *args)
    method.__name__ = f"__{op}__"
    return method


def _forward_iter(base: type, op: str) -> Callable[..., Any]:
    local = getattr(base, f"__{op}__")

    def method(self: Faithful) -> Any:
        if self._sk_client is None:
            return local(self)
        return iter(self._sk_op(op))  # the contents, sent once; iterated here
    method.__name__ = f"__{op}__"
    return method


def _in_place(base: type, op: str) -> Callable[..., Any]:
    local = getattr(base, f"__{op}__")

    def method(self: Faithful, other: Any) -> Any:
        client = self._sk_client
        if client is None:
            return local(self, other)
        path = self._sk_path
        client.request(AUG, (path, op, plain(other)), (op, path))
        self._sk_mirror(f"__{op}__", (plain(other),), {})
        return self  # assigned back to its own path: recognized by `assign` as done
    method.__name__ = f"__{op}__"
    return method


_classes: dict[type, type] = {}


def faithful_class(base: type) -> type:
    """The stand-in class for `base` (one of `FAITHFUL_TYPES`)."""
    found = _classes.get(base)
    if found is not None:
        return found
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__doc__": f"A {base.__name__} read from a Share (see skprocessing.core.share._faithful).",
        "_sk_base": base,
        "_sk_methods": frozenset(n for n in dir(base) if not n.startswith("_")
                                 and callable(getattr(base, n, None))),
        "_sk_mutators": _MUTATORS.get(base, frozenset()),
        "_sk_pipelined": PIPELINED_METHODS.get(type_key(base), frozenset()),
        "__iter__": _forward_iter(base, "iter"),
        "__hash__": None,
    }
    if hasattr(base, "__reversed__"):
        namespace["__reversed__"] = _forward_iter(base, "reversed")
    for op in _OPERATORS:
        if op not in ("iter", "reversed") and hasattr(base, f"__{op}__"):
            namespace[f"__{op}__"] = _forward(base, op)
    for op in INPLACE_OPS:
        if hasattr(base, f"__{op}__"):
            namespace[f"__{op}__"] = _in_place(base, op)
    cls = type(f"Shared{base.__name__[0].upper()}{base.__name__[1:]}", (Faithful, base), namespace)
    globals()[cls.__name__] = cls  # importable by name: a detached one pickles anywhere
    _classes[base] = cls
    return cls


def make_faithful(client: Any, path: Path, base: type, snapshot: Any) -> Faithful:
    """A stand-in for the `base` object at `path`, filled with `snapshot` (or empty)."""
    cls = faithful_class(base)
    if base is array.array:
        typecode = snapshot.typecode if snapshot is not None else "b"
        obj = array.array.__new__(cls, typecode, snapshot if snapshot is not None else ())
    else:
        obj = base.__new__(cls)
        if snapshot is not None:
            _fill(obj, base, snapshot)
    state = object.__getattribute__(obj, "__dict__")
    state["_sk_path"] = path
    state["_sk_full"] = snapshot is not None
    state["_sk_client"] = client
    return obj


def _fill(obj: Any, base: type, snapshot: Any) -> None:
    """Put `snapshot` in `obj`'s own storage with the base type's C methods (ours forward)."""
    if base is collections.OrderedDict:
        for key, value in snapshot.items():
            collections.OrderedDict.__setitem__(obj, key, value)
    elif issubclass(base, dict):
        dict.update(obj, snapshot)
        if base is collections.defaultdict:
            object.__setattr__(obj, "default_factory", snapshot.default_factory)
    elif base is collections.deque:
        collections.deque.__init__(obj, snapshot, snapshot.maxlen)
    else:
        base.__init__(obj, snapshot)


def _faithful_from_token(token: tuple, path: Path, key: str, snapshot: Any) -> Any:
    """Unpickling a stand-in: the object itself where its store is, else a stand-in."""
    from ._client import client_from_token
    from ._store import resolve_in_process
    found, obj = resolve_in_process(token[0], path)
    if found:
        return obj
    return make_faithful(client_from_token(token), path, _BY_KEY[key], snapshot)


def base_for(key: str) -> type | None:
    """The container type a `Ref`'s type key names, when it gets a stand-in."""
    return _BY_KEY.get(key)


_BY_KEY = {type_key(b): b for b in FAITHFUL_TYPES}


def _hashable(key: Any) -> bool:
    try:
        hash(key)
        return True
    except TypeError:
        return False


__all__ += ["base_for", "NO_SNAPSHOT"]
