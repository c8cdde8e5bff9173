"""Every error skprocessing raises, in one tree.

    Exception
    ├── ProcessError                      anything that went wrong in or around a process
    │   ├── PreRunError, RunError, PostRunError, OnFinishError, ResultError,
    │   │   ErrorHandlerError             a lifecycle section raised (wraps original_error)
    │   ├── ProcessTimeoutError           a lifecycle section ran over its timeout
    │   ├── ResultTimeoutError            a caller's .timeout(s) modifier ran out
    │   ├── ProcessDiedError              the child ended without delivering a result
    │   ├── RemoteError                   a worker's exception that could not travel as itself
    │   ├── ShareError                    a Share's coordinator is stopped, gone, or refused
    │   └── StateError                    a call that the object's state does not allow
    │       └── PipeEndpointError         a pipe end misused (locked anchor, one-way end)
    ├── SerializationError                an object could not be turned into bytes
    ├── DeserializationError              bytes could not be turned back into an object
    └── TransportError                    a channel, listener or launcher failed
        └── ChannelClosed (also EOFError) the other end is gone

Errors raised in a child travel home with their traceback text in `remote_traceback`.
"""

from __future__ import annotations

__all__ = [
    "ProcessError", "PreRunError", "RunError", "PostRunError", "OnFinishError",
    "ResultError", "ErrorHandlerError", "ProcessTimeoutError", "ResultTimeoutError",
    "ProcessDiedError", "RemoteError", "StateError", "ShareError", "PipeEndpointError", "SerializationError", "DeserializationError",
    "TransportError", "TransportRefused", "ChannelClosed", "RemoteTraceback",
]


class RemoteTraceback(Exception):
    """Carries a traceback text from another process; set as `__cause__` for display."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\"\"\"\n{self.text}\"\"\""


class ProcessError(Exception):
    """Base of every error about a process; `remote_traceback` holds the child's text."""

    remote_traceback: str | None = None

    def __init__(self, message: str = "", *, current_run: int | None = None,
                 original_error: BaseException | None = None):
        super().__init__(message)
        self.message = message
        self.current_run = current_run
        self.original_error = original_error

    def __reduce__(self):
        # Keyword state must survive pickling across processes.
        return (_rebuild_error, (type(self), self.args, self.__dict__))


def _rebuild_error(cls, args, state):
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class PreRunError(ProcessError):
    """`__prerun__` raised."""


class RunError(ProcessError):
    """`__run__` raised."""


class PostRunError(ProcessError):
    """`__postrun__` raised."""


class OnFinishError(ProcessError):
    """`__onfinish__` raised."""


class ResultError(ProcessError):
    """`__result__` raised."""


class ErrorHandlerError(ProcessError):
    """`__error__` raised."""


class ProcessTimeoutError(ProcessError):
    """A lifecycle section ran longer than its configured timeout. `section` names the hook
    (`"__run__"`, `"__prerun__"`, ...; a pool item's function counts as `"__run__"`)."""

    def __init__(self, message: str = "", *, section: str | None = None,
                 timeout: float | None = None, current_run: int | None = None):
        super().__init__(message, current_run=current_run)
        if section in SECTION_ERRORS:  # a bare section name: say it as the hook is called
            section = f"__{section}__"
        self.section = section
        self.timeout = timeout


class ResultTimeoutError(ProcessError, TimeoutError):
    """A `.timeout(s)` modifier ran out before the call completed."""


class ProcessDiedError(ProcessError):
    """The child process ended (killed, crashed, exited) without delivering a result."""

    def __init__(self, message: str = "", *, exitcode: int | None = None,
                 current_run: int | None = None):
        super().__init__(message, current_run=current_run)
        self.exitcode = exitcode


class RemoteError(ProcessError):
    """A task's exception that could not be sent back as itself (it would not serialize,
    or not rebuild from its pickle: a custom `__init__`, a local class, a lock inside).
    What it was: `type_name` (its class's qualified name), `module` (its class's module)
    and `error_message` (its `str()`); `remote_traceback` is where it was raised."""

    def __init__(self, message: str = "", *, type_name: str | None = None,
                 module: str | None = None, error_message: str | None = None):
        super().__init__(message)
        self.type_name = type_name
        self.module = module
        self.error_message = error_message


class StateError(ProcessError, RuntimeError):
    """The call is not allowed in the object's current state (e.g. `start()` twice)."""


class ShareError(ProcessError):
    """A Share could not do what was asked: its coordinator is stopped, unreachable or gone,
    an earlier pipelined write failed, or an answer could not be sent back."""


class PipeEndpointError(StateError):
    """A pipe end was misused: serializing a locked or connected end, unlocking an anchor,
    sending on the receive-only end of a one-way pipe."""


class SerializationError(Exception):
    """An object could not be serialized; `path` names the part that failed."""

    def __init__(self, message: str, *, path: str | None = None, type_name: str | None = None):
        super().__init__(message)
        self.path = path
        self.type_name = type_name


class DeserializationError(Exception):
    """Bytes could not be deserialized (truncated, tampered, or an unknown serializer)."""


class TransportError(Exception):
    """A transport primitive failed: a channel, a listener, the launcher."""


class TransportRefused(TransportError):
    """The transport will never do this as configured (an address it cannot use, a reach
    beyond loopback without a key): retrying cannot help, a caller that retries stops."""


class ChannelClosed(TransportError, EOFError):
    """The other end of a channel is closed or its process is gone."""


SECTION_ERRORS: dict[str, type[ProcessError]] = {
    "prerun": PreRunError,
    "run": RunError,
    "postrun": PostRunError,
    "onfinish": OnFinishError,
    "result": ResultError,
    "error": ErrorHandlerError,
}
