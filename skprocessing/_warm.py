"""What a process launcher imports once, before it forks children, so that no child pays
for it again: the package (the core, the default backend) and the default serializers."""

from __future__ import annotations

import os

__all__ = ["warm"]


def warm() -> None:
    import skprocessing  # noqa: F401  (the package and everything it imports)
    from .serializers.registry import DEFAULT, get_serializer
    for name in {DEFAULT, os.environ.get("SKPROCESSING_SERIALIZER") or DEFAULT, "pickle"}:
        try:
            get_serializer(name)
        except ValueError:
            pass  # an unknown name fails where it is used, with the registry's message
