"""Shared test helpers: process liveness checks that never hang."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import pytest

from skprocessing.testing._reaping import pid_alive, wait_gone  # noqa: F401  (used by tests)


@pytest.fixture
def assert_reaped():
    """Collects pids during a test and checks at the end that none of them still runs."""
    pids: list[int] = []
    yield pids.append
    leftover = [pid for pid in pids if not wait_gone(pid, 10.0)]
    assert not leftover, f"processes still running after the test: {leftover}"


def run_script(source: str, timeout: float = 60.0, **kwargs):
    """Run `source` as a fresh `python` script (its own __main__); return the CompletedProcess."""
    import subprocess
    import sys
    import textwrap
    return subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True,
                          text=True, timeout=timeout, **kwargs)


_SIGINT_THEN_EXEC = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                     "os.execv(sys.argv[1], sys.argv[1:])")


def interruptible(argv: list[str]) -> list[str]:
    """`argv` run so that SIGINT raises KeyboardInterrupt in it, as in a script run from a
    terminal: a job started in the background (`cmd &`, some CI runners) inherits SIGINT
    ignored, and Python then installs no handler for it. A small interpreter resets
    SIGINT and execs `argv` (same pid), rather than a `preexec_fn`, which runs Python
    between fork and exec in this multi-threaded test process (at-fork hooks, garbage
    collection, finalizers) and can deadlock there."""
    import sys
    return [sys.executable, "-c", _SIGINT_THEN_EXEC, *argv]


def tagged_processes(tag: str) -> list[int]:
    """Running processes whose environment holds `SKP_TEST_TAG=tag` (what a test's script
    and everything it starts inherit)."""
    marker = f"SKP_TEST_TAG={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if marker in environ.read().split(b"\0") and pid_alive(int(entry)):
                    found.append(int(entry))
        except OSError:
            pass  # gone meanwhile
    return found


@pytest.fixture
def ctrl_c():
    """`ctrl_c(ready)`: press Ctrl-C in this process once `ready()` holds (checked from a
    thread, for at most a minute), as a user at the terminal would. SIGINT raises
    KeyboardInterrupt for the test even when pytest itself runs with SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    over = False
    lock = threading.Lock()  # no press once the test is over
    watchers: list[threading.Thread] = []

    def press(ready: Callable[[], bool]) -> None:
        def wait_then_press() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with lock:
                    if over:
                        return
                    if ready():
                        os.kill(os.getpid(), signal.SIGINT)
                        return
                time.sleep(0.01)
        watchers.append(threading.Thread(target=wait_then_press, daemon=True))
        watchers[-1].start()

    yield press
    with lock:
        over = True
    for watcher in watchers:
        watcher.join(5)
    signal.signal(signal.SIGINT, previous)
