"""`process.start(on=pool)` across three "hosts" (network namespaces joined by veth pairs):
a head in C bound to every interface, one worker agent in A and one in B (one worker
each, so two processes land on two hosts). Each process says which host it runs on and
echoes over tell/listen; then B's link is cut: B's process ends with `ProcessDiedError`
within the heartbeat limit, A's ends normally. Needs root and `ip netns` (skipped with
the reason otherwise); the namespaces are always deleted.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import textwrap
import threading

import pytest

from tests.netns import expect_line, ip

KEY = "remote-process-netns-key-5e1d"
PORT = 47320

_HEAD = textwrap.dedent("""
    import os, sys
    from skprocessing import Pool, Skprocess

    class Where(Skprocess):
        def __init__(self):
            self.process_config.runs = None

        def __run__(self):
            message = self.listen(timeout=0.05)
            if message is not None:
                self.tell((message, os.readlink("/proc/self/ns/net")))

        def __result__(self):
            return "finished on " + os.readlink("/proc/self/ns/net")

    url = "tcp://0.0.0.0:{port}?heartbeat=0.2&dead_after=1.0"
    with Pool(0, transport=url, key="{key}") as pool:
        print("ready", flush=True)
        processes = [Where(), Where()]
        for process in processes:
            process.start(on=pool, timeout=60)      # one per host: each agent has one worker
        for process in processes:
            process.tell("where")
            print("where", *process.listen(timeout=30), flush=True)
        sys.stdin.readline()                        # the test cuts B's link now
        for process in processes:
            process.stop()
        for process in processes:
            try:
                print("outcome", process.result.timeout(30)(), flush=True)
            except Exception as exc:
                print("outcome", type(exc).__name__, exc, flush=True)
""")


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line.strip())


@pytest.mark.timeout(180)
def test_processes_run_on_two_hosts_and_a_cut_link_fails_only_its_own(three_hosts):
    env = dict(os.environ, SKPROCESSING_KEY=KEY, PYTHONPATH=os.getcwd())
    spaces = {ns: f"net:[{os.stat(f'/run/netns/{three_hosts[ns]}').st_ino}]" for ns in "abc"}
    head = subprocess.Popen(["ip", "netns", "exec", three_hosts["c"], sys.executable, "-c",
                             _HEAD.format(port=PORT, key=KEY)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    out: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(head.stdout, out), daemon=True).start()
    agents: list[subprocess.Popen] = []

    def expect(word: str, timeout: float) -> str:
        try:
            return expect_line(out, word, timeout)
        except AssertionError as failure:
            head.kill()
            raise AssertionError(f"{failure}\nhead's stderr: {head.stderr.read()[-3000:]}") from None

    try:
        expect("ready", 60)
        for ns in "ab":
            agents.append(subprocess.Popen(
                ["ip", "netns", "exec", three_hosts[ns], sys.executable, "-m", "skprocessing",
                 "worker", f"tcp://{three_hosts[f'c_from_{ns}']}:{PORT}", "--workers", "1",
                 "--heartbeat", "0.2", "--dead-after", "1.0", "--give-up", "30", "--quiet"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        where = [expect("where", 90).split() for _ in range(2)]
        assert all(w[1] == "where" for w in where)
        assert sorted(w[2] for w in where) == sorted([spaces["a"], spaces["b"]])
        # B's link goes down, inside B: its process is cut off from its parent.
        ip("-n", three_hosts["b"], "link", "set", three_hosts["link_b"], "down")
        head.stdin.write("go\n")
        head.stdin.flush()
        outcomes = [expect("outcome", 60) for _ in range(2)]
        assert f"outcome finished on {spaces['a']}" in outcomes, outcomes
        assert any("ProcessDiedError" in o and "lost" in o for o in outcomes), outcomes
        head.stdin.close()
        assert head.wait(60) == 0, head.stderr.read()[-3000:]
    finally:
        for process in (head, *agents):
            if process.poll() is None:
                process.kill()
                process.wait(10)
