"""Pool under faults: workers that die or hang, Ctrl-C, retries. Nothing may hang, nothing
may be left running, and the pool must stay usable."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

import pytest

from skprocessing import ProcessDiedError, ProcessTimeoutError
from skprocessing.core.pool import Pool

pytestmark = pytest.mark.timeout(120)


def square(x):
    return x * x


def die_on_three(how):
    def fn(x):
        if x == 3:
            if how == "exit":
                os._exit(7)
            if how == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "segfault":
                ctypes.string_at(0)
        return x
    return fn


def pid_or_die(x):
    if x == "die":
        os._exit(1)
    return os.getpid()


def sleep_on_two(x):
    if x == 2:
        time.sleep(60)
    return x


@pytest.mark.parametrize("how", ["exit", "sigkill", "segfault"])
def test_a_dying_item_is_named_and_the_pool_goes_on(how, assert_reaped):
    with Pool(2) as pool:
        pool.map(square, [1])
        with pytest.raises(ProcessDiedError, match=r"item 3 ") as info:
            pool.map(die_on_three(how), range(8))
        assert "worker pid" in str(info.value)
        assert pool.map(square, range(5)) == [0, 1, 4, 9, 16]
        assert len(pool.worker_pids) == 2
        pids = pool.worker_pids
    for pid in pids:
        assert_reaped(pid)


def test_death_inside_a_large_chunk_names_the_item(assert_reaped):
    with Pool(2) as pool:
        with pytest.raises(ProcessDiedError, match=r"item 3 ") as info:
            pool.map(die_on_three("exit"), range(8), chunksize=8)
        assert info.value.exitcode == 7
        assert pool.map(square, range(3)) == [0, 1, 4]


def test_imap_reports_the_death_at_its_item_and_keeps_the_others():
    with Pool(2) as pool:
        results = pool.imap(die_on_three("exit"), range(6))
        assert [next(results) for _ in range(3)] == [0, 1, 2]
        with pytest.raises(ProcessDiedError, match="item 3"):
            next(results)
        assert list(results) == [4, 5]


def die_once(marker):
    def fn(x):
        if x == 3 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(9)
        return x
    return fn


def test_retries_run_the_item_again_on_another_worker(tmp_path):
    with Pool(2, retries=1) as pool:
        assert pool.map(die_once(str(tmp_path / "died")), range(6), chunksize=1) == list(range(6))
    with Pool(2) as pool:
        marker = str(tmp_path / "died-again")
        assert pool.map(die_once(marker), range(6), chunksize=1, retries=2) == list(range(6))


def test_an_item_that_always_kills_fails_after_its_retries():
    with Pool(2) as pool:
        with pytest.raises(ProcessDiedError, match=r"item 1 .*3 attempts"):
            pool.map(pid_or_die, ["ok", "die", "ok"], chunksize=1, retries=2)


def test_per_item_timeout_names_the_item_and_replaces_only_that_worker(assert_reaped):
    with Pool(2) as pool:
        results = pool.imap(sleep_on_two, range(6), timeout=1.5)
        assert [next(results) for _ in range(2)] == [0, 1]
        with pytest.raises(ProcessTimeoutError, match=r"item 2 \(2\) ran over its 1.5 s timeout") as info:
            next(results)
        assert info.value.timeout == 1.5
        assert list(results) == [3, 4, 5]
        pids = pool.worker_pids
        assert len(pids) == 2
        assert pool.map(square, range(3), timeout=5) == [0, 1, 4]
    for pid in pids:
        assert_reaped(pid)


def test_pool_wide_timeout_default():
    with Pool(2, timeout=1.0) as pool:
        with pytest.raises(ProcessTimeoutError, match="item 2"):
            pool.map(sleep_on_two, range(4))
        assert pool.map(square, [3]) == [9]


def mark_then_sleep(folder):
    def fn(x):
        open(os.path.join(folder, str(os.getpid())), "w").close()
        time.sleep(60)
    return fn


def test_ctrl_c_cancels_the_map_and_kills_its_workers(assert_reaped, ctrl_c, tmp_path):
    with Pool(2) as pool:
        pool.map(square, [1])
        with pytest.raises(KeyboardInterrupt):  # armed inside: a press can't land before it
            ctrl_c(lambda: os.listdir(tmp_path))  # once a worker runs an item
            pool.map(mark_then_sleep(str(tmp_path)), [2, 2, 2, 2], chunksize=1)
        for pid in map(int, os.listdir(tmp_path)):
            assert_reaped(pid)  # the workers running the cancelled items are gone
        assert pool.map(square, range(4)) == [0, 1, 4, 9]


def test_ctrl_c_in_imap_cancels_it(assert_reaped, ctrl_c, tmp_path):
    with Pool(2) as pool:
        results = pool.imap(mark_then_sleep(str(tmp_path)), [2, 2], chunksize=1)
        with pytest.raises(KeyboardInterrupt):  # armed inside: a press can't land before it
            ctrl_c(lambda: os.listdir(tmp_path))
            next(results)
        for pid in map(int, os.listdir(tmp_path)):
            assert_reaped(pid)
        assert pool.map(square, [5]) == [25]


def test_terminate_with_stuck_workers_leaves_nothing(assert_reaped):
    pool = Pool(2)
    future = pool.map.background()(sleep_on_two, [2, 2])
    while len(pool.worker_pids) < 2:
        time.sleep(0.01)
    pids = pool.worker_pids
    pool.terminate()
    with pytest.raises(Exception):
        future.result(30)
    for pid in pids:
        assert_reaped(pid)


def test_a_killed_idle_worker_is_replaced(assert_reaped):
    with Pool(2) as pool:
        pool.map(square, [1])
        victim = pool.worker_pids[0]
        os.kill(victim, signal.SIGKILL)
        assert_reaped(victim)
        # At once: a chunk sent to it before the scheduler noticed is run elsewhere,
        # since it never STARTED there; no item is blamed.
        assert pool.map(square, range(20), chunksize=1) == [x * x for x in range(20)]
        assert victim not in pool.worker_pids


def test_a_worker_that_joins_by_address_gets_work_and_is_stopped_on_close():
    from skprocessing.core.pool._worker import worker_main
    from skprocessing.serializers import Codec
    from skprocessing.transports import get_transport

    transport = get_transport()
    with Pool(1) as pool:
        own = pool.worker_pids
        # Started by someone else (as a remote host's agent would), joining by address.
        guest = transport.start(worker_main, "local", pool.address, Codec().token(), None, 2)
        pids = set()
        while guest.pid not in pids:
            pids |= set(pool.map(_pid_after, range(20), chunksize=1))
        assert pids <= {guest.pid, *own}
        assert guest.pid not in pool.worker_pids  # not ours to kill or replace
    assert guest.wait(30) == 0  # close() told it to STOP


def _pid_after(_):
    time.sleep(0.01)
    return os.getpid()


class ExitsOnLoad:
    """A callable whose unpickling ends the worker process."""

    def __call__(self, x):
        return x

    def __reduce__(self):
        return (os._exit, (5,))


def test_a_callable_that_kills_workers_as_it_loads_fails_the_call(assert_reaped):
    with Pool(2) as pool:
        with pytest.raises(ProcessDiedError, match="never started") as info:
            pool.map(ExitsOnLoad(), [1, 2])
        assert info.value.exitcode == 5
        assert pool.map(square, range(3)) == [0, 1, 4]
        pids = pool.worker_pids
    for pid in pids:
        assert_reaped(pid)


def exit_on_1234(x):
    if x == 1234:
        os._exit(4)
    return x


def test_death_in_a_big_chunk_of_tiny_items_is_narrowed_to_its_item():
    with Pool(2) as pool:
        results = pool.imap(exit_on_1234, range(3000), chunksize=3000)
        assert [next(results) for _ in range(1234)] == list(range(1234))
        with pytest.raises(ProcessDiedError, match="item 1234 "):
            next(results)
        assert list(results) == list(range(1235, 3000))


@pytest.mark.timeout(60)
def test_a_malformed_hello_is_dropped_and_the_pool_goes_on():
    from skprocessing.core.pool._messages import HELLO
    from skprocessing.serializers.codec import Codec
    from skprocessing.transports import get_transport
    with Pool(1) as pool:
        assert pool.map(abs, [-1, -2]) == [1, 2]
        for hello in ["not a tuple", (None,), (None, "pid", 2), (None, 1, -5)]:
            intruder = get_transport().connect(pool.address, timeout=5)
            intruder.send(Codec().encode(HELLO, hello))
            intruder.close()
        assert pool.map(abs, [-3, -4], timeout=30) == [3, 4]


@pytest.mark.timeout(60)
def test_close_with_a_timeout_ends_what_still_runs():
    from tests.conftest import wait_gone
    pool = Pool(1)
    running = pool.map.background()(time.sleep, [30])
    time.sleep(0.3)
    pids = pool.worker_pids
    began = time.monotonic()
    pool.close(timeout=1.0)
    assert time.monotonic() - began < 15
    assert all(wait_gone(pid, 10) for pid in pids)
    from skprocessing import StateError
    with pytest.raises(StateError):
        running.result(timeout=10)


def test_a_ctrl_c_inside_the_schedulers_wake_up_does_not_stall_later_maps():
    # Ctrl-C can land while a caller wakes the scheduler; the wake-up must not be lost.
    with Pool(2) as pool:
        pool.map(square, [0, 1])  # the workers have joined: no other thread wakes it now
        scheduler = pool._scheduler
        channel_send = scheduler._wake_tx.send
        caller = threading.get_ident()
        pressed = []

        def interrupted_once(frames):  # Ctrl-C reaches the caller's (main) thread only
            if not pressed and threading.get_ident() == caller:
                pressed.append(True)
                raise KeyboardInterrupt
            channel_send(frames)

        scheduler._wake_tx.send = interrupted_once
        with pytest.raises(KeyboardInterrupt):
            pool.map(square, [1])
        assert pool.map.background()(square, range(4)).result(60) == [0, 1, 4, 9]
