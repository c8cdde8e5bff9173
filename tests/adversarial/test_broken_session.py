"""A network Share loses no write when its session breaks: over 127.0.0.1, the TCP
connections of two busy writers are reset (`ss -K`, what a router or a firewall does to a
long-lived connection) several times while they count; every `+= 1` that returned is
applied exactly once, and the writers see no error (they reconnect and replay what the
broken session may have lost). Before: a reset cost the writes in flight, and the next
operation raised `ShareError`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

KEY = "broken-session-test-key-5d1e9a7c0b"
PORT = 47_641
WRITES = 15_000

_OWNER = textwrap.dedent("""
    import pickle, sys
    from skprocessing.core.share import Share
    share = Share(transport="tcp://127.0.0.1:{port}?heartbeat=0.5&dead_after=3", key="{key}")
    share.counter = 0
    with open(sys.argv[1], "wb") as f:
        pickle.dump(share, f)
    print("ready", flush=True)
    sys.stdin.readline()                 # the writers are done
    print("final", share.counter, flush=True)
    share.stop()
""")

_WRITER = textwrap.dedent("""
    import faulthandler, pickle, sys
    faulthandler.dump_traceback_later(100, exit=True)  # a hang shows where, in the test's output
    share = pickle.load(open(sys.argv[1], "rb"))
    share.counter += 1
    print("writing", flush=True)
    for _ in range({writes} - 1):
        share.counter += 1
    share.counter                        # a read: all of this writer's writes are applied
    print("done", flush=True)
""")


def _reset_connections(port: int) -> int:
    """Reset every TCP connection to or from `port`; how many there were."""
    result = subprocess.run(["ss", "-K", "-t", "(", "sport", "=", f":{port}", "or", "dport",
                             "=", f":{port}", ")"], capture_output=True, text=True, timeout=20)
    return sum(1 for line in result.stdout.splitlines() if "ESTAB" in line)


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "resetting another process's TCP connections (ss -K) needs root"
    if shutil.which("ss") is None:
        return "the `ss` command (iproute2) is not installed"
    return None


@pytest.mark.timeout(240)
@pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))
def test_reset_sessions_lose_no_write_and_apply_none_twice(tmp_path):
    env = dict(os.environ, SKPROCESSING_KEY=KEY)
    path = str(tmp_path / "share.pickle")
    owner = subprocess.Popen([sys.executable, "-c", _OWNER.format(port=PORT, key=KEY), path],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    writers: list[subprocess.Popen] = []
    try:
        assert owner.stdout.readline().strip() == "ready", owner.stderr.read()[-3000:]
        writers = [subprocess.Popen([sys.executable, "-c", _WRITER.format(writes=WRITES), path],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=env) for _ in range(2)]
        for writer in writers:
            assert writer.stdout.readline().strip() == "writing", writer.stderr.read()[-3000:]
        reset = 0
        for _ in range(8):
            if all(writer.poll() is not None for writer in writers):
                break
            reset += _reset_connections(PORT)
            time.sleep(0.25)  # (spacing, not a wait for an event: the resets are the test)
        for writer in writers:
            writer.wait(timeout=150)  # (a writer that hangs dumps its stacks and exits at 100 s)
            out, err = writer.stdout.read(), writer.stderr.read()
            assert writer.returncode == 0 and out.strip() == "done", err[-3000:]
        assert reset > 0, "no connection was reset while the writers ran"
        owner.stdin.write("go\n")
        owner.stdin.flush()
        out, err = owner.communicate(timeout=60)
        assert f"final {2 * WRITES}" in out, out + err[-3000:]
    finally:
        for process in (owner, *writers):
            if process.poll() is None:
                process.kill()
                process.wait(10)
