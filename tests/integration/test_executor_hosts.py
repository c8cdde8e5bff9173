"""An Executor whose workers join by address: a head (`Executor(0, transport=...)`) and a
worker host started with `python -m skprocessing worker` (loopback only), watched with the
`status` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool

import pytest

from skprocessing import Executor
from skprocessing.transports.zmq.security import generate_key
from tests.conftest import wait_gone

pytestmark = pytest.mark.timeout(180)

LIMIT = 60.0


def die_on_zero(x):
    if x == 0:
        os._exit(4)
    return x


@pytest.fixture
def key():
    return generate_key().decode()


def test_an_executor_head_with_a_worker_host(key, tmp_path):
    env = dict(os.environ, SKPROCESSING_KEY=key)
    with Executor(0, transport="tcp://127.0.0.1?heartbeat=0.2&dead_after=1.0", key=key) as ex:
        agent = subprocess.Popen(
            [sys.executable, "-m", "skprocessing", "worker", ex.pool.address, "--workers", "2",
             "--prefetch", "1", "--heartbeat", "0.2", "--dead-after", "1.0", "--quiet"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            futures = [ex.submit(lambda x: x * 3, i) for i in range(20)]  # before it joins
            assert sorted(f.result() for f in as_completed(futures, timeout=LIMIT)) == \
                [i * 3 for i in range(20)]
            assert list(ex.map(abs, range(-5, 0), timeout=LIMIT)) == [5, 4, 3, 2, 1]
            doomed = ex.submit(die_on_zero, 0)
            with pytest.raises(BrokenProcessPool):
                doomed.result(LIMIT)
            assert ex.submit(die_on_zero, 7).result(LIMIT) == 7  # the host replaced it
            status = subprocess.run(
                [sys.executable, "-m", "skprocessing", "status", ex.pool.address, "--json"],
                env=env, capture_output=True, text=True, timeout=LIMIT)
            assert status.returncode == 0, status.stderr
            report = json.loads(status.stdout)
            assert report["agents"] == [os.uname().nodename]
            assert report["done"] >= 26
            assert report["lost_workers"] >= 1
        finally:
            agent.terminate()
            try:
                agent.wait(LIMIT)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
    assert wait_gone(agent.pid, 10.0)
