"""Share(exactly_once=True) across three network namespaces: one host's link is cut
mid-map (the scaffold of `test_multihost_netns.py`). The head in C serves a Share on the
pool's transport; hosts A and B each run two workers that add 1 per item. After A's link
goes down, A's in-flight items run again on B: results come once, and the exactly-once
Share's counter equals the items (the plain Share's may exceed them: at least once).
Needs root and `ip netns`; nothing is routed outside the namespaces."""

from __future__ import annotations

import collections
import json
import os
import textwrap

import pytest

from tests.conftest import wait_gone
from tests.integration.test_multihost_netns import KEY, _descendants, _spawn
from tests.netns import expect_line, ip

PORT = 47140
ITEMS = 300

_HEAD = """
    import json, os, time
    from skprocessing import Pool, Share

    pool = Pool(0, transport="tcp://0.0.0.0:{port}?heartbeat=0.2&dead_after=1.0",
                key=os.environ["SKPROCESSING_KEY"])
    share = Share(transport=pool, exactly_once={exactly_once})
    share.counter = 0

    def work(x):
        share.counter += 1
        time.sleep(0.02)
        return x, os.getpid()

    print("LISTENING", pool.address, flush=True)
    deadline = time.monotonic() + 60
    while pool.status()["workers"] < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    print("WORKERS", pool.status()["workers"], flush=True)
    results = []
    for value in pool.unordered_imap(work, range({items}), chunksize=2):
        results.append(value)
        if len(results) == 60:
            print("CUT-NOW", flush=True)
    print("RESULT", json.dumps({{"results": results, "counter": share.counter,
                                 "lost": pool.status()["lost_workers"]}}), flush=True)
    share.stop()
    pool.close(30)
    print("CLOSED", flush=True)
"""


@pytest.mark.timeout(180)
@pytest.mark.parametrize("exactly_once", [False, True])
def test_a_host_link_cut_mid_map_counts_each_item_once(three_hosts, exactly_once):
    head = agent_a = agent_b = None
    pids: list[int] = []
    try:
        head, head_out, head_log = _spawn(three_hosts["c"], ["-c", textwrap.dedent(_HEAD).format(
            port=PORT, items=ITEMS, exactly_once=exactly_once)])
        expect_line(head_out, "LISTENING", 30)
        worker_args = ["--workers", "2", "--heartbeat", "0.2", "--dead-after", "1.0",
                       "--log-every", "1"]
        agent_a, _, _ = _spawn(three_hosts["a"], ["-m", "skprocessing", "worker",
                               f"tcp://{three_hosts['c_from_a']}:{PORT}", *worker_args,
                               "--give-up", "4"])
        agent_b, _, _ = _spawn(three_hosts["b"], ["-m", "skprocessing", "worker",
                               f"tcp://{three_hosts['c_from_b']}:{PORT}", *worker_args,
                               "--give-up", "120"])
        assert expect_line(head_out, "WORKERS", 60) == "WORKERS 4", head_log[-10:]
        pids = [head.pid, *_descendants(agent_a.pid), agent_a.pid,
                *_descendants(agent_b.pid), agent_b.pid]
        expect_line(head_out, "CUT-NOW", 60)
        ip("-n", three_hosts["a"], "link", "set", three_hosts["link_a"], "down")
        report = json.loads(expect_line(head_out, "RESULT", 90).split(" ", 1)[1])
        expect_line(head_out, "CLOSED", 40)

        counts = collections.Counter(value for value, _ in report["results"])
        assert sorted(counts) == list(range(ITEMS)) and max(counts.values()) == 1
        assert report["lost"] >= 2, report  # A's two workers
        if exactly_once:
            assert report["counter"] == ITEMS
        else:
            assert report["counter"] >= ITEMS  # at least once: a lost run's writes count too
        assert agent_a.wait(30) == 1  # cut off: it gives up
        assert head.wait(30) == 0
        agent_b.terminate()
        assert agent_b.wait(30) == 0
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
