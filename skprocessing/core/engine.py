"""The lifecycle engine: what runs inside the child process of an `Skprocess`.

    main(...)                      entry point, started by the transport
      └─ rebuild the object from its frames, bind the child ends, autoreconnect
      └─ Lifecycle.run()
           while lives remain:
               while should_continue:  __prerun__ → __run__ → __postrun__   (timed, each
                                        under its timeout, wrapped in its error class)
               __onfinish__ → __result__
           on error with no lives left: self.error = error; __error__()
      └─ send the outcome (result, timers, current_run, error) on the control channel
"""

from __future__ import annotations

import time
import traceback
from typing import Any

from ..errors import SECTION_ERRORS, ProcessError, ProcessTimeoutError, ResultError, SerializationError
from ..serializers.codec import Codec
from ..transports.base import Channel, Counter, Flag
from .timeouts import SectionTimedOut, call_with_timeout

__all__ = ["main", "Lifecycle", "OUTCOME", "MESSAGE"]

MESSAGE = 1  # a tell() payload
OUTCOME = 2  # the child's final report

ITERATION = ("prerun", "run", "postrun")


class Lifecycle:
    """Runs one rebuilt `Skprocess` through its sections; `run()` returns the result value."""

    def __init__(self, process: Any, stop: Flag, run_counter: Counter):
        self.process = process
        self.config = process.process_config
        self.timers = process.timers
        self.stop = stop
        self.run_counter = run_counter
        self.defined = process._sk_defined_sections()
        self.iteration = [s for s in ITERATION if s in self.defined]

    def run(self) -> Any:
        lives = self.config.lives
        started = time.monotonic()
        while True:
            try:
                self._loop(started)
                if "onfinish" in self.defined:
                    self._section("onfinish")
                return self._section("result") if "result" in self.defined else None
            except ProcessError as error:
                lives -= 1
                if lives > 0 and not self.stop.is_set():
                    continue  # a retry keeps the state the object has now
                self.process.error = error
                return self._on_error(error)

    def _on_error(self, error: ProcessError) -> Any:
        if "error" not in self.defined:
            return error
        try:
            return self._section("error")
        except ProcessError as handler_error:
            return handler_error

    def _loop(self, started: float) -> None:
        process, config, stop = self.process, self.config, self.stop
        full_run = self.timers.full_run
        while self._should_continue(started):
            began = time.perf_counter()
            for name in self.iteration:
                self._section(name)
                if stop.is_set():
                    return  # graceful stop: the current section is done; go to __onfinish__
            full_run.add_time(time.perf_counter() - began)
            process._sk_current_run += 1
            self.run_counter.value = process._sk_current_run

    def _should_continue(self, started: float) -> bool:
        config = self.config
        if self.stop.is_set():
            return False
        if config.runs is not None and self.process._sk_current_run >= config.runs:
            return False
        return config.join_in is None or time.monotonic() - started < config.join_in

    def _section(self, name: str) -> Any:
        method = getattr(type(self.process), f"__{name}__").__get__(self.process)
        timeout = self.config.timeouts.get(name)
        current_run = self.process._sk_current_run
        began = time.perf_counter()
        try:
            return call_with_timeout(method, timeout)
        except SectionTimedOut:
            error: ProcessError = ProcessTimeoutError(
                f"__{name}__ ran over its {timeout:g} s timeout (run {current_run})",
                section=name, timeout=timeout, current_run=current_run)
            error.remote_traceback = traceback.format_exc()
            raise error from None
        except Exception as exc:
            error = SECTION_ERRORS[name](
                f"__{name}__ raised {type(exc).__name__}: {exc} (run {current_run})",
                current_run=current_run, original_error=exc)
            error.remote_traceback = traceback.format_exc()
            raise error from None
        finally:
            self.timers.section(name).add_time(time.perf_counter() - began)


def main(codec_token: Any, payload: list[bytes], control: Channel, messages: Channel,
         stop: Flag, run_counter: Counter) -> None:
    """Entry point of an `Skprocess` child (started through `Transport.start`)."""
    codec = Codec.from_token(codec_token)
    try:
        process = codec.serializer.loads(payload)
        process._sk_bind_child(messages, codec, stop)
        reconnect = getattr(type(process), "_sk_autoreconnect", None)
        if reconnect is not None:
            reconnect(process)
    except Exception as exc:
        error = ProcessError(f"the process could not be rebuilt in the child: {type(exc).__name__}: {exc}")
        error.remote_traceback = traceback.format_exc()
        control.send(codec.encode(OUTCOME, (error, None, 0, error)))
        return
    value = Lifecycle(process, stop, run_counter).run()
    send_outcome(control, codec, process, value)


def send_outcome(control: Channel, codec: Codec, process: Any, value: Any) -> None:
    """Send (value, timers, current_run, error); an unserializable part is replaced by an
    error that says so, never lost silently."""
    outcome = (value, process.timers, process._sk_current_run, process.error)
    try:
        frames = codec.encode(OUTCOME, outcome)
    except SerializationError as exc:
        error = ResultError(f"the result could not be sent to the parent: {exc}",
                            current_run=process._sk_current_run)
        for part in (value, process.error):
            if isinstance(part, ProcessError):
                part.original_error = None  # the likely culprit; its text stays in the message
        safe_error = process.error if _serializable(codec, process.error) else None
        frames = codec.encode(OUTCOME, (error, process.timers, process._sk_current_run, safe_error))
    control.send(frames)


def _serializable(codec: Codec, obj: Any) -> bool:
    try:
        codec.serializer.dumps(obj)
        return True
    except SerializationError:
        return False
