"""A 6 s link cut between a Share's clients and its coordinator, in network namespaces.

The coordinator serves `Share(transport="tcp://0.0.0.0:PORT", key=...)` in namespace C;
two writers in namespace A do `share.counter += 1` as fast as they can. After both have
written a while, A's link is taken down for 6 s (longer than `dead_after`, 4 s by
default, so their sessions break), then brought back. Each writer counts the writes that
returned and the ones that raised `ShareError`; at the end the counter must equal the
writes that returned, exactly: each applied once, and a write that raised not applied
(README "Guarantees on a network"). Needs root and `ip netns` (skipped otherwise).

    namespace C (coordinator) 10.238.N.1 ──── veth (cut for 6 s) ──── 10.238.N.2 A (writers)
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tests.netns import expect_line, ip

KEY = "share-link-cut-test-key-7b20e4c9"
PORT = 47320
CUT = 6.0

_OWNER = textwrap.dedent("""
    import pickle, sys
    from skprocessing.core.share import Share
    share = Share(transport="tcp://0.0.0.0:{port}", key="{key}")
    share.counter = 0
    with open(sys.argv[1], "wb") as f:
        pickle.dump(share, f)
    print("ready", flush=True)
    sys.stdin.readline()                 # the writers are done
    print("final", share.counter, flush=True)
    share.stop()
""")

_WRITER = textwrap.dedent("""
    import faulthandler, os, pickle, sys, time
    from skprocessing.core.share import ShareError
    faulthandler.dump_traceback_later(150, exit=True)  # a hang shows where
    share = pickle.load(open(sys.argv[1], "rb"))
    stop = sys.argv[2]
    ok = errors = 0
    while True:
        failed = False
        try:
            share.counter += 1
            ok += 1
        except ShareError as exc:
            errors += 1
            failed = True
            if errors == 1:
                print("error", exc, flush=True)
        if ok == 2000 and not failed:
            print("writing", flush=True)
        if (failed or ok % 100 == 0) and os.path.exists(stop):
            break
    for _ in range(20):                  # a read: everything that returned is applied
        try:
            share.counter
            break
        except ShareError:
            time.sleep(0.5)
    print("result", ok, errors, flush=True)
""")


def _spawn(ns: str, source: str, *args: str, stdin=None) -> tuple[subprocess.Popen, queue.Queue]:
    env = dict(os.environ, SKPROCESSING_KEY=KEY, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", source, *args],
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in proc.stdout],
                     daemon=True).start()
    return proc, lines


@pytest.mark.timeout(240)
def test_a_6s_link_cut_loses_no_write_that_returned_and_applies_none_twice(three_hosts, tmp_path):
    pickled, stop = str(tmp_path / "share.pickle"), str(tmp_path / "stop")
    owner, owner_out = _spawn(three_hosts["c"], _OWNER.format(port=PORT, key=KEY), pickled,
                              stdin=subprocess.PIPE)
    writers: list[tuple[subprocess.Popen, queue.Queue]] = []
    try:
        expect_line(owner_out, "ready", 60)
        writers = [_spawn(three_hosts["a"], _WRITER, pickled, stop) for _ in range(2)]
        for _, out in writers:
            expect_line(out, "writing", 90)
        ip("-n", three_hosts["a"], "link", "set", three_hosts["link_a"], "down")
        time.sleep(CUT)  # the cut itself
        ip("-n", three_hosts["a"], "link", "set", three_hosts["link_a"], "up")
        with open(stop, "w"):
            pass
        returned = raised = 0
        for proc, out in writers:
            ok, errors = map(int, expect_line(out, "result", 120).split()[1:])
            returned, raised = returned + ok, raised + errors
            assert proc.wait(30) == 0
        owner.stdin.write("go\n")
        owner.stdin.flush()
        final = int(expect_line(owner_out, "final", 60).split()[1])
        print(f"returned {returned}, raised {raised}, counter {final}")
        assert final == returned, (f"{returned} writes returned, {raised} raised ShareError, "
                                   f"but the counter is {final}")
        assert owner.wait(30) == 0
    finally:
        for proc in (owner, *(p for p, _ in writers)):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
