"""The Pool on Ray and on Dask: the engine places the workers, our transport carries the
work, so every Pool guarantee holds there too. Each test runs on both engines (one local
Ray, one LocalCluster for the session; see conftest.py)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from skprocessing import Pool, ProcessError, ProcessTimeoutError, Share
from skprocessing.engines._placed import REACH_FAILED
from skprocessing.errors import TransportError
from tests.conftest import wait_gone
from tests.core.test_pool import Adder, Squarer
from tests.engines._procs import parent, wait_until
from tests.engines.conftest import ENGINES, slot_processes_gone
from tests.integration.test_remote_process import Echo

pytestmark = [pytest.mark.parametrize("engine", ENGINES, indirect=True),
              pytest.mark.timeout(180)]


@pytest.fixture
def pool(engine):
    _, transport, _ = engine
    with Pool(transport=transport) as pool:
        yield pool


def _engine_process(worker_pid: int) -> int:
    """The engine's process a worker runs under (worker -> our launcher -> it)."""
    return parent(parent(worker_pid))


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace")


def slow_identity(x):
    time.sleep(0.05)
    return x


def test_workers_are_the_clusters_cpus_placed_on_the_engine_and_run_closures(engine, pool):
    name, _, client = engine
    assert pool.workers == 2  # the cluster's CPU count, not given
    k = 3
    assert pool.map(lambda x: x * k, range(200)) == [x * 3 for x in range(200)]
    assert sorted(pool.unordered_map(lambda x: -x, range(50))) == sorted(-x for x in range(50))
    assert wait_until(lambda: len(pool.worker_pids) == 2, 90)  # the second may place later
    workers = pool.worker_pids
    assert os.getpid() not in workers
    hosts = {_engine_process(pid) for pid in workers}
    if name == "ray":
        assert all("ray::" in _cmdline(pid) for pid in hosts), [_cmdline(p) for p in hosts]
    else:
        assert hosts <= set(client.run(os.getpid).values())


def test_imap_streams_results_while_its_input_is_still_being_read(pool):
    read = []

    def items():
        for i in range(100_000):
            read.append(i)
            yield i

    with pool.imap(lambda x: x + 1, items()) as results:
        assert next(results) == 1
        assert len(read) < 100_000  # the first result came before the input was read
        assert [next(results) for _ in range(999)] == list(range(2, 1001))
    assert len(read) < 100_000  # closing it read no further


def test_a_raising_item_raises_its_exception_with_the_workers_traceback(pool):
    with pytest.raises(ZeroDivisionError) as info:
        pool.map(lambda x: 1 / x, [1, 2, 0, 4])
    assert "ZeroDivisionError" in info.value.__cause__.text
    assert pool.map(abs, [-1, -2]) == [1, 2]  # the pool goes on


def test_a_per_item_timeout_ends_that_item_and_the_pool_goes_on(pool):
    with pytest.raises(ProcessTimeoutError, match="timeout"):
        pool.map(lambda s: time.sleep(s) or s, [0, 600], timeout=2)
    assert pool.map(abs, [-1, -2, -3]) == [1, 2, 3]  # its worker was replaced


def test_skprocess_items_run_their_lifecycle(pool):
    assert pool.map(Squarer, [1, 2]) == [(6, 3, 3), (9, 3, 3)]
    assert pool.star().map(Adder, [(1, 2), (3, 4)]) == [3, 7]


def test_a_share_counts_exactly_from_tasks(pool):
    share = Share()
    try:
        share.counter = 0

        def bump(_):
            share.counter += 1

        pool.map(bump, range(300), chunksize=7)
        assert share.counter == 300
    finally:
        share.stop()


def test_an_skprocess_started_on_the_pool_talks_by_tell_and_listen(pool):
    process = Echo()
    process.start(on=pool)
    kind, pid = process.listen(timeout=60)
    assert kind == "pid" and pid in pool.worker_pids  # it runs on an engine-placed worker
    for word in ("one", "two"):
        process.tell(word)
        assert process.listen(timeout=30) == ("echo", word)
    process.stop()
    assert process.result.timeout(60)() == "stopped cleanly"
    assert pool.map(abs, [-5]) == [5]


def test_killing_an_engine_process_mid_map_gives_every_result_exactly_once(engine):
    _, transport, _ = engine
    with Pool(transport=transport, retries=2) as pool:
        assert pool.map(abs, [-1, -2], chunksize=1) == [1, 2]
        victim = pool.worker_pids[0]
        engine_pid = _engine_process(victim)
        with pool.imap(slow_identity, range(60), chunksize=1) as results:
            got = [next(results) for _ in range(5)]
            os.kill(engine_pid, signal.SIGKILL)  # the Ray actor / the Dask worker process
            got += list(results)
        assert got == list(range(60))
        assert wait_gone(victim, 30)
        # the pool placed a new slot in its place, which works
        assert wait_until(lambda: len(pool.worker_pids) == 2 and victim not in pool.worker_pids, 90)
        assert pool.map(abs, range(-20, 0)) == list(range(20, 0, -1))
        assert pool.status()["duplicates_dropped"] == 0


def test_close_leaves_nothing_placed_on_the_engine(engine):
    name, transport, client = engine
    with Pool(transport=transport) as pool:
        assert pool.map(abs, [-1, -2]) == [1, 2]
        workers = pool.worker_pids
        hosts = {_engine_process(pid) for pid in workers}
        assert len(pool.transport.placed()) == 2
    assert pool.transport.placed() == []
    assert all(wait_gone(pid, 30) for pid in workers)
    assert slot_processes_gone(name, client)
    if name == "ray":
        assert all(wait_gone(pid, 30) for pid in hosts)  # the actors were killed
    else:
        assert hosts <= set(client.run(os.getpid).values())  # the user's cluster lives on


def test_workers_that_cannot_reach_the_caller_fail_the_pool_naming_the_address(engine):
    _, transport, _ = engine
    with Pool(transport=transport) as pool:
        engine_transport = pool.transport
        address = pool.address
        assert pool.map(abs, [-1]) == [1]
    # The same transport kind, fresh, whose placed worker entries cannot connect.
    from skprocessing.transports import get_transport
    fresh = get_transport(transport) if isinstance(transport, str) else type(engine_transport)(transport)
    try:
        listener = fresh.listen()
        handles = [fresh.start(_cannot_connect) for _ in range(2)]
        assert [h.wait(60) for h in handles] == [REACH_FAILED] * 2
        with pytest.raises(TransportError, match=listener.address.replace(".", r"\.")):
            fresh.start(_cannot_connect)
        listener.close()
    finally:
        fresh.close()
    assert address != listener.address


def _cannot_connect():
    raise TransportError("no route to the caller (planted by the test)")


def test_the_engine_going_away_fails_a_running_map_naming_it(engine, tmp_path):
    name, _, client = engine
    if name == "dask":
        import distributed
        own = distributed.Client(client.scheduler.address, set_as_default=False)
        pool = Pool(transport=own)
        try:
            running = pool.map.background()(slow_identity, range(2000), chunksize=1)
            assert wait_until(lambda: pool.status()["done"] > 5, 60)
            own.close()
            with pytest.raises(ProcessError, match="Dask"):
                running.result(timeout=90)
        finally:
            pool.terminate()
        return
    # Ray: a driver of its own (a script) connects, maps, and shuts Ray down mid-map.
    script = tmp_path / "gone.py"
    script.write_text(_RAY_GONE)
    import subprocess
    import sys
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=150, env=dict(os.environ, RAY_ADDRESS=_ray_address()))
    assert "RAISED ProcessError" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Ray" in done.stdout.split("RAISED ProcessError", 1)[1]


def _ray_address() -> str:
    import ray
    return ray.get_runtime_context().gcs_address


_RAY_GONE = """
import threading, time
import ray
from skprocessing import Pool

def slow(x):
    time.sleep(0.05)
    return x

pool = Pool(transport="ray")
running = pool.map.background()(slow, range(4000), chunksize=1)
while pool.status()["done"] < 5:
    time.sleep(0.05)
ray.shutdown()
try:
    running.result(timeout=90)
    print("FINISHED")
except Exception as exc:
    print("RAISED", type(exc).__name__, exc, flush=True)
pool.terminate()
"""
