"""Serializers: the plugin interface, the registry, and the built-in plugins.

    cerial        the default: cloudpickle + live resources (`serializers.cerial`)
    cloudpickle   lambdas, closures and local classes by value
    pickle        the stdlib pickler, protocol 5
    msgpack       plain data only

Each makes frames `[header, *out-of-band buffers]`; `Codec` puts the serializer's name
in every message and refuses names the receiver does not accept.
"""

from ..errors import DeserializationError, SerializationError
from .base import FunctionSerializer, Serializer
from .codec import Codec
from .registry import (DEFAULT, ENV_VAR, available_serializers, get_serializer, is_builtin,
                       register_serializer)

__all__ = ["Serializer", "FunctionSerializer", "Codec", "register_serializer", "get_serializer",
           "available_serializers", "is_builtin", "DEFAULT", "ENV_VAR", "SerializationError",
           "DeserializationError", "cerial", "serialize", "deserialize", "reconnect_all",
           "Reconnector"]


def __getattr__(name: str):
    # The cerial API is loaded on first use, so importing the package stays light.
    if name in ("cerial", "serialize", "deserialize", "reconnect_all", "Reconnector"):
        import importlib
        cerial = importlib.import_module(f"{__name__}.cerial")
        return cerial if name == "cerial" else getattr(cerial, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
