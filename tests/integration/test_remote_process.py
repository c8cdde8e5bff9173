"""`process.start(on=pool)`: an Skprocess on a pool worker, with the whole lifecycle,
tell/listen, stop, kill, timers, lives and timeouts, and the loss of its host. Over ZeroMQ
with worker agents on 127.0.0.1 (the agents stand in for other hosts), and over the
local transport."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from skprocessing import (Pool, ProcessDiedError, ProcessTimeoutError, ResultTimeoutError,
                          RunError, Skprocess, StateError)
from tests.conftest import pid_alive, wait_gone
from tests.integration.test_zmq_pool import FAST, KEY, _agent, _descendants, _stop, _until


class Lifecycle(Skprocess):
    """Every hook, counted; fails its first two runs (three lives)."""

    def __init__(self, runs: int):
        self.process_config.runs = runs
        self.process_config.lives = 3
        self.failures_left = 2
        self.calls = {"prerun": 0, "run": 0, "postrun": 0, "onfinish": 0}

    def __prerun__(self):
        self.calls["prerun"] += 1

    def __run__(self):
        self.calls["run"] += 1
        if self.failures_left:
            self.failures_left -= 1
            raise ValueError("not yet")
        time.sleep(0.01)

    def __postrun__(self):
        self.calls["postrun"] += 1

    def __onfinish__(self):
        self.calls["onfinish"] += 1

    def __result__(self):
        return {"pid": os.getpid(), "calls": self.calls}


class Echo(Skprocess):
    """Answers every tell until stopped; tells its own pid first."""

    def __init__(self):
        self.process_config.runs = None  # until stop()
        self.told_pid = False

    def __prerun__(self):
        if not self.told_pid:
            self.tell(("pid", os.getpid()))
            self.told_pid = True

    def __run__(self):
        message = self.listen(timeout=0.05)
        if message is not None:
            self.tell(("echo", message))

    def __onfinish__(self):
        self.tell("finishing")

    def __result__(self):
        return "stopped cleanly"


class Sleeper(Skprocess):
    def __init__(self, seconds: float, timeout: float | None = None):
        self.seconds = seconds
        self.process_config.runs = 1
        self.process_config.timeouts.run = timeout

    def __run__(self):
        time.sleep(self.seconds)


class Broken(Skprocess):
    def __init__(self):
        self.process_config.runs = 1

    def __run__(self):
        raise KeyError("broken on purpose")


@pytest.fixture
def zmq_head():
    """A head that starts no worker itself, and one agent (2 workers) joined to it."""
    with Pool(0, transport="tcp://127.0.0.1" + FAST, key=KEY) as pool:
        agent = _agent(pool.address, 2)
        try:
            assert _until(lambda: pool.status()["workers"] == 2)
            yield pool, agent
        finally:
            pids = _descendants(agent.pid) + [agent.pid]
            pool.close(30)
            _stop(agent, pids)


def _pid_message(process: Skprocess) -> int:
    kind, pid = process.listen(timeout=20)
    assert kind == "pid"
    return pid


@pytest.mark.timeout(120)
def test_the_whole_lifecycle_runs_on_an_agents_worker_with_lives_and_timers(zmq_head):
    pool, agent = zmq_head
    process = Lifecycle(runs=4)
    process.start(on=pool)
    result = process.result.timeout(60)()
    assert result["pid"] in _descendants(agent.pid) and result["pid"] != os.getpid()
    # two failed lives (a run each), then four good runs; onfinish once, at the end
    assert result["calls"] == {"prerun": 6, "run": 6, "postrun": 4, "onfinish": 1}
    assert process.current_run == 4
    assert process.error is None
    # the two failed runs stay out of the run timer (as in suitkaise)
    assert process.timers.run.num_times == 4 and process.timers.full_run.num_times == 4
    assert process.__run__.timer.total_time > 0.03  # the timers came home
    assert not process.is_alive


@pytest.mark.timeout(120)
def test_tell_listen_current_run_and_stop_work_across_the_transport(zmq_head):
    pool, agent = zmq_head
    process = Echo()
    process.start(on=pool)
    pid = _pid_message(process)
    assert pid in _descendants(agent.pid)
    for word in ("one", "two", "three"):
        process.tell(word)
        assert process.listen(timeout=20) == ("echo", word)
    assert _until(lambda: process.current_run >= 5)  # reported live by the worker
    assert process.is_alive
    process.stop()
    assert process.result.timeout(30)() == "stopped cleanly"
    assert process.listen(timeout=10) == "finishing"
    assert process.current_run >= 5
    assert pid_alive(pid)  # the worker lives on for the pool's next tasks
    assert pool.map(abs, [-1, -2]) == [1, 2]


@pytest.mark.timeout(120)
def test_errors_and_section_timeouts_arrive_with_their_types(zmq_head):
    pool, _ = zmq_head
    broken = Broken()
    broken.start(on=pool)
    with pytest.raises(RunError, match="broken on purpose") as info:
        broken.result.timeout(30)()
    assert "broken on purpose" in str(info.value.__cause__)  # the worker's traceback
    assert isinstance(broken.error, RunError)

    slow = Sleeper(10.0, timeout=0.3)
    slow.start(on=pool)
    with pytest.raises(ProcessTimeoutError, match="Timeout in __run__ after 0.3s"):
        slow.result.timeout(30)()


@pytest.mark.timeout(120)
def test_kill_ends_the_remote_process_and_the_agent_replaces_its_worker(zmq_head):
    pool, agent = zmq_head
    process = Echo()
    process.start(on=pool)
    pid = _pid_message(process)
    process.kill()
    assert not process.is_alive
    assert process.result() is None  # kill(): no result, as for a local process
    assert wait_gone(pid, 15), "the remote process survived kill()"
    assert _until(lambda: pool.status()["workers"] == 2)
    assert pool.map(abs, range(-5, 0)) == [5, 4, 3, 2, 1]


@pytest.mark.timeout(120)
def test_a_lost_host_fails_its_process_within_the_heartbeat_limit_and_nothing_hangs():
    with Pool(0, transport="tcp://127.0.0.1" + FAST, key=KEY) as pool:
        agent = _agent(pool.address, 1)
        pids: list[int] = []
        try:
            assert _until(lambda: pool.status()["workers"] == 1)
            process = Echo()
            process.start(on=pool)
            pid = _pid_message(process)
            pids = _descendants(agent.pid) + [agent.pid]
            # The host is gone: no goodbye. (A stopped process on this host would be
            # waited for, being alive; a frozen other host is test_remote_process_netns's.)
            for p in pids:
                os.kill(p, signal.SIGKILL)
            began = time.monotonic()
            with pytest.raises(ProcessDiedError, match="lost"):
                process.result.timeout(20)()  # dead_after is 1 s
            assert time.monotonic() - began < 15
            assert process.listen(timeout=0.1) is None
        finally:
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            pool.close(30)
            _stop(agent, pids)


_HEAD = """
import os, sys, time
from skprocessing import Pool, Skprocess

class Forever(Skprocess):
    def __init__(self):
        self.process_config.runs = None

    def __prerun__(self):
        if self.current_run == 0:
            self.tell(os.getpid())

    def __run__(self):
        time.sleep(0.05)

pool = Pool(0, transport="tcp://127.0.0.1?heartbeat=0.2&dead_after=1.0", key={key!r})
print(pool.address, flush=True)
process = Forever()
process.start(on=pool)
print(process.listen(timeout=30), flush=True)
time.sleep(600)
"""


@pytest.mark.timeout(120)
def test_a_remote_process_does_not_outlive_its_parent():
    head = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_HEAD.format(key=KEY))],
                            stdout=subprocess.PIPE, text=True)
    agent = None
    pids: list[int] = []
    try:
        address = head.stdout.readline().strip()
        agent = _agent(address, 1)
        pid = int(head.stdout.readline())
        pids = _descendants(agent.pid) + [agent.pid]
        assert pid in pids and pid_alive(pid)
        head.kill()
        head.wait(10)
        assert wait_gone(pid, 15), "the remote process outlived its parent"
    finally:
        if head.poll() is None:
            head.kill()
        if agent is not None:
            _stop(agent, pids)


@pytest.mark.timeout(60)
def test_on_a_local_pool_and_the_argument_errors():
    with Pool(2) as pool:
        process = Lifecycle(runs=2)
        process.start(on=pool)
        result = process.result.timeout(30)()
        assert result["pid"] in pool.worker_pids
        assert result["calls"]["onfinish"] == 1
        with pytest.raises(ValueError, match="not both"):
            Echo().start(on=pool, transport="local")
        with pytest.raises(TypeError, match="expected a Pool"):
            Echo().start(on=object())
        with pytest.raises(StateError, match="already started"):
            process.start(on=pool)
    with Pool(0, transport="tcp://127.0.0.1", key=KEY) as head:
        began = time.monotonic()
        with pytest.raises(ResultTimeoutError, match="no worker"):
            Echo().start(on=head, timeout=0.5)
        assert time.monotonic() - began < 10


@pytest.mark.timeout(60)
def test_the_pools_per_item_timeout_does_not_end_a_remote_process():
    with Pool(1, timeout=0.3) as pool:  # a default per-item limit for every map
        process = Sleeper(1.0)
        process.start(on=pool)
        assert process.result.timeout(30)() is None
        assert process.timers.run.total_time >= 1.0
        with pytest.raises(ProcessTimeoutError):
            pool.map(time.sleep, [2.0])  # the limit still holds for the pool's own items


class Instant(Skprocess):
    def __init__(self):
        self.process_config.runs = 0  # over as soon as it starts

    def __run__(self):
        pass

    def __result__(self):
        return os.getpid()


@pytest.mark.timeout(120)
def test_a_process_over_before_the_parent_looks_still_counts_as_started():
    import threading
    busy = threading.Event()

    def spin():  # keeps the parent's GIL contended, so the worker often finishes first
        while not busy.is_set():
            sum(range(1000))
    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        with Pool(2) as pool:
            for _ in range(100):
                process = Instant()
                process.start(on=pool)
                assert process.result.timeout(30)() in pool.worker_pids
    finally:
        busy.set()
        spinner.join()
