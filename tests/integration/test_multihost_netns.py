"""Three hosts in one machine: a Pool head and two worker agents, each in its own network
namespace, joined by veth pairs with private addresses; one host's link is cut mid-map.

    namespace C (head)                      namespace A              namespace B
    Pool(0, tcp://0.0.0.0:PORT, key)
      10.238.N.1/24 ────────── veth ─────── 10.238.N.2/24
      10.239.N.1/24 ────────── veth ────────────────────────────────── 10.239.N.2/24
                                            python -m skprocessing    python -m skprocessing
                                              worker tcp://10.238.N.1   worker tcp://10.239.N.1

(the `three_hosts` fixture, `tests/integration/conftest.py`). The head maps slow items over
both hosts; after some results, the test takes A's link down (`ip link set ... down`
inside A). The head must notice within its heartbeat limit,
move A's in-flight items to B at no cost to them, and deliver every result exactly once.
A's agent, cut off, stops its workers and gives up after `--give-up` seconds. Nothing is
routed outside the namespaces; they are always deleted. Needs root and `ip netns`.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import sys
import textwrap
import threading

import pytest

from tests.conftest import wait_gone
from tests.netns import expect_line, ip

KEY = "multihost-test-key-3e7a41"
PORT = 47100
ITEMS = 300



_HEAD = """
    import json, os, sys, time
    from skprocessing.core.pool import Pool

    def work(x):
        time.sleep(0.02)
        return x, os.getpid()

    pool = Pool(0, transport="tcp://0.0.0.0:{port}?heartbeat=0.2&dead_after=1.0", key=os.environ["SKPROCESSING_KEY"])
    print("LISTENING", pool.address, flush=True)
    deadline = time.monotonic() + 60
    while pool.status()["workers"] < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    print("WORKERS", pool.status()["workers"], flush=True)
    results = []
    began = time.monotonic()
    for value in pool.unordered_imap(work, range({items}), chunksize=2):
        results.append(value)
        if len(results) == 60:
            print("CUT-NOW", flush=True)
    status = pool.status()
    print("RESULT", json.dumps({{"results": results, "seconds": time.monotonic() - began,
                                 "lost": status["lost_workers"], "workers": status["workers"],
                                 "duplicates": status["duplicates_dropped"]}}), flush=True)
    pool.close(30)
    print("CLOSED", flush=True)
"""


def _spawn(ns: str, argv: list[str]) -> tuple[subprocess.Popen, queue.Queue, list[str]]:
    env = dict(os.environ, SKPROCESSING_KEY=KEY, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    everything: list[str] = []

    def pump() -> None:
        for line in proc.stdout:
            everything.append(line.rstrip())
            lines.put(line.strip())
    threading.Thread(target=pump, daemon=True).start()
    return proc, lines, everything




def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    children[int(f.read().rsplit(")", 1)[1].split()[1])].append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


@pytest.mark.timeout(180)
def test_a_map_across_two_hosts_survives_cutting_ones_link_each_result_once(three_hosts):
    head = agent_a = agent_b = None
    pids: list[int] = []
    try:
        head, head_out, head_log = _spawn(three_hosts["c"], ["-c", textwrap.dedent(_HEAD).format(
            port=PORT, items=ITEMS)])
        expect_line(head_out, "LISTENING", 30)
        worker_args = ["--workers", "2", "--heartbeat", "0.2", "--dead-after", "1.0",
                       "--log-every", "1"]
        agent_a, _, log_a = _spawn(three_hosts["a"], ["-m", "skprocessing", "worker",
                                   f"tcp://{three_hosts['c_from_a']}:{PORT}", *worker_args,
                                   "--give-up", "4"])
        agent_b, _, log_b = _spawn(three_hosts["b"], ["-m", "skprocessing", "worker",
                                   f"tcp://{three_hosts['c_from_b']}:{PORT}", *worker_args,
                                   "--give-up", "120"])
        assert expect_line(head_out, "WORKERS", 60) == "WORKERS 4"
        pids_a = _descendants(agent_a.pid) + [agent_a.pid]
        pids_b = _descendants(agent_b.pid) + [agent_b.pid]
        pids = [head.pid, *pids_a, *pids_b]
        expect_line(head_out, "CUT-NOW", 60)
        ip("-n", three_hosts["a"], "link", "set", three_hosts["link_a"], "down")
        report = json.loads(expect_line(head_out, "RESULT", 60).split(" ", 1)[1])
        expect_line(head_out, "CLOSED", 40)

        values = [value for value, _ in report["results"]]
        counts = collections.Counter(values)
        assert sorted(counts) == list(range(ITEMS)), "an item is missing"
        assert max(counts.values()) == 1, f"delivered twice: {[v for v, c in counts.items() if c > 1]}"
        by_host = collections.Counter("a" if pid in pids_a else "b" if pid in pids_b else "?"
                                      for _, pid in report["results"])
        assert by_host["a"] > 0 and by_host["b"] > 0 and by_host["?"] == 0, by_host
        assert report["lost"] >= 2 and report["workers"] == 2, report  # A's two workers

        # A, cut off, loses its head, stops its workers, and gives up with a message.
        assert agent_a.wait(30) == 1
        assert any("giving up: no head" in line for line in log_a), log_a[-10:]
        assert any("lost the head" in line for line in log_a), log_a[-10:]
        assert head.wait(30) == 0
        agent_b.terminate()
        assert agent_b.wait(30) == 0
        assert any("items/s" in line for line in log_b)
        leftover = [pid for pid in pids if not wait_gone(pid, 10)]
        assert not leftover, f"orphans: {leftover}"
    finally:
        for proc in (agent_a, agent_b, head):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
