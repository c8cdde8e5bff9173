"""Transports: the abstract interface, the registry, and the backends.

A transport is chosen by an object, a URL or name (`"local"`, `"local://"`,
`"tcp://host:port"`), the `SKPROCESSING_TRANSPORT` environment variable, or the default
(local). Backends are registered as `"module:Class"` strings and imported on first use.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable

from . import local as _local  # noqa: F401  (the default backend: every user needs it)
from .base import Channel, Listener, ProcessHandle, SharedInt, Transport

__all__ = ["Transport", "Channel", "SharedInt", "Listener", "ProcessHandle",
           "register_transport", "get_transport", "available_transports", "ENV_VAR"]

ENV_VAR = "SKPROCESSING_TRANSPORT"

_LOCAL = "skprocessing.transports.local:LocalTransport"
_schemes: dict[str, str | Callable[[str], Transport]] = {
    "local": _LOCAL,
    "memory": "skprocessing.transports.memory:MemoryTransport",
    "zmq": "skprocessing.transports.zmq:ZmqTransport",
    "tcp": "skprocessing.transports.zmq:ZmqTransport",
    "ipc": "skprocessing.transports.zmq:ZmqTransport",
    "inproc": "skprocessing.transports.zmq:ZmqTransport",
}
_default: Transport | None = None
_lock = threading.Lock()


def register_transport(scheme: str, factory: str | Callable[[str], Transport]) -> None:
    """Map a URL scheme to a backend: a `"module:Class"` string or a callable taking the URL."""
    with _lock:
        _schemes[scheme] = factory


def available_transports() -> list[str]:
    with _lock:
        return sorted(_schemes)


def get_transport(spec: str | Transport | None = None) -> Transport:
    """The transport for `spec`; the shared default local transport when None."""
    global _default
    if isinstance(spec, Transport):
        return spec
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
    if isinstance(factory, str):
        module, _, name = factory.partition(":")
        factory = getattr(importlib.import_module(module), name)
    return factory(spec)
