"""The `cloudpickle` plugin: lambdas, closures and local classes by value, protocol 5 frames."""

from __future__ import annotations

import cloudpickle as _cloudpickle

from .pickle import PickleSerializer

__all__ = ["CloudpickleSerializer"]


class CloudpickleSerializer(PickleSerializer):
    """Like `pickle`, but functions and classes that cannot be imported travel by value."""

    name = "cloudpickle"
    _dumps = staticmethod(_cloudpickle.dumps)
