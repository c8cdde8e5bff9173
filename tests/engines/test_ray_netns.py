"""Runs the Ray half of the engine tests inside a network namespace this test makes,
holding loopback only (see conftest.py: Ray binds servers to every interface). They run
once, there, as one pytest session; their report is shown on failure."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engines.conftest import IN_PRIVATE_NETNS
from tests.netns import ip, netns_unavailable

pytest.importorskip("ray", reason="the ray extra (pip install skprocessing[ray])")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.xdist_group("ray")
@pytest.mark.timeout(600)
@pytest.mark.skipif(bool(os.environ.get(IN_PRIVATE_NETNS)), reason="already inside it")
def test_the_engine_tests_on_ray_in_a_namespace_with_only_loopback():
    why = netns_unavailable()
    if why:
        pytest.skip(why)
    name = f"skp-ray-{os.getpid()}"
    ip("netns", "add", name)
    try:
        ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        done = subprocess.run(
            ["ip", "netns", "exec", name, sys.executable, "-m", "pytest", "-q", "-n", "0",
             "-p", "no:cacheprovider", "tests/engines/test_engines.py", "-k", "ray"],
            cwd=ROOT, capture_output=True, text=True, timeout=580,
            env=dict(os.environ, **{IN_PRIVATE_NETNS: "1"}))
    finally:
        ip("netns", "del", name, check=False)
    report = done.stdout[-6000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed and int(passed.group(1)) >= 10 and "skipped" not in done.stdout, report
