"""The launcher: forked when the parent is single-threaded, spawned otherwise; safe either way."""

from __future__ import annotations

import pytest

from tests.conftest import run_script

pytestmark = pytest.mark.timeout(90)

PROCESS = """
import os, socket, sys, threading
from skprocessing import Skprocess
from skprocessing.transports._launcher import get_launcher

class Report(Skprocess):
    def __init__(self):
        self.process_config.runs = 1
    def __run__(self):
        pass
    def __result__(self):
        return os.getpid()
"""


def test_single_threaded_parent_forks_its_launcher():
    result = run_script(PROCESS + """
if __name__ == "__main__":
    child = Report().run()
    print(get_launcher().mode, child != os.getpid())
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["fork", "True"]


def test_a_parent_with_threads_spawns_a_clean_launcher():
    result = run_script(PROCESS + """
if __name__ == "__main__":
    stop = threading.Event()
    threading.Thread(target=stop.wait, daemon=True).start()
    Report().run()
    print(get_launcher().mode)
    stop.set()
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["spawn"]


@pytest.mark.parametrize("mode", ["fork", "spawn"])
def test_mode_can_be_forced(mode, monkeypatch):
    monkeypatch.setenv("SKPROCESSING_LAUNCHER", mode)
    result = run_script(PROCESS + """
if __name__ == "__main__":
    Report().run()
    print(get_launcher().mode)
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [mode]


def test_an_unknown_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("SKPROCESSING_LAUNCHER", "teleport")
    result = run_script(PROCESS + """
if __name__ == "__main__":
    Report().run()
""")
    assert result.returncode != 0
    assert "SKPROCESSING_LAUNCHER must be auto, fork or spawn" in result.stderr


def test_forked_launcher_releases_the_parents_sockets_and_stale_ones_fail_loudly():
    result = run_script(PROCESS + """
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
port = listener.getsockname()[1]

class UsesStale(Skprocess):
    def __init__(self):
        self.process_config.runs = 1
    def __run__(self):
        import __main__
        try:
            __main__.listener.accept()
            self.outcome = "used the parent's socket"
        except OSError as error:
            self.outcome = type(error).__name__
    def __result__(self):
        return self.outcome

if __name__ == "__main__":
    process = UsesStale()
    process.start()
    listener.close()
    again = socket.socket()
    again.bind(("127.0.0.1", port))  # free again: the launcher did not keep it
    print(get_launcher().mode, process.result())
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["fork", "OSError"]


def test_output_buffered_before_the_fork_is_printed_once():
    result = run_script(PROCESS + """
if __name__ == "__main__":
    print("before", end=" ")  # still in the buffer: stdout is a pipe here
    Report().run()
    Report().run()
    print("after")
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["before", "after"]
