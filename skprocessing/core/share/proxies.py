"""Proxies: shared objects that feel local.

`share.results` (a list, a dict, a logger, a user object, ...) is a `Proxy`: a client and
a path, nothing copied. Each use is one operation in the coordinator, on the one
authoritative object:

    share.results.append(x)      CALL   (pipelined for a few never-failing methods)
    share.cfg.retries = 3        SET    share.d["k"]        GET (value, or a nested proxy)
    len(p), x in p, p == y       OP     for x in p          OP iter (a snapshot list)
    p += [1]                     AUG    (in the coordinator, in one step)

Method names of the object's type arrive with the first read of that type, so
`share.results.append` costs no round trip. Reads of immutable values come back as
copies (see `_values.mark`); reads of plain containers (dict, list, set, deque, ...) as
faithful stand-ins of their own type (`_faithful.py`). A proxy of an object of another
type says it is of that type (`__class__`, so `isinstance(share.model, Model)` holds),
and `copy.copy`/`copy.deepcopy` of it give a real copy of the object. A proxy pickles as
(share, path): in another process it reconnects; in the coordinator it stands for the
object itself.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from ...errors import SerializationError, StateError
from ..timers import Stopwatch
from ._client import Client, client_from_token
from ._faithful import Faithful, _hashable, base_for, make_faithful
from ._inplace import InPlaceTarget, in_place_target, used_in_place
from ._protocol import (ATTR, AUG, CALL, DEL, GET, INPLACE_OPS, ITEM, NO_SNAPSHOT, OP,
                        PIPELINED_METHODS, SET, Path, Ref, format_path)
from ._store import resolve_in_process
from ._values import in_place_of, mark, plain
from ._waiting import waiting_method

__all__ = ["Proxy", "TypeInfo", "wrap", "assign", "read"]


class TypeInfo:
    """What a client knows about a shared object's type: its callables, the pipelined ones,
    and the class itself when this process has it (for `Proxy.__class__`)."""

    __slots__ = ("key", "methods", "pipelined", "_cls")

    def __init__(self, key: str, methods: frozenset[str]):
        self.key = key
        self.methods = methods
        self.pipelined = PIPELINED_METHODS.get(key, frozenset())
        self._cls: type | None | bool = False  # False: not looked up yet

    @property
    def cls(self) -> type | None:
        """The class the key names, if a module of this process defines it (never imported
        for this: a class this process does not have is not needed to use the proxy)."""
        if self._cls is False:
            self._cls = _find_class(self.key)
        return self._cls

    def __reduce__(self):
        return (TypeInfo, (self.key, self.methods))


class Proxy:
    """Stands for the object at `share.<path>` in the coordinator; see the module docstring."""

    __slots__ = ("_sk_client", "_sk_path", "_sk_info")

    def __init__(self, client: Client, path: Path, info: TypeInfo | None):
        object.__setattr__(self, "_sk_client", client)
        object.__setattr__(self, "_sk_path", path)
        object.__setattr__(self, "_sk_info", info)

    def _sk_op(self, name: str, *args: Any) -> Any:
        return self._sk_client.request(OP, (self._sk_path, name, args),
                                       (f"{name}() on", self._sk_path))

    # -- attributes and items ----------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_sk_"):
            raise AttributeError(name)
        path = self._sk_path + ((ATTR, name),)
        info = self._sk_info
        if info is not None and name in info.methods:
            waiting = waiting_method(info.key, name)
            if waiting is not None:  # a method that may block: waited for here (_waiting.py)
                return WaitingMethod(self._sk_client, path, waiting)
            return MethodProxy(self._sk_client, path, name in info.pipelined)
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # protocol probes (copy, pickle, ...) are not remote
        frame = sys._getframe(1)
        target = in_place_target(frame, name, self._sk_client, path)
        return target if target is not None else read(self._sk_client, path, frame)

    def __setattr__(self, name: str, value: Any) -> None:
        assign(self._sk_client, self._sk_path + ((ATTR, name),), value)

    def __delattr__(self, name: str) -> None:
        path = self._sk_path + ((ATTR, name),)
        self._sk_client.request(DEL, (path,), ("del", path))

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return self._sk_op("getitem", key)  # a slice is a copy, as in plain Python
        return read(self._sk_client, self._sk_path + ((ITEM, plain(key)),), sys._getframe(1))

    def __setitem__(self, key: Any, value: Any) -> None:
        key = plain(key)
        info = self._sk_info
        # A dict never refuses a hashable key, so that assignment need not wait.
        pipelined = info is not None and info.key == "builtins.dict" and _hashable(key)
        assign(self._sk_client, self._sk_path + ((ITEM, key),), value, pipelined)

    def __delitem__(self, key: Any) -> None:
        path = self._sk_path + ((ITEM, plain(key)),)
        self._sk_client.request(DEL, (path,), ("del", path))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._sk_client.request(CALL, (self._sk_path, args, kwargs),
                                       ("calling", self._sk_path))

    # -- containers --------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._sk_op("len")

    def __contains__(self, item: Any) -> bool:
        return self._sk_op("contains", item)

    def __iter__(self) -> Any:
        return iter(self._sk_op("iter"))

    def __reversed__(self) -> Any:
        return iter(self._sk_op("reversed"))

    def __dir__(self) -> list[str]:
        return self._sk_op("dir")

    def __format__(self, spec: str) -> str:
        return self._sk_op("format", spec)

    def __reduce__(self):
        if self._sk_client.address is None:
            raise StateError("a Share must be started before its objects are passed to another "
                             "process (call share.start())")
        return (_proxy_from_token, (self._sk_client.token(), self._sk_path, self._sk_info))

    def _sk_copy(self) -> Any:
        """A copy of the whole object (one transfer)."""
        return self._sk_op("copy")

    # -- standing in for the object ----------------------------------------------------------
    @property
    def __class__(self) -> type:  # type: ignore[override]
        info = self._sk_info
        cls = info.cls if info is not None else None
        return cls if cls is not None else type(self)

    def __copy__(self) -> Any:
        return self._sk_op("copy")

    def __deepcopy__(self, memo: dict) -> Any:
        return self._sk_op("copy")  # deserialized here: already a deep copy


def _forward(name: str) -> Any:
    def method(self: Proxy, *args: Any) -> Any:
        return self._sk_op(name, *args)
    method.__name__ = f"__{name}__"
    return method


def _in_place(op: str) -> Any:
    def method(self: Proxy, other: Any) -> Proxy:
        path = self._sk_path
        self._sk_client.request(AUG, (path, op, plain(other)), (op, path))
        return self  # assigned back to its own path: recognized by `assign` as done
    method.__name__ = f"__{op}__"
    return method


for _name in ("repr", "str", "bool", "hash", "int", "float", "complex", "index", "eq", "ne",
              "lt", "le", "gt", "ge", "neg", "pos", "abs", "invert", "add", "sub", "mul",
              "truediv", "floordiv", "mod", "pow", "and", "or", "xor", "lshift", "rshift",
              "matmul", "radd", "rsub", "rmul", "rtruediv", "rfloordiv", "rmod", "rpow", "rand",
              "ror", "rxor", "rlshift", "rrshift", "rmatmul"):
    setattr(Proxy, f"__{_name}__", _forward(_name))
for _op in INPLACE_OPS:
    setattr(Proxy, f"__{_op}__", _in_place(_op))


class MethodProxy(Proxy):
    """`proxy.method`: calling it runs the method on the authoritative object."""

    __slots__ = ("_sk_pipelined",)

    def __init__(self, client: Client, path: Path, pipelined: bool):
        super().__init__(client, path, None)
        object.__setattr__(self, "_sk_pipelined", pipelined)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        what = ("calling", self._sk_path)
        if self._sk_pipelined:
            return self._sk_client.post(CALL, (self._sk_path, args, kwargs), what)
        return self._sk_client.request(CALL, (self._sk_path, args, kwargs), what)


class WaitingMethod(Proxy):
    """`proxy.get` of a shared queue (and the like): its non-blocking form, retried here."""

    __slots__ = ("_sk_wait",)

    def __init__(self, client: Client, path: Path, wait: Any):
        super().__init__(client, path, None)
        object.__setattr__(self, "_sk_wait", wait)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        client, owner = self._sk_client, self._sk_path[:-1]

        def call(name: str, call_args: tuple, call_kwargs: dict) -> Any:
            path = owner + ((ATTR, name),)
            return client.request(CALL, (path, call_args, call_kwargs), ("calling", path))
        return self._sk_wait(call, args, kwargs)


_timer_starts: dict[tuple, float] = {}


class TimerProxy(Stopwatch, Proxy):
    """A shared `Sktimer`: start/stop are measured here, and the time is added there (the
    forwarded `add_time`), so workers timing at once never overwrite each other's start."""

    __slots__ = ()

    def _starts(self) -> dict[tuple, float]:
        return _timer_starts

    def _start_key(self) -> tuple:
        return (self._sk_client.key, self._sk_path, threading.get_ident())


_PROXY_CLASSES: dict[str, type[Proxy]] = {"skprocessing.core.timers.Sktimer": TimerProxy}


def wrap(client: Client, path: Path, answer: Any) -> Any:
    """A read's answer as the caller sees it: a marked value, a faithful stand-in of a
    plain container, or a proxy."""
    if type(answer) is not Ref:
        return mark(answer, client, path)
    info = client.types.get(answer.key)
    if info is None or answer.methods is not None:
        info = client.types[answer.key] = TypeInfo(answer.key, answer.methods or frozenset())
    base = base_for(answer.key)
    if base is not None:
        snapshot = None if answer.value is NO_SNAPSHOT else answer.value
        proxy = make_faithful(client, path, base, snapshot)
        if snapshot is not None:
            return proxy  # a snapshot is of this read: never reused
    else:
        proxy = _PROXY_CLASSES.get(answer.key, Proxy)(client, path, info)
    if len(path) == 1:
        client.roots[path[0]] = proxy  # the next `share.name` needs no round trip
    return proxy


def read(client: Client, path: Path, frame: Any = None) -> Any:
    """The object at `path`. `frame`: the caller's, whose next instruction says whether a
    container read needs a snapshot of its contents (`_inplace.used_in_place`)."""
    request = (path,) if used_in_place(frame) else (path, True)
    return wrap(client, path, client.request(GET, request, ("reading", path)))


def cached_root(client: Client, name: str, frame: Any) -> Any:
    """The proxy `share.name` last gave, when it may be given again for this use."""
    proxy = client.roots.get(name)
    if proxy is None or (isinstance(proxy, Faithful) and not used_in_place(frame)):
        return None
    return proxy


def assign(client: Client, path: Path, value: Any, pipelined: bool = False) -> None:
    """`<path> = value`, where `share.x += 1` becomes one atomic `+= 1` in the coordinator."""
    if type(value) is memoryview:
        raise TypeError(f"cannot assign {format_path(path)}: a memoryview is a view of this "
                        f"process's memory and cannot be shared; assign bytes(view), or "
                        f"bytearray(view) for a buffer that changes")
    if isinstance(value, (Proxy, Faithful, InPlaceTarget)) and _same(value, client, path):
        return  # `share.x op= y` already happened, in place, in the coordinator
    if isinstance(value, (Proxy, Faithful)) and value._sk_client is not None:
        if value._sk_client is not client:
            value = value._sk_copy()  # from another Share: copy it over
        # (a proxy of this share travels as itself: the coordinator aliases the object)
    else:
        op = in_place_of(value, client, path)
        if op is not None:
            client.post(AUG, (path, *op), (op[0], path))
            return
        value = plain(value)
    if len(path) == 1:
        client.roots.pop(path[0], None)
    what = ("assigning", path)
    try:
        if pipelined:
            client.post(SET, (path, value), what)
        else:
            client.request(SET, (path, value), what)
    except SerializationError as exc:
        raise _unserializable(client, path, value, exc) from None


def _unserializable(client: Client, path: Path, value: Any,
                    exc: SerializationError) -> SerializationError:
    """The error naming the failing part from the assigned value down: `share.x -> conn`."""
    try:
        client.codec.serializer.dumps(value)  # again, alone: the error's path starts at it
    except SerializationError as alone:
        exc = alone
    where = format_path(path)
    below, name = exc.path or "", type(value).__name__
    full = where + below[len(name):] if below.startswith(name) else f"{where} -> {below}"
    return SerializationError(f"cannot assign {where}: {exc}", path=full, type_name=exc.type_name)


def _same(value: Proxy | Faithful | InPlaceTarget, client: Client, path: Path) -> bool:
    if isinstance(value, (Proxy, Faithful)):
        return value._sk_client is client and value._sk_path == path
    return value.client is client and value.path == path


def _find_class(key: str) -> type | None:
    """The class named `module.qualname` among the modules already loaded here."""
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        obj: Any = module
        for name in parts[cut:]:
            obj = getattr(obj, name, None)
            if obj is None:
                return None
        return obj if isinstance(obj, type) else None
    return None


def _proxy_from_token(token: tuple, path: Path, info: TypeInfo | None) -> Any:
    found, obj = resolve_in_process(token[0], path)
    if found:
        return obj
    client = client_from_token(token)
    return _PROXY_CLASSES.get(info.key if info else "", Proxy)(client, path, info)
