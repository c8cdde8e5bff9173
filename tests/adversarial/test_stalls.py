"""A slow head is not a dead head: a head (pool and Share) stopped by SIGSTOP, or whose
GIL a C call holds, for twice `dead_after`, carries on afterwards; so does a Share whose
coordinator was stopped. (Channels within one host are judged by their process being
alive, not by silence; a late reactor does not count its own stall against peers.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

DEAD_AFTER = 2.0
PAUSE = 2 * DEAD_AFTER
URL = f"tcp://127.0.0.1?heartbeat=0.5&dead_after={DEAD_AFTER}"
SUM = sum(x * x for x in range(1000))


class Head:
    def __init__(self) -> None:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.adversarial._head", URL],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=root)
        self.errors: list[str] = []
        threading.Thread(target=lambda: self.errors.extend(self.proc.stderr), daemon=True).start()
        self.coordinator = int(self.ask(None, "ready", 60).split()[1])

    def ask(self, command: str | None, answer: str, timeout: float) -> str:
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        assert got and got[0].startswith(answer), \
            f"no {answer!r} within {timeout}s: {got}; stderr: {''.join(self.errors[-40:])}"
        return got[0].strip()

    def healthy(self) -> None:
        assert self.ask("map", "map", 60) == f"map {SUM}"
        before = int(self.ask("count 0", "count", 30).split()[1])
        assert self.ask("count 500", "count", 60) == f"count {before + 500}"

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(30)
        except Exception:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def head():
    head = Head()
    yield head
    head.close()


def _stop_for(pid: int, seconds: float) -> None:
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.timeout(150)
def test_a_head_stopped_for_twice_dead_after_carries_on(head):
    head.healthy()
    _stop_for(head.proc.pid, PAUSE)
    head.healthy()
    head.healthy()


@pytest.mark.timeout(150)
def test_a_head_whose_gil_is_held_for_twice_dead_after_carries_on(head):
    head.healthy()
    head.ask(f"busy {int(PAUSE)}", "busy done", 60)
    head.healthy()
    head.healthy()


@pytest.mark.timeout(150)
def test_a_share_coordinator_stopped_for_twice_dead_after_carries_on(head):
    head.healthy()
    _stop_for(head.coordinator, PAUSE)
    head.healthy()
