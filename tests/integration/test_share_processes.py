"""Share across real processes: Skprocess workers, Pool items, processes started by the
transport; exact final values under contention; faults on either side; nothing left running."""

from __future__ import annotations

import gc
import logging
import time

import pytest

from skprocessing import Pool, RunError, Skprocess, Sktimer, StateError, get_transport
from skprocessing.core.share import Share, ShareError
from tests.conftest import run_script, wait_gone

pytestmark = pytest.mark.timeout(120)


class Model:
    def __init__(self):
        self.fitted = 0

    def fit(self, n):
        self.fitted += n
        return self.fitted

    def fail(self):
        raise ValueError("fit failed on purpose")


class Writer(Skprocess):
    """Each worker: counter += 1, its own key += 1, appends its ids, times into one timer."""

    def __init__(self, share, wid, ops):
        self.process_config.runs = 1
        self.share, self.wid, self.ops = share, wid, ops

    def __run__(self):
        share, wid = self.share, self.wid
        for i in range(self.ops):
            share.counter += 1
            share.per_worker[wid] += 1
            share.cfg.total += 2
            if i % 100 == 0:
                share.items.append((wid, i))
                share.timer.add_time(0.001)
                share.model.fit(1)
                share.log.info("worker %s at %s", wid, i)
        return None

    def __result__(self):
        return self.share.per_worker[self.wid]  # reads its own writes


class Config:
    def __init__(self):
        self.total = 0


@pytest.fixture
def share(assert_reaped):
    s = Share()
    assert_reaped(s._sk_owner.handle.pid)
    yield s
    s.stop()


def _fill(share, workers):
    share.counter = 0
    share.per_worker = {w: 0 for w in range(workers)}
    share.cfg = Config()
    share.items = []
    share.timer = Sktimer()
    share.model = Model()
    share.log = logging.getLogger("skprocessing.tests.share_processes")


@pytest.mark.timeout(300)
def test_many_writers_every_final_value_exact(share, assert_reaped):
    workers, ops = 8, 10_000
    _fill(share, workers)
    processes = [Writer(share, w, ops) for w in range(workers)]
    for process in processes:
        process.start()
        assert_reaped(process._sk.handle.pid)
    assert [p.result() for p in processes] == [ops] * workers
    assert share.counter == workers * ops
    assert share.per_worker == {w: ops for w in range(workers)}
    assert share.cfg.total == 2 * workers * ops
    assert sorted(share.items) == sorted((w, i) for w in range(workers) for i in range(0, ops, 100))
    assert share.timer.num_times == workers * ops // 100
    assert share.model.fitted == workers * ops // 100


class Bump(Skprocess):
    def __init__(self, share, ops):
        self.process_config.runs = 1
        self.share, self.ops = share, ops

    def __run__(self):
        for _ in range(self.ops):
            self.share.counter += 1


def test_writes_of_a_finished_worker_are_seen_at_once(share, assert_reaped):
    # Pipelined writes still in flight when a worker ends are applied before the next read.
    share.counter = 0
    for round_ in range(1, 31):
        process = Bump(share, 50)
        process.start()
        assert_reaped(process._sk.handle.pid)
        process.result()
        assert share.counter == 50 * round_


def _pool_task(share, n):
    share.counter += n
    share.items.append(n)
    return share.model.fit(n) > 0


def test_share_inside_pool_items(share):
    share.counter = 0
    share.items = []
    share.model = Model()
    with Pool(2) as pool:
        assert all(pool.star().map(_pool_task, [(share, n) for n in range(1, 41)]))
    assert share.counter == sum(range(1, 41))
    assert sorted(share.items) == list(range(1, 41))
    assert share.model.fitted == sum(range(1, 41))


def _transport_entry(share, ops):
    for _ in range(ops):
        share.counter += 1
    share.done.append(True)


def test_share_passed_to_processes_started_by_the_transport(share):
    share.counter = 0
    share.done = []
    transport = get_transport()
    handles = [transport.start(_transport_entry, share, 1000) for _ in range(3)]
    for handle in handles:
        assert handle.wait(60) == 0
    assert share.counter == 3000 and share.done == [True] * 3


class CallFail(Skprocess):
    def __init__(self, share):
        self.process_config.runs = 1
        self.share = share

    def __run__(self):
        try:
            self.share.model.fail()
        except ValueError as exc:
            return exc

    def __result__(self):
        try:
            self.share.model.fail()
        except ValueError as exc:
            return (str(exc), exc.remote_traceback, self.share.model.fit(1))


def test_method_exception_reaches_the_worker_with_traceback(share):
    share.model = Model()
    message, traceback_text, fitted = CallFail(share).run()
    assert message == "fit failed on purpose"
    assert "in fail" in traceback_text and fitted == 1


class Loop(Skprocess):
    def __init__(self, share):
        self.share = share
        self.process_config.runs = None  # until stopped or failed

    def __run__(self):
        self.share.counter += 1
        self.share.counter  # an answered read: a dead coordinator shows here


def test_killed_coordinator_fails_workers_with_a_clear_error(assert_reaped):
    share = Share()
    share.counter = 0
    handle = share._sk_owner.handle
    assert_reaped(handle.pid)
    workers = [Loop(share) for _ in range(2)]
    for worker in workers:
        worker.start()
        assert_reaped(worker._sk.handle.pid)
    while share.counter < 100:
        time.sleep(0.01)
    handle.kill()
    for worker in workers:
        with pytest.raises(RunError) as info:
            worker.result.timeout(30)()
        assert isinstance(info.value.original_error, ShareError)
        assert "gone" in str(info.value) or "reach" in str(info.value)
    assert share.has_error
    with pytest.warns(RuntimeWarning, match="objects are lost"):
        share.stop()


class BigWriter(Skprocess):
    def __init__(self, share):
        self.share = share
        self.process_config.runs = None

    def __run__(self):
        self.share.blob = b"x" * 30_000_000


def test_client_killed_mid_write_corrupts_nothing(share, assert_reaped):
    share.counter = 0
    big = BigWriter(share)
    big.start()
    assert_reaped(big._sk.handle.pid)
    time.sleep(0.3)
    big.kill()  # most likely in the middle of sending 30 MB
    bump = Bump(share, 2000)
    bump.start()
    assert_reaped(bump._sk.handle.pid)
    bump.result()
    assert share.counter == 2000
    if "blob" in share:
        assert len(share.blob) == 30_000_000


class Reader(Skprocess):
    def __init__(self, share):
        self.process_config.runs = 1
        self.share = share

    def __run__(self):
        return None

    def __result__(self):
        return self.share.counter


def test_stop_then_start_serves_the_same_state_at_the_same_address(share, assert_reaped):
    share.counter = 5
    assert share.stop()
    share.counter += 1
    share.start()
    assert_reaped(share._sk_owner.handle.pid)
    assert Reader(share).run() == 6


def test_an_unreferenced_share_stops_its_coordinator():
    share = Share()
    pid = share._sk_owner.handle.pid
    share.x = 1
    del share
    gc.collect()
    assert wait_gone(pid, 10)


class AppendTo(Skprocess):
    """Gets a proxy (not the Share) as its attribute."""

    def __init__(self, items, n):
        self.process_config.runs = 1
        self.items, self.n = items, n

    def __run__(self):
        for i in range(self.n):
            self.items.append(i)


@pytest.mark.parametrize("serializer", ["pickle", "cloudpickle"])
def test_other_serializers_and_proxies_as_attributes(serializer, assert_reaped):
    share = Share(serializer=serializer)
    assert_reaped(share._sk_owner.handle.pid)
    share.counter = 0
    share.items = []
    workers = [Bump(share, 500), AppendTo(share.items, 300)]
    for worker in workers:
        worker.start(serializer=serializer)
        assert_reaped(worker._sk.handle.pid)
    for worker in workers:
        worker.result()
    assert share.counter == 500 and sorted(share.items) == list(range(300))
    assert share.stop()


def test_a_script_that_exits_without_stopping_leaves_no_coordinator():
    result = run_script("""
        from skprocessing.core.share import Share
        share = Share()
        share.counter = 1
        share.counter += 1
        assert share.counter == 2
        print(share._sk_owner.handle.pid, flush=True)
    """)
    assert result.returncode == 0, result.stderr
    assert wait_gone(int(result.stdout.split()[-1]), 10)


def _forked_child(share, results):
    share.counter += 1
    share._sk_owner.finalizer()  # what exit or GC would run in this forked copy: a no-op here
    try:
        share.stop()
    except StateError:
        results.put("not the owner")
    results.put(share.counter)


def test_a_forked_copy_of_the_owner_is_only_a_client(share):
    import multiprocessing
    share.counter = 0
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_forked_child, args=(share, results))
    child.start()
    assert results.get(timeout=30) == "not the owner"
    assert results.get(timeout=30) == 1
    child.join(30)
    assert share.is_running and share.counter == 1


def _consume(args):
    share, count = args
    got = [share.jobs.get(timeout=30) for _ in range(count)]  # waits for the producer
    share.done.wait(30)
    return got


def _locked_increment(args):
    share, count = args
    for _ in range(count):
        assert share.lock.acquire(timeout=30)
        try:
            share.plain = share.plain + 1  # read, then write: exact only under the lock
        finally:
            share.lock.release()
    return count


@pytest.mark.parametrize("transport", [None, "tcp://127.0.0.1:0"])
def test_a_shared_queue_lock_and_event_block_their_caller_not_the_share(transport):
    import queue
    import threading
    with Share(transport=transport) as share, Pool(3, transport=transport) as pool:
        share.jobs, share.done = queue.Queue(maxsize=5), threading.Event()
        share.lock, share.plain, share.counter = threading.Lock(), 0, 0
        # timeout=: each item on an idle worker of its own (a consumer queued behind the
        # other on one worker would wait for it forever: that one waits for `done`)
        consumers = pool.map.background()(_consume, [(share, 10), (share, 10)], timeout=60)
        time.sleep(0.3)  # both wait on the empty queue, yet the Share answers everyone:
        for i in range(20):
            share.jobs.put(i, timeout=30)  # blocks while 5 are queued (maxsize), until a get
            share.counter += 1
        share.done.set()
        got = consumers.result(60)
        assert sorted(got[0] + got[1]) == list(range(20)) and share.counter == 20
        with pytest.raises(queue.Empty):
            share.jobs.get(timeout=0.2)
        share.jobs.put(7)
        assert share.jobs.get(block=False) == 7
        assert pool.map(_locked_increment, [(share, 200)] * 3) == [200] * 3
        assert share.plain == 600
        assert share.lock.acquire() and not share.lock.acquire(timeout=0.1)
        share.lock.release()
