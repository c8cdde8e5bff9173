"""A Pool over ZeroMQ with workers that join by address: a head, worker agents, loss of
workers and hosts, security under load, status. Loopback (127.0.0.1) only; the
multi-host version with network namespaces is `test_multihost_netns.py`."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import zmq

from skprocessing import ProcessDiedError, ProcessTimeoutError, Skprocess
from skprocessing.errors import ResultTimeoutError, StateError
from skprocessing.core.pool import Pool
from skprocessing.core.pool._chunks import MAX_CHUNK
from skprocessing.core.pool._messages import AGENT, HELLO
from skprocessing.serializers.codec import Codec
from skprocessing.transports.zmq.protocol import DATA, pack_envelope
from tests.conftest import pid_alive, wait_gone
from tests.transports._raw import RawPeer

KEY = "zmq-pool-test-key-8c1f0e"
FAST = "?heartbeat=0.2&dead_after=1.0"  # detect lost hosts in about a second


def _env() -> dict[str, str]:
    return dict(os.environ, SKPROCESSING_KEY=KEY, PYTHONUNBUFFERED="1")


def _agent(address: str, workers: int = 2, *extra: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "skprocessing", "worker", address, "--workers", str(workers),
         "--heartbeat", "0.2", "--dead-after", "1.0", "--log-every", "0.5", *extra],
        env=dict(_env(), **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _until(check, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def _unchanged_for(counter: list[int], seconds: float) -> bool:
    before = counter[0]
    time.sleep(seconds)
    return counter[0] == before


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        out += kids
        todo += kids
    return out


def _stop(agent: subprocess.Popen, pids: list[int]) -> str:
    if agent.poll() is None:
        agent.send_signal(signal.SIGTERM)
    try:
        _, err = agent.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        agent.kill()
        _, err = agent.communicate(timeout=5)
    leftover = [p for p in pids if not wait_gone(p, 10)]
    assert not leftover, f"orphans: {leftover}"
    return err


class Square(Skprocess):
    def __init__(self, x):
        self.process_config.runs = 1
        super().__init__()
        self.x = x

    def __run__(self):
        self.value = self.x * self.x

    def __result__(self):
        return self.value


def fails_on_three(x):
    if x == 3:
        raise KeyError(f"no {x}")
    return x


def slow(x):
    time.sleep(0.02)
    return x


def slow_pid(x):
    time.sleep(0.01)
    return x, os.getpid()


@pytest.mark.timeout(120)
def test_a_head_waits_for_workers_and_an_agent_joins_with_everything_working():
    with Pool(0, transport="tcp://127.0.0.1" + FAST, key=KEY) as pool:
        assert pool.status()["workers"] == 0
        early = pool.map.background()(lambda x: x * 2, range(50))  # before any worker
        time.sleep(0.3)
        assert not early.done()
        agent = _agent(pool.address, 2)
        pids: list[int] = []
        try:
            assert early.result(30) == [x * 2 for x in range(50)]
            assert _until(lambda: pool.status()["workers"] == 2)
            pids = _descendants(agent.pid) + [agent.pid]
            offset = 7
            assert pool.map(lambda x: x + offset, range(1000)) == [x + offset for x in range(1000)]
            assert sorted(pool.unordered_map(abs, range(-20, 0))) == list(range(1, 21))
            assert list(pool.imap(str, iter(range(5)))) == ["0", "1", "2", "3", "4"]
            assert sorted(pool.unordered_imap(abs, [-1, -2])) == [1, 2]
            assert pool.star().map(pow, [(2, 3), (3, 2)]) == [8, 9]
            assert pool.map(Square, [1, 2, 3]) == [1, 4, 9]
            with pytest.raises(KeyError, match="no 3") as info:
                pool.map(fails_on_three, range(6), chunksize=2)
            assert "fails_on_three" in str(info.value.__cause__)  # the remote traceback
            with pytest.raises(ProcessTimeoutError):
                pool.map(time.sleep, [0.0, 5.0], timeout=0.5)
            assert _until(lambda: pool.status()["workers"] == 2)  # the agent replaced it
            status = pool.status()
            assert status["agents"] and status["done"] >= 1000
            assert status["in_flight"] == 0
        finally:
            pool.close(30)
            err = _stop(agent, pids)
    assert "joined the head" in err and "items/s" in err and "asked to end worker" in err


@pytest.mark.timeout(60)
def test_a_map_with_no_worker_gives_up_after_its_timeout():
    with Pool(0, transport="tcp://127.0.0.1", key=KEY) as pool:
        time.sleep(1.0)  # the wait is counted from the map, not from the pool's creation
        assert pool.map(abs, [], timeout=0.5) == []
        slow = pool.map.background()(abs, [1], timeout=2.0)
        time.sleep(1.0)
        assert not slow.done()  # still waiting for a worker: 2 s from its start
        began = time.monotonic()
        with pytest.raises(ProcessTimeoutError, match="no worker"):
            pool.map(abs, [1, 2], timeout=0.5)
        assert time.monotonic() - began < 5
        with pytest.raises(ProcessTimeoutError, match="no worker"):
            slow.result(10)


@pytest.mark.timeout(120)
def test_a_killed_worker_is_reported_replaced_and_the_next_map_is_fine():
    with Pool(0, transport="tcp://127.0.0.1" + FAST, key=KEY) as pool:
        agent = _agent(pool.address, 2)
        pids: list[int] = []
        try:
            assert pool.map(abs, range(10)) == list(range(10))
            assert _until(lambda: pool.status()["workers"] == 2)
            victim = pool.status()["per_worker"][0]["pid"]
            pids = _descendants(agent.pid) + [agent.pid]
            os.kill(victim, signal.SIGKILL)  # idle: not any item's fault
            assert pool.map(abs, range(200)) == list(range(200))
            # Killed while running items: retried (retries=1) elsewhere, result once each.
            results = pool.unordered_imap(slow_pid, range(300), chunksize=1, retries=1)
            seen = []
            for value, pid in results:
                seen.append(value)
                if len(seen) == 50:
                    os.kill(pid, signal.SIGKILL)
            assert sorted(seen) == list(range(300))
            assert _until(lambda: pool.status()["workers"] == 2)  # replaced by the agent
            assert pool.status()["lost_workers"] >= 2
            pids += _descendants(agent.pid)
        finally:
            pool.close(30)
            err = _stop(agent, pids)
    assert "died" in err and "replacing it" in err


@pytest.mark.timeout(120)
def test_a_lost_host_costs_no_item_its_work_moves_and_each_result_comes_once():
    with Pool(0, transport="tcp://127.0.0.1" + FAST, key=KEY) as pool:
        first, second = _agent(pool.address, 1), _agent(pool.address, 1)
        pids: list[int] = []
        try:
            assert _until(lambda: pool.status()["workers"] == 2)
            pids = _descendants(first.pid) + [first.pid]
            others = _descendants(second.pid) + [second.pid]
            results = pool.unordered_imap(slow, range(400), chunksize=4)  # retries=0
            seen = []
            for value in results:
                seen.append(value)
                if len(seen) == 40:
                    # The whole "host" goes at once: its agent, and with it its worker
                    # (no agent left to report a death: like a host that lost power).
                    os.kill(first.pid, signal.SIGKILL)
            assert sorted(seen) == list(range(400))
            assert pool.status()["lost_workers"] >= 1
            assert pool.status()["workers"] == 1
        finally:
            pool.close(30)
            _stop(second, [])
            _stop(first, pids + others)


def ask_for_death(x):
    if x == 5:
        os._exit(9)
    return x


@pytest.mark.timeout(120)
def test_an_item_that_kills_its_worker_is_named_with_its_host():
    with Pool(0, transport="tcp://127.0.0.1" + FAST, key=KEY) as pool:
        agent = _agent(pool.address, 2)
        pids: list[int] = []
        try:
            with pytest.raises(ProcessDiedError, match=r"item 5 .*host") as info:
                pool.map(ask_for_death, range(10), chunksize=1)
            assert "exited with code 9" in str(info.value)
            assert pool.map(abs, range(10)) == list(range(10))  # the pool goes on
            pids = _descendants(agent.pid) + [agent.pid]
        finally:
            pool.close(30)
            _stop(agent, pids)


@pytest.mark.timeout(60)
def test_the_agent_exits_with_a_message_when_the_head_stays_away():
    agent = subprocess.Popen(
        [sys.executable, "-m", "skprocessing", "worker", "tcp://127.0.0.1:9", "--give-up", "1.5"],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = agent.communicate(timeout=30)
    assert agent.returncode == 1
    assert "giving up: no head at tcp://127.0.0.1:9" in err


@pytest.mark.timeout(120)
def test_the_agents_death_takes_its_workers_with_it():
    with Pool(0, transport="tcp://127.0.0.1" + FAST, key=KEY) as pool:
        agent = _agent(pool.address, 2)
        assert _until(lambda: pool.status()["workers"] == 2)
        workers = _descendants(agent.pid)
        assert workers
        agent.kill()
        agent.wait(10)
        assert all(wait_gone(pid, 10) for pid in workers), "orphaned workers"
        assert _until(lambda: pool.status()["workers"] == 0, 10)
        agent.communicate(timeout=5)


class _Boom:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.timeout(120)
def test_unsigned_tampered_and_replayed_messages_to_a_live_head_are_dropped(tmp_path):
    marker = str(tmp_path / "unpickled")
    evil = pickle.dumps(_Boom(marker))
    with Pool(2, transport="tcp://127.0.0.1", key=KEY) as pool:
        listener = pool._scheduler._listener
        running = pool.map.background()(slow, range(300), chunksize=1)
        time.sleep(0.3)
        assert not running.done()
        # unsigned, from a socket that never shook hands
        stranger = zmq.Context.instance().socket(zmq.DEALER)
        stranger.linger = 0
        stranger.connect(pool.address)
        stranger.send_multipart([b"", evil])
        # forged: a made-up signature, and a signature with the wrong key
        forger = RawPeer(pool.address, b"not the key")
        forger.send([b"\0" * 32, pack_envelope(DATA, 1, [evil]), evil])
        forger.send(forger.message([evil]))
        # a session that has the key: tampered, then replayed messages, and a replayed
        # handshake from another socket
        peer = RawPeer(pool.address, KEY.encode())
        peer.hello()
        # Its first message: a valid pool HELLO of an agent (which is given no work), so
        # the session stays open and the replay below is checked against it.
        greeting = [bytes(f) for f in Codec().encode(HELLO, (AGENT, 1, 0, "intruder", "x"))]
        first = peer.message(greeting)
        tampered = peer.message([greeting[0], b"harmless"])
        tampered[3] = evil
        peer.send(first)
        assert _until(lambda: pool.status()["agents"] == ["intruder"])
        peer.send(tampered)
        peer.send(first)  # replayed
        try:
            assert running.result(60) == list(range(300))
            assert _until(lambda: listener.stats.get("dropped", 0) >= 5), listener.stats
            stats = listener.stats
            assert stats["oversized handshake"] == 2, stats  # 2 forged: not even hashed
            assert stats["bad signature"] == 1, stats  # 1 tampered
            assert stats["unknown sender"] == 1, stats
            assert stats["replayed DATA"] == 1, stats
            assert not os.path.exists(marker), "a payload was unpickled"
            assert pool.map(abs, range(5)) == list(range(5))
            assert pool.status()["workers"] == 2  # the intruders never became workers
        finally:
            stranger.close(0)
            for raw in (forger, peer):
                raw.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("spec", ["zmq", "ipc://", "tcp://127.0.0.1"])
def test_a_pool_starts_its_own_zmq_workers(spec):
    factor = 3
    with Pool(2, transport=spec) as pool:
        assert pool.map(lambda x: x * factor, range(500)) == [x * factor for x in range(500)]
        assert _until(lambda: pool.status()["workers"] == 2)
        pids = pool.worker_pids
        os.kill(pids[0], signal.SIGKILL)
        assert pool.map(abs, range(100)) == list(range(100))  # an idle death costs nothing
        assert _until(lambda: len(pool.worker_pids) == 2)
        pids += pool.worker_pids
    for pid in pids:
        assert wait_gone(pid)
    assert not any(pid_alive(p) for p in pids)


def host_speed(x):
    time.sleep(0.04 if os.environ.get("SKP_TEST_SLOW_HOST") else 0.004)
    return x, os.getpid()


@pytest.mark.timeout(120)
def test_credits_give_a_fast_host_more_work_than_a_slow_one():
    with Pool(0, transport="tcp://127.0.0.1" + FAST, key=KEY) as pool:
        slow_host = _agent(pool.address, 1, SKP_TEST_SLOW_HOST="1")
        fast_host = _agent(pool.address, 1)
        pids: list[int] = []
        try:
            assert _until(lambda: pool.status()["workers"] == 2)
            slow_pids = set(_descendants(slow_host.pid))
            pids = [*slow_pids, *_descendants(fast_host.pid), slow_host.pid, fast_host.pid]
            results = pool.map(host_speed, range(400), chunksize=1)
            assert [x for x, _ in results] == list(range(400))
            on_slow = sum(pid in slow_pids for _, pid in results)
            # Only "the fast host got more": exact shares move with the load of a shared CI machine.
            assert on_slow < 400 / 2, f"the slow host ran {on_slow} of 400 items"
        finally:
            pool.close(30)
            _stop(slow_host, [])
            _stop(fast_host, pids)


@pytest.mark.timeout(120)
def test_imap_over_an_endless_generator_reads_only_a_bounded_window_ahead():
    produced = [0]

    def endless():
        while True:
            produced[0] += 1
            yield produced[0]

    with Pool(2, transport="tcp://127.0.0.1") as pool:
        results = pool.imap(abs, endless())
        for _ in range(50_000):
            next(results)
        # Nobody reads now, so the feeder must stop: wait until it has (a busy machine
        # may take a while to fill the window), then check where it stopped.
        assert _until(lambda: _unchanged_for(produced, 0.5), 60), "the input is read on and on"
        window = max(pool.workers, 4) * pool._scheduler.credits * MAX_CHUNK * 2
        # The window counts from the last chunk the caller finished (the one it is in may
        # be a chunk behind), and the chunk being cut when it filled may overshoot it.
        assert produced[0] - 50_000 <= window + 2 * MAX_CHUNK, (produced[0], window)


@pytest.mark.timeout(120)
def test_a_head_and_an_agent_over_curve_encryption():
    with Pool(0, transport="tcp://127.0.0.1?curve=1&heartbeat=0.2&dead_after=1.0", key=KEY) as pool:
        agent = _agent(pool.address, 1, "--curve")
        pids: list[int] = []
        try:
            assert pool.map(lambda x: -x, range(100)) == [-x for x in range(100)]
            pids = _descendants(agent.pid) + [agent.pid]
        finally:
            pool.close(30)
            _stop(agent, pids)


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(120)
def test_an_agent_waits_for_a_head_that_went_away_and_rejoins_the_next_one():
    url = f"tcp://127.0.0.1:{_free_port()}" + FAST
    with Pool(0, transport=url, key=KEY) as pool:
        agent = _agent(pool.address, 1, "--give-up", "60")
        assert pool.map(abs, range(-3, 0)) == [3, 2, 1]
    # The head is gone; a new one binds the same address, and the agent comes back to it.
    pids: list[int] = []
    try:
        with Pool(0, transport=url, key=KEY) as pool:
            assert pool.map(abs, range(-3, 0), timeout=30) == [3, 2, 1]
            pids = _descendants(agent.pid) + [agent.pid]
    finally:
        err = _stop(agent, pids)
    assert "lost the head" in err and "session 2" in err


# -- requeued work and no worker left (review: "requeued chunks can wait forever") -------------

def nap(x):
    time.sleep(1.5)
    return x


def _lose_the_only_host(pool: Pool, agent: subprocess.Popen, pids: list[int]) -> None:
    """Once an item runs on the agent's worker, the whole host goes (like a power cut):
    what it held is requeued and no worker is left to take it."""
    assert _until(lambda: pool.status()["in_flight"] >= 1)
    pids += _descendants(agent.pid) + [agent.pid]
    agent.kill()
    assert _until(lambda: pool.status()["workers"] == 0 and pool.status()["queued"] >= 1)


def _map_then_lose_the_host(pool: Pool, call, *args, **kwargs):
    agent = _agent(pool.address, 1)
    pids: list[int] = []
    try:
        assert _until(lambda: pool.status()["workers"] == 1)
        future = call(nap, [1, 2], chunksize=1, *args, **kwargs)
        _lose_the_only_host(pool, agent, pids)
        return future
    finally:
        _stop(agent, pids)


@pytest.mark.timeout(60)
def test_requeued_items_with_no_worker_left_end_with_the_per_item_timeout():
    with Pool(0, transport="tcp://127.0.0.1" + FAST, key=KEY) as pool:
        future = _map_then_lose_the_host(pool, pool.map.background(), timeout=3.0)
        with pytest.raises(ProcessTimeoutError, match="no worker"):
            future.result(30)
        assert pool.status()["queued"] == 0  # dropped, not sent to a worker joining later


@pytest.mark.timeout(60)
def test_requeued_items_with_no_worker_left_end_with_the_calls_timeout():
    with Pool(0, transport="tcp://127.0.0.1" + FAST, key=KEY) as pool:
        future = _map_then_lose_the_host(pool, pool.map.timeout(6.0).background())
        with pytest.raises(ResultTimeoutError):
            future.result(30)
        assert _until(lambda: pool.status()["queued"] == 0, 10)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("end", ["close", "terminate"])
def test_requeued_items_with_no_worker_left_end_with_a_state_error_at_close(end):
    pool = Pool(0, transport="tcp://127.0.0.1" + FAST, key=KEY)
    try:
        future = _map_then_lose_the_host(pool, pool.map.background())
        time.sleep(0.5)
        assert not future.done()  # no limit: it waits for a worker to come back
    finally:
        pool.close(1.0) if end == "close" else pool.terminate()
    with pytest.raises(StateError):
        future.result(10)
