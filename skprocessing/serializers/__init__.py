"""Serializers: the plugin interface, the registry, and the built-in plugins."""

from ..errors import DeserializationError, SerializationError
from .base import FunctionSerializer, Serializer
from .codec import Codec
from .registry import available_serializers, get_serializer, register_serializer

__all__ = ["Serializer", "FunctionSerializer", "Codec", "register_serializer", "get_serializer",
           "available_serializers", "SerializationError", "DeserializationError"]
