"""Pool in a fresh interpreter: functions and classes defined in `__main__`, Ctrl-C from
outside, and a script that exits without closing its pool. No process may be left."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.conftest import interruptible, run_script, wait_gone

pytestmark = pytest.mark.timeout(120)


def test_main_module_callables_run_in_a_fresh_interpreter():
    result = run_script("""
        from skprocessing.core.pool import Pool

        def local_square(x):
            return x * x

        class Box:
            def __init__(self, v):
                self.v = v

        if __name__ == "__main__":
            factor = 3
            with Pool(2) as pool:
                print(pool.map(local_square, range(5)))
                print(pool.map(lambda x: x * factor, range(3)))
                print([b.v for b in pool.map(Box, "ab")])
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["[0, 1, 4, 9, 16]", "[0, 3, 6]", "['a', 'b']"]


def test_exit_without_close_leaves_no_worker():
    result = run_script("""
        import json
        from skprocessing.core.pool import Pool
        pool = Pool(2)
        pool.map(abs, [-1])
        print(json.dumps(pool.worker_pids))
    """)
    assert result.returncode == 0, result.stderr
    for pid in json.loads(result.stdout):
        assert wait_gone(pid)


def test_ctrl_c_in_a_script_cancels_and_leaves_no_worker(tmp_path):
    started = tmp_path / "started"
    source = textwrap.dedent(f"""
        import json, sys, time
        from skprocessing.core.pool import Pool

        def slow(x):
            open({str(started)!r}, "a").close()
            time.sleep(60)

        pool = Pool(2)
        pool.map(abs, [-1])
        print(json.dumps(pool.worker_pids), flush=True)
        try:
            pool.map(slow, range(4))
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            print(pool.map(abs, [-2, -3]), flush=True)
            raise
    """)
    child = subprocess.Popen(interruptible([sys.executable, "-c", source]), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        pids = json.loads(child.stdout.readline())
        while not started.exists():  # the map is now waiting on the slow items
            time.sleep(0.01)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert "interrupted" in out and "[2, 3]" in out, err
    assert child.returncode != 0 and "KeyboardInterrupt" in err
    for pid in pids:
        assert wait_gone(pid)
