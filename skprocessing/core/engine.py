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
from ..transports.base import Channel
from ._exit import process_entry
from ._held import ordered_send
from ._signals import Counter, Flag
from .timeouts import SectionTimedOut, call_with_timeout

__all__ = ["main", "Lifecycle", "OUTCOME", "MESSAGE"]

MESSAGE = 1  # a tell() payload
OUTCOME = 2  # the child's final report
# A process on a pool worker (`remote.py`) has no shared memory with its parent, so its
# stop flag and run counter travel as messages on the control channel:
RUN = 3      # child -> parent: current_run changed
STOP = 4     # parent -> child: stop()
KILL = 5     # parent -> child: kill()

ITERATION = ("prerun", "run", "postrun")


class _Section:
    """One hook resolved once: its bound method, timer and error class."""

    __slots__ = ("name", "method", "timer", "error_class")

    def __init__(self, process: Any, name: str):
        self.name = name
        self.method = getattr(type(process), f"__{name}__").__get__(process)
        self.timer = process.timers.section(name)
        self.error_class = SECTION_ERRORS[name]


class Lifecycle:
    """Runs one rebuilt `Skprocess` through its sections; `run()` returns the result value."""

    def __init__(self, process: Any, stop: Flag, run_counter: Counter):
        if process._sk is None:  # a Pool item: `self.stop()` in a hook still needs the flag
            process._sk_bind_child(None, None, stop)
        self.process = process
        self.config = process.process_config
        self.stop = stop
        self.run_counter = run_counter
        self.sections = {name: _Section(process, name) for name in process._sk_defined_sections()}
        self.iteration = [self.sections[s] for s in ITERATION if s in self.sections]

    def run(self) -> Any:
        lives = self.config.lives
        started = time.monotonic()
        while True:
            try:
                self._loop(started)
                if "onfinish" in self.sections:
                    self._call(self.sections["onfinish"])
                return self._call(self.sections["result"]) if "result" in self.sections else None
            except ProcessError as error:
                lives -= 1
                if lives > 0 and not self.stop.is_set():
                    continue  # a retry keeps the state the object has now
                self.process.error = error
                return self._on_error(error)

    def _on_error(self, error: ProcessError) -> Any:
        if "error" not in self.sections:
            return error
        try:
            return self._call(self.sections["error"])
        except ProcessError as handler_error:
            return handler_error

    def _loop(self, started: float) -> None:
        # The hot path of every process: everything it needs is looked up once, up here.
        process, stop, counter = self.process, self.stop, self.run_counter
        full_run = self.process.timers.full_run
        config, timeouts = self.config, self.config.timeouts
        clock = time.perf_counter
        while not stop.is_set():
            if config.runs is not None and process._sk_current_run >= config.runs:
                return
            if config.join_in is not None and time.monotonic() - started >= config.join_in:
                return
            began = clock()
            for section in self.iteration:
                if getattr(timeouts, section.name) is None:
                    section_began = clock()
                    try:
                        section.method()
                    except Exception as exc:
                        raise self._wrap(section, exc) from None
                    finally:
                        section.timer.add_time(clock() - section_began)
                else:
                    self._call(section)
                if stop.is_set():
                    return  # graceful stop: the current section is done; go to __onfinish__
            full_run.add_time(clock() - began)
            process._sk_current_run += 1
            counter.value = process._sk_current_run

    def _call(self, section: _Section) -> Any:
        timeout = self.config.timeouts.get(section.name)
        began = time.perf_counter()
        try:
            return call_with_timeout(section.method, timeout)
        except SectionTimedOut:
            run = self.process._sk_current_run
            error: ProcessError = ProcessTimeoutError(
                f"__{section.name}__ ran over its {timeout:g} s timeout (run {run})",
                section=section.name, timeout=timeout, current_run=run)
            error.remote_traceback = traceback.format_exc()
            raise error from None
        except Exception as exc:
            raise self._wrap(section, exc) from None
        finally:
            section.timer.add_time(time.perf_counter() - began)

    def _wrap(self, section: _Section, exc: Exception) -> ProcessError:
        run = self.process._sk_current_run
        error = section.error_class(f"__{section.name}__ raised {type(exc).__name__}: {exc} (run {run})",
                                    current_run=run, original_error=exc)
        error.remote_traceback = traceback.format_exc()
        return error


@process_entry
def main(codec_token: Any, payload: list[bytes], control: Channel, messages: Channel,
         stop: Flag, run_counter: Counter, reconnect_settings: Any = None) -> None:
    """Entry point of an `Skprocess` child (started through `Transport.start`).
    `reconnect_settings` come from `@autoreconnect`, beside the payload, never inside it."""
    codec = Codec.from_token(codec_token)
    try:
        process = codec.serializer.loads(payload)
        process._sk_bind_child(messages, codec, stop)
        if reconnect_settings is not None:
            from .autoreconnect import reconnect
            reconnect(process, reconnect_settings)
    except Exception as exc:
        error = ProcessError(f"the process could not be rebuilt in the child: {type(exc).__name__}: {exc}")
        error.remote_traceback = traceback.format_exc()
        ordered_send(control, codec.encode(OUTCOME, (error, None, 0, error)))
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
    ordered_send(control, frames)


def _serializable(codec: Codec, obj: Any) -> bool:
    try:
        codec.serializer.dumps(obj)
        return True
    except SerializationError:
        return False
