"""skprocessing: parallel code as regular code.

    from skprocessing import Skprocess, Pool, Share, Pipe, autoreconnect
"""

from .core.config import ProcessConfig, TimeoutConfig
from .core.process import Skprocess
from .core.timers import ProcessTimers, Sktimer
from .errors import (ChannelClosed, DeserializationError, ErrorHandlerError, OnFinishError,
                     PostRunError, PreRunError, ProcessDiedError, ProcessError,
                     ProcessTimeoutError, ResultError, ResultTimeoutError, RunError,
                     SerializationError, StateError, TransportError)
from .serializers import get_serializer, register_serializer
from .transports import get_transport, register_transport

__version__ = "0.1.0"

__all__ = [
    "Skprocess", "ProcessConfig", "TimeoutConfig", "ProcessTimers", "Sktimer",
    "ProcessError", "PreRunError", "RunError", "PostRunError", "OnFinishError", "ResultError",
    "ErrorHandlerError", "ProcessTimeoutError", "ResultTimeoutError", "ProcessDiedError",
    "StateError", "SerializationError", "DeserializationError", "TransportError",
    "ChannelClosed", "register_serializer", "get_serializer", "register_transport",
    "get_transport",
]
