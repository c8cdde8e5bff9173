"""skprocessing: parallel code as regular code.

    from skprocessing import Skprocess, Pool, Share, Pipe, autoreconnect, Executor
"""

from .core.autoreconnect import autoreconnect
from .core.config import ProcessConfig, TimeoutConfig
from .core.pipe import Pipe
from .core.pool import Pool
from .core.process import Skprocess
from .core.share import Share
from .core.timers import ProcessTimers, Sktimer
from .errors import (ChannelClosed, DeserializationError, ErrorHandlerError, OnFinishError,
                     PostRunError, PreRunError, ProcessDiedError, ProcessError,
                     ProcessTimeoutError, RemoteError, ResultError, ResultTimeoutError, RunError,
                     PipeEndpointError, SerializationError, ShareError, StateError,
                     TransportError)
from .serializers import available_serializers, get_serializer, register_serializer
from .serializers.cerial import Reconnector, deserialize, reconnect_all, serialize
from .transports import get_transport, register_transport

__version__ = "0.1.0"

__all__ = [
    "Skprocess", "Pool", "Share", "Pipe", "autoreconnect", "ProcessConfig", "TimeoutConfig", "ProcessTimers", "Sktimer",
    "ProcessError", "PreRunError", "RunError", "PostRunError", "OnFinishError", "ResultError",
    "ErrorHandlerError", "ProcessTimeoutError", "ResultTimeoutError", "ProcessDiedError", "RemoteError",
    "StateError", "ShareError", "PipeEndpointError", "SerializationError", "DeserializationError", "TransportError",
    "ChannelClosed", "register_serializer", "get_serializer", "available_serializers",
    "serialize", "deserialize", "reconnect_all", "Reconnector", "register_transport",
    "get_transport", "Executor", "BrokenWorkerError",
]


def __getattr__(name: str):
    # The Executor (and concurrent.futures) are imported on first use only.
    if name in ("Executor", "BrokenWorkerError"):
        from .core import executor
        return getattr(executor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
