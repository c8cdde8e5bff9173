"""Transports: the abstract interface, the registry, and the backends.

A transport is chosen by an object, a URL or name (`"local"`, `"local://"`,
`"tcp://host:port"`, `"ray"`, `"dask://host:8786"`), an engine's client object (a
`distributed.Client`), the `SKPROCESSING_TRANSPORT` environment variable, or the default
(local). Backends are registered as `"module:Class"` strings and imported on first use, so
nothing here imports an engine (Ray, Dask) before a caller names it.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable

from . import local as _local  # noqa: F401  (the default backend: every user needs it)
from .base import Channel, Listener, ProcessHandle, SharedInt, Transport

__all__ = ["Transport", "Channel", "SharedInt", "Listener", "ProcessHandle",
           "register_transport", "register_transport_type", "get_transport",
           "available_transports", "ENV_VAR"]

ENV_VAR = "SKPROCESSING_TRANSPORT"

_LOCAL = "skprocessing.transports.local:LocalTransport"
_schemes: dict[str, str | Callable[[str], Transport]] = {
    "local": _LOCAL,
    "memory": "skprocessing.transports.memory:MemoryTransport",
    "zmq": "skprocessing.transports.zmq:ZmqTransport",
    "tcp": "skprocessing.transports.zmq:ZmqTransport",
    "ipc": "skprocessing.transports.zmq:ZmqTransport",
    "inproc": "skprocessing.transports.zmq:ZmqTransport",
    # Cluster engines place the workers; our ZeroMQ transport carries the work.
    "ray": "skprocessing.engines.ray:RayTransport",
    "dask": "skprocessing.engines.dask:DaskTransport",
}
# Objects that stand for a transport, by the dotted name of their class (or a base class),
# so an engine's client is recognised without importing the engine to test isinstance.
_types: dict[str, str | Callable[[object], Transport]] = {
    "distributed.client.Client": "skprocessing.engines.dask:DaskTransport",
}
_default: Transport | None = None
_lock = threading.Lock()


def register_transport(scheme: str, factory: str | Callable[[str], Transport]) -> None:
    """Map a URL scheme to a backend: a `"module:Class"` string or a callable taking the URL."""
    with _lock:
        _schemes[scheme] = factory


def register_transport_type(type_name: str, factory: str | Callable[[object], Transport]) -> None:
    """Map objects of the class `type_name` ("module.QualName", base classes count) to a
    backend: a `"module:Class"` string or a callable, either taking the object."""
    with _lock:
        _types[type_name] = factory


def available_transports() -> list[str]:
    with _lock:
        return sorted(_schemes)


def get_transport(spec: str | Transport | object | None = None) -> Transport:
    """The transport for `spec`; the shared default local transport when None."""
    global _default
    if isinstance(spec, Transport):
        return spec
    if spec is not None and not isinstance(spec, str):
        return _load(_type_factory(spec))(spec)
    spec = spec or os.environ.get(ENV_VAR) or "local://"
    scheme = spec.split("://", 1)[0]
    with _lock:
        factory = _schemes.get(scheme)
        if spec in ("local", "local://") and factory == _LOCAL:
            # The built-in default is one shared instance (one launcher per process).
            if _default is None:
                from .local import LocalTransport
                _default = LocalTransport()
            return _default
    if factory is None:
        raise ValueError(f"unknown transport {spec!r}; known schemes: {', '.join(available_transports())}")
    return _load(factory)(spec)


def _type_factory(obj: object) -> str | Callable[[object], Transport]:
    with _lock:
        for cls in type(obj).__mro__:
            factory = _types.get(f"{cls.__module__}.{cls.__qualname__}")
            if factory is not None:
                return factory
    raise TypeError(f"transport= takes a Transport, a URL or name, or an engine's client "
                    f"({', '.join(sorted(_types))}); got {type(obj).__name__} {obj!r}")


def _load(factory: str | Callable[..., Transport]) -> Callable[..., Transport]:
    if isinstance(factory, str):
        module, _, name = factory.partition(":")
        return getattr(importlib.import_module(module), name)
    return factory
