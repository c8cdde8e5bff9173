"""Whether a process still runs: for tests that check they leave no process behind."""

from __future__ import annotations

import time

__all__ = ["pid_alive", "wait_gone"]


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone (ESRCH: gone while being read)
        return False


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """Wait until `pid` no longer runs; False if it still runs after `timeout`."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
