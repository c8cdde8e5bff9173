"""The README's first command: the demo runs end to end and shows each part working."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.mark.timeout(180)
def test_demo_runs_and_shows_every_part():
    result = subprocess.run([sys.executable, "-m", "skprocessing", "demo"], capture_output=True,
                            text=True, timeout=170)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "runs:       [0, 1, 4, 9, 16]" in out
    assert "tell/listen: ['TELL', 'AND', 'LISTEN']" in out
    assert "retry:      succeeded on attempt 2" in out
    assert "ProcessTimeoutError" in out
    assert "map:        [0, 1, 4, 9, 16, 25, 36, 49]" in out
    assert "counter:    200  (200 increments from 2 worker processes)" in out
    assert "squares:    200 appended, sum 2646700" in out
    assert "sum of squares below 10,000: 333283335000" in out
    assert "Skprocess on a worker (start(on=pool)), tell/listen: ['ON', 'A', 'WORKER']" in out
    # The line agrees with its heading: the agent's 2 processes had both joined.
    assert "a worker agent joining it with 2 processes" in out
    hosts = re.search(r"workers by host: ([^;]*);", out).group(1)
    assert sum(int(n) for n in re.findall(r": (\d+)", hosts)) == 2, hosts


def test_worker_help_shows_every_default():
    result = subprocess.run([sys.executable, "-m", "skprocessing", "worker", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())  # argparse wraps lines anywhere
    assert "--log-every S seconds between throughput lines; 0: never (default: 10.0)" in out
    options = re.findall(r"(--[a-z-]+)(?: [A-Z]+)? ((?:(?! --).)*)",
                         out.split("options:", 1)[1].split("example:")[0])
    for option, text in options:
        if option not in ("--help", "--quiet", "--verbose"):  # switches: off unless given
            assert "(default: " in text, (option, text)
    assert {o for o, _ in options} >= {"--workers", "--key-file", "--prefetch", "--heartbeat",
                                       "--dead-after", "--give-up", "--log-every", "--curve"}


def test_demo_help_exits_0_without_running_the_tour():
    result = subprocess.run([sys.executable, "-m", "skprocessing", "demo", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage: python -m skprocessing demo" in result.stdout
    assert "==" not in result.stdout


def test_unknown_command_prints_usage():
    result = subprocess.run([sys.executable, "-m", "skprocessing", "nope"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "usage" in result.stderr
