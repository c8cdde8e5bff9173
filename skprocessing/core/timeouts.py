"""Run one lifecycle section under a time limit.

On the main thread of a Unix process a `SIGALRM` interval timer interrupts even blocking
calls (sleep, socket reads). Elsewhere (another thread, or no SIGALRM) a watchdog thread
raises the timeout asynchronously in the running thread: that stops Python code at its next
bytecode, but cannot break a blocking C call, which ends only when that call returns.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["SectionTimedOut", "call_with_timeout"]

T = TypeVar("T")


class SectionTimedOut(BaseException):
    """Raised inside a section that ran over. A BaseException, so `except Exception` in
    user code cannot swallow it."""


def _raise_timeout(signum: int, frame: object) -> None:
    raise SectionTimedOut()


def call_with_timeout(call: Callable[[], T], seconds: float | None) -> T:
    """`call()`, interrupted with SectionTimedOut after `seconds` (None: no limit)."""
    if seconds is None:
        return call()
    if hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread():
        return _with_alarm(call, seconds)
    return _with_watchdog(call, seconds)


def _with_alarm(call: Callable[[], T], seconds: float) -> T:
    # Someone else's alarm (the user's, pytest-timeout's) is put back afterwards, less the
    # time spent here; if it would have fired first, it fires right after.
    previous = signal.signal(signal.SIGALRM, _raise_timeout)
    their_delay, their_interval = signal.getitimer(signal.ITIMER_REAL)
    began = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return call()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if their_delay:
            left = their_delay - (time.monotonic() - began)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6), their_interval)


def _with_watchdog(call: Callable[[], T], seconds: float) -> T:
    target = ctypes.c_ulong(threading.get_ident())
    done = threading.Event()
    lock = threading.Lock()  # the watchdog fires only while the call is still running
    state = {"finished": False, "fired": False}

    def watchdog() -> None:
        if not done.wait(seconds):
            with lock:
                if not state["finished"]:
                    state["fired"] = True
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(target, ctypes.py_object(SectionTimedOut))

    threading.Thread(target=watchdog, name="skprocessing-timeout", daemon=True).start()
    try:
        return call()
    finally:
        with lock:
            state["finished"] = True
            if state["fired"]:
                # Fired as the call returned: the exception may still be pending; drop it.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(target, None)
        done.set()
