"""What a message is, for every layer: a list of byte frames, never a Python object.

Serializers make frames and transports move them; both name these types from here, so
neither imports the other.
"""

from __future__ import annotations

from typing import TypeAlias

__all__ = ["Buffer", "Frames"]

Buffer: TypeAlias = bytes | bytearray | memoryview
Frames: TypeAlias = list[Buffer]
