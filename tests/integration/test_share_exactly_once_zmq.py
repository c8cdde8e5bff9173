"""Share(exactly_once=True) over ZeroMQ on 127.0.0.1: a worker host killed mid-map.

Two worker agents ("hosts") join a head; a Share is served on the pool's transport. The
host running the held item is killed whole (agent and worker, SIGKILL) after items of its
chunk wrote; the head declares it lost after `dead_after` and runs the chunk on the other
host. Results come once either way; the plain Share's counter shows the lost run's writes
(at least once), the exactly-once Share's counter equals the items.
"""

from __future__ import annotations

import os
import signal

import pytest

from skprocessing import Pool, Share
from tests.core.test_share_exactly_once import ITEMS, _held_pid, _runs, count_then_hold
from tests.integration.test_zmq_pool import FAST, KEY, _agent, _descendants, _stop, _until


@pytest.mark.timeout(150)
@pytest.mark.parametrize("exactly_once", [False, True])
def test_a_worker_host_killed_mid_map(tmp_path, exactly_once):
    folder = str(tmp_path)
    with Pool(0, transport="tcp://127.0.0.1" + FAST, key=KEY) as pool:
        share = Share(transport=pool, exactly_once=exactly_once)
        share.counter = 0
        share.seen = []
        agents = [_agent(pool.address, 1), _agent(pool.address, 1)]
        pids: list[int] = []
        try:
            assert _until(lambda: pool.status()["workers"] == 2, 60)
            pids = [p for agent in agents for p in _descendants(agent.pid) + [agent.pid]]
            items = [(share, x, folder, 90) for x in range(ITEMS)]
            future = pool.map.background()(count_then_hold, items, chunksize=4)
            held = _held_pid(folder)
            host = next(agent for agent in agents if held in _descendants(agent.pid))
            os.kill(host.pid, signal.SIGKILL)  # the whole host at once: agent and worker
            os.kill(held, signal.SIGKILL)
            assert future.result(timeout=120) == list(range(ITEMS))  # results: exactly once
            assert pool.status()["lost_workers"] >= 1
            runs = _runs(folder)
            assert len(runs) > ITEMS and sorted(set(runs)) == list(range(ITEMS))
            if exactly_once:
                assert share.counter == ITEMS
                assert sorted(share.seen) == list(range(ITEMS))
            else:
                # At least once: the lost run's writes that left its host count too.
                assert ITEMS <= share.counter <= len(runs)
                assert len(share.seen) == share.counter
        finally:
            share.stop()
            pool.close(30)
            _stop(agents[0], [])
            _stop(agents[1], pids)  # both stopped: then nothing of either may be left
