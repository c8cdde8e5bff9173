"""The README's first command: the demo runs end to end and shows each part working."""

from __future__ import annotations

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


def test_unknown_command_prints_usage():
    result = subprocess.run([sys.executable, "-m", "skprocessing", "nope"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "usage" in result.stderr
