"""`python -m skprocessing status URL`: run as a subprocess against a real head (a Pool on
the ZeroMQ transport in another process), with the right key, a wrong one, and none."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from skprocessing import Pool
from skprocessing.transports.zmq.security import generate_key

pytestmark = pytest.mark.timeout(120)

LIMIT = 60.0

HEAD = textwrap.dedent("""
    import os, sys, threading, time
    from pathlib import Path
    from skprocessing import Pool
    key_file, serializer, ready, release = sys.argv[1:5]

    def hold(x):
        # both items wait (bounded) for the test's release file: "in flight" is real
        deadline = time.monotonic() + 60
        while not Path(release).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return x

    def die(x):
        if x == 0:
            os._exit(3)
        return x

    with Pool(2, transport="tcp://127.0.0.1", key=Path(key_file).read_text(),
              serializer=serializer) as pool:
        pool.map(abs, range(50))
        try:
            pool.map(die, [0])
        except Exception as exc:
            print("lost a worker:", type(exc).__name__, flush=True)
        running = threading.Thread(target=pool.map, args=(hold, range(2)), kwargs={"chunksize": 1})
        running.start()
        deadline = time.monotonic() + 60
        while pool.status()["in_flight"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        Path(ready + ".part").write_text(pool.address)
        os.replace(ready + ".part", ready)  # whole, or not there
        running.join(90)
""")


def run_status(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skprocessing", "status", *args],
                          capture_output=True, text=True, timeout=LIMIT,
                          env={**os.environ, **(env or {})})


@pytest.fixture(params=["cerial", "cloudpickle"])
def head(request, tmp_path):
    """(address, key file, the head's process): a head whose map holds two items."""
    key_file = tmp_path / "key"
    key_file.write_bytes(generate_key())
    ready, release = tmp_path / "ready", tmp_path / "release"
    process = subprocess.Popen(
        [sys.executable, "-c", HEAD, str(key_file), request.param, str(ready), str(release)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + LIMIT
        while not ready.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the head did not start"
            time.sleep(0.05)
        yield ready.read_text(), key_file, process
    finally:
        release.write_text("go")
        try:
            process.communicate(timeout=LIMIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_status_prints_workers_by_host_progress_and_losses(head):
    address, key_file, _ = head
    result = run_status(address, "--key-file", str(key_file))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"head {address}: 2 worker(s) on 1 host(s), 1 map(s) running" in out
    assert "items: 2 in flight" in out
    assert "items/s over the last minute" in out
    # over a network a death is retried once before it is blamed (see _faults.py): >= 2
    assert re.search(r"workers lost: [1-9]\d* in all, lately:", out)
    assert "exited with code 3: it died (1 item(s) held)" in out
    assert f"host {os.uname().nodename}: 2 worker(s), 2 in flight" in out


def test_status_json_for_scripts(head):
    address, key_file, _ = head
    result = run_status(address, "--key-file", str(key_file), "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["ok"] is True
    assert status["address"] == address
    assert status["workers"] == 2 and status["in_flight"] == 2 and status["calls"] == 1
    assert status["done"] >= 50
    assert status["throughput"] > 0
    losses = status["recent_losses"]
    assert status["lost_workers"] == len(losses) >= 1
    assert all(loss["items"] == 1 and "exited with code 3" in loss["why"] for loss in losses)
    assert sum(w["in_flight"] for w in status["per_worker"]) == 2


def test_status_with_the_key_in_the_environment_or_on_the_command_line(head):
    address, key_file, _ = head
    key = key_file.read_text()
    assert run_status(address, "--json", env={"SKPROCESSING_KEY": key}).returncode == 0
    assert run_status(address, "--json", "--key", key).returncode == 0


def test_a_wrong_key_is_refused_in_bounded_time_and_the_head_logs_it(head, tmp_path):
    address, _, process = head
    wrong = tmp_path / "wrong"
    wrong.write_bytes(generate_key())
    began = time.monotonic()
    result = run_status(address, "--key-file", str(wrong), "--timeout", "3")
    assert time.monotonic() - began < LIMIT
    assert result.returncode == 1
    assert "same key" in result.stderr and result.stdout == ""
    (tmp_path / "release").write_text("go")
    _, err = process.communicate(timeout=LIMIT)
    assert "bad signature" in err  # the head logged the refused request


def test_no_head_there_fails_in_bounded_time(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_bytes(generate_key())
    with Pool(1, transport="tcp://127.0.0.1") as pool:
        address = pool.address  # a port that was a head's a moment ago
    result = run_status(address, "--key-file", str(key_file), "--timeout", "2")
    assert result.returncode == 1
    assert "status:" in result.stderr and address in result.stderr


def test_bad_arguments_exit_2(tmp_path):
    result = run_status("tcp://127.0.0.1:5555", "--key-file", str(tmp_path / "missing"))
    assert result.returncode == 2 and "cannot read the key file" in result.stderr
    result = run_status("tcp://127.0.0.1:5555", "--timeout", "0")
    assert result.returncode == 2 and "--timeout" in result.stderr
    result = run_status()
    assert result.returncode == 2 and "url" in result.stderr


def test_pool_status_keeps_throughput_and_recent_losses():
    with Pool(1) as pool:
        assert pool.map(abs, range(-20, 0)) == list(range(20, 0, -1))
        with pytest.raises(Exception):
            pool.map(os._exit, [5])
        status = pool.status()
        assert status["done"] == 20
        assert status["throughput"] > 0 and status["uptime"] > 0
        [loss] = status["recent_losses"]
        assert loss["pid"] and "exited with code 5" in loss["why"] and loss["items"] == 1
