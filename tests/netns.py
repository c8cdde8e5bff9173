"""Network namespaces for multi-host tests: each test makes its own and deletes them."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import time


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run `ip ARGS` (iproute2), bounded in time."""
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


def netns_unavailable() -> str | None:
    """Why namespaces cannot be made here (a skip reason), or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (run the suite as root, or on CI)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"skp-probe-{os.getpid()}-{os.urandom(2).hex()}"
    result = ip("netns", "add", probe, check=False)
    if result.returncode != 0:
        return f"`ip netns add` is not permitted here: {result.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def expect_line(lines: queue.Queue, word: str, timeout: float) -> str:
    """The first line from a process's output queue that starts with `word`; fails the
    test with the last lines seen when none comes within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        if line.startswith(word):
            return line
    raise AssertionError(f"no {word!r} within {timeout}s; output: {seen[-30:]}")
