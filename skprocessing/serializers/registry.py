"""Names to serializers. Choice order: an explicit object, a name, $SKPROCESSING_SERIALIZER,
then the default (cerial)."""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from typing import Any

from .base import FunctionSerializer, Serializer

__all__ = ["register_serializer", "get_serializer", "available_serializers", "is_builtin",
           "DEFAULT", "ENV_VAR"]

DEFAULT = "cerial"
ENV_VAR = "SKPROCESSING_SERIALIZER"

# Built-in plugins are imported lazily, so an unused one costs nothing (and msgpack's
# absence would only matter to those who ask for it).
_BUILTIN: dict[str, str] = {
    "cerial": "skprocessing.serializers.cerial:CerialSerializer",
    "msgpack": "skprocessing.serializers.msgpack:MsgpackSerializer",
    "cloudpickle": "skprocessing.serializers.cloudpickle:CloudpickleSerializer",
    "pickle": "skprocessing.serializers.pickle:PickleSerializer",
}
_registry: dict[str, Serializer] = {}
_lock = threading.Lock()


def register_serializer(name_or_serializer: str | Serializer | Any,
                        dumps: Callable[[Any], bytes] | None = None,
                        loads: Callable[[bytes], Any] | None = None, *,
                        name: str | None = None) -> Serializer:
    """Register a serializer and return it.

    `register_serializer("json", json_dumps, json_loads)` wraps two functions;
    `register_serializer(obj)` takes a `Serializer` or any object (or class) with
    `dumps`/`loads`, named by its `name` attribute or the `name=` argument.
    """
    if isinstance(name_or_serializer, str):
        if dumps is None or loads is None:
            raise TypeError("register_serializer(name, dumps, loads) needs both functions")
        serializer: Serializer = FunctionSerializer(name_or_serializer, dumps, loads)
    else:
        serializer = _adapt(name_or_serializer, name)
    if not serializer.name:
        raise ValueError(f"serializer {serializer!r} has no name: pass name=...")
    with _lock:
        _registry[serializer.name] = serializer
    return serializer


def _adapt(obj: Any, name: str | None) -> Serializer:
    if isinstance(obj, type):
        obj = obj()
    if isinstance(obj, Serializer):
        if name:
            obj.name = name
        return obj
    if not (callable(getattr(obj, "dumps", None)) and callable(getattr(obj, "loads", None))):
        raise TypeError(f"{obj!r} is not a serializer: it needs dumps(obj) and loads(data)")
    return FunctionSerializer(name or getattr(obj, "name", "") or type(obj).__name__.lower(),
                              obj.dumps, obj.loads)


def get_serializer(spec: str | Serializer | Any | None = None) -> Serializer:
    """The serializer for `spec`: an object, a registered name, or None for the default
    (`$SKPROCESSING_SERIALIZER`, else cerial). Raises `ValueError` for an unknown name,
    listing the known ones."""
    if spec is None:
        spec = os.environ.get(ENV_VAR) or DEFAULT
    if not isinstance(spec, str):
        return spec if isinstance(spec, Serializer) else _adapt(spec, None)
    with _lock:
        found = _registry.get(spec)
    if found is not None:
        return found
    if spec in _BUILTIN:
        module, _, cls = _BUILTIN[spec].partition(":")
        return register_serializer(getattr(importlib.import_module(module), cls)())
    raise ValueError(f"unknown serializer {spec!r}; known: {', '.join(available_serializers())}")


def available_serializers() -> list[str]:
    with _lock:
        return sorted(set(_BUILTIN) | set(_registry))


def is_builtin(name: str) -> bool:
    """True for plugins every process can load by name alone."""
    return name in _BUILTIN
