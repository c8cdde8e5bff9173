"""Share(exactly_once=True): a pool task's writes count once however often the task runs.

Each test runs real workers and re-runs items for real (a worker SIGKILLed while it holds
items that already wrote, an item killed for its timeout and mapped again), and counts
the runs in a file, so the plain Share's at-least-once excess is shown exactly beside the
exactly-once count. The ZeroMQ version (a worker host killed mid-map) is in
tests/integration/test_share_exactly_once_zmq.py.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from skprocessing import Pool, ProcessTimeoutError, Share, Skprocess
from skprocessing.errors import SerializationError, ShareError

ITEMS = 48
HELD = 10  # the item that holds its worker (chunksize 4: items 8 and 9 wrote before it)


def _first_run(folder: str, x: int) -> bool:
    try:
        os.close(os.open(os.path.join(folder, f"first-{x}"), os.O_CREAT | os.O_EXCL))
        return True
    except FileExistsError:
        return False


def _runs(folder: str) -> list[int]:
    with open(os.path.join(folder, "runs")) as f:
        return [int(line) for line in f]


def count_then_hold(args):
    """+1, log the run, and (item HELD, first run only) sit until the test kills us."""
    share, x, folder, hold_seconds = args
    share.counter += 1
    share.seen.append(x)
    with open(os.path.join(folder, "runs"), "a") as f:
        f.write(f"{x}\n")
    if x == HELD and _first_run(folder, x):
        with open(os.path.join(folder, f"held-{os.getpid()}"), "w"):
            pass
        time.sleep(hold_seconds)
    return x


def _held_pid(folder: str, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in os.listdir(folder):
            if name.startswith("held-"):
                return int(name[5:])
        time.sleep(0.02)
    raise AssertionError("no worker reached the held item")


def _new_share(exactly_once: bool) -> Share:
    share = Share(exactly_once=exactly_once)
    share.counter = 0
    share.seen = []
    return share


@pytest.mark.timeout(120)
@pytest.mark.parametrize("exactly_once", [False, True])
def test_a_worker_killed_mid_map_after_its_items_wrote(tmp_path, exactly_once):
    folder = str(tmp_path)
    share = _new_share(exactly_once)
    try:
        with Pool(2) as pool:
            items = [(share, x, folder, 60) for x in range(ITEMS)]
            future = pool.map.background()(count_then_hold, items, chunksize=4)
            os.kill(_held_pid(folder), signal.SIGKILL)
            assert future.result(timeout=90) == list(range(ITEMS))  # results: exactly once
        runs = _runs(folder)
        assert len(runs) > ITEMS  # items of the killed chunk ran twice
        assert sorted(set(runs)) == list(range(ITEMS))
        if exactly_once:
            assert share.counter == ITEMS
            assert sorted(share.seen) == list(range(ITEMS))
        else:
            # At least once: every run's writes, the killed worker's included.
            assert share.counter == len(runs) > ITEMS
            assert sorted(share.seen) == sorted(runs)
    finally:
        share.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("exactly_once", [False, True])
def test_an_item_killed_for_its_timeout_then_mapped_again(tmp_path, exactly_once):
    folder = str(tmp_path)
    share = _new_share(exactly_once)
    try:
        with Pool(2) as pool:
            items = [(share, x, folder, 60) for x in range(ITEMS)]
            results = pool.imap(count_then_hold, items, chunksize=1, timeout=1.0)
            failed = []
            for x in range(ITEMS):
                try:
                    assert next(results) == x
                except ProcessTimeoutError:
                    failed.append(items[x])
            assert [item[1] for item in failed] == [HELD]
            # The user's own retry of what timed out: the second run does not hold.
            assert pool.map(count_then_hold, failed) == [HELD]
        assert len(_runs(folder)) == ITEMS + 1
        if exactly_once:
            assert share.counter == ITEMS  # the killed run left nothing
            assert sorted(share.seen) == list(range(ITEMS))
        else:
            assert share.counter == ITEMS + 1
            assert sorted(share.seen) == sorted(list(range(ITEMS)) + [HELD])
    finally:
        share.stop()


def add_then_read(share):
    share.n += 1
    share.log.append("ran")
    return share.n, list(share.log)


def pop_in_task(share):
    return share.d.pop("k")


class _Unpicklable:
    def __reduce__(self):
        raise TypeError("this object refuses to be pickled")


def write_unsendable(share):
    share.value = _Unpicklable()
    return "unreachable"


class Counting(Skprocess):
    def __init__(self, share):
        self.share = share
        self.process_config.runs = 1

    def __run__(self):
        self.share.n += 1

    def __result__(self):
        return self.share.n


@pytest.mark.timeout(60)
def test_inside_a_task_reads_see_the_share_without_the_tasks_own_writes():
    share = Share(exactly_once=True)
    share.n = 0
    share.log = []
    try:
        with Pool(1) as pool:
            assert pool.map(add_then_read, [share]) == [(0, [])]
            assert pool.map(add_then_read, [share]) == [(1, ["ran"])]  # the first one's, applied
        assert (share.n, share.log) == (2, ["ran", "ran"])
    finally:
        share.stop()


@pytest.mark.timeout(60)
def test_a_mutator_that_answers_is_refused_inside_a_task_and_writes_are_checked_there():
    share = Share(exactly_once=True)
    share.d = {"k": 1}
    try:
        with Pool(1) as pool:
            with pytest.raises(ShareError, match=r"pop\(\) on share.d\['k'\]|pop\(\) on share.d"):
                pool.map(pop_in_task, [share])
            with pytest.raises(SerializationError, match="share.value"):
                pool.map(write_unsendable, [share])
        assert share.d == {"k": 1}
        assert "value" not in share
    finally:
        share.stop()


@pytest.mark.timeout(60)
def test_writes_outside_pool_tasks_apply_at_once():
    share = Share(exactly_once=True)
    share.n = 0
    try:
        process = Counting(share)
        process.start()
        process.wait(30)
        assert process.result() == 1  # an Skprocess of its own is no pool task: not held
        share.n += 1
        assert share.n == 2
        with Pool(1) as pool:  # mapped as a pool task: held until its result is accepted
            assert pool.map(Counting, [share]) == [2]
        assert share.n == 3
    finally:
        share.stop()


def test_exactly_once_takes_a_bool():
    with pytest.raises(TypeError, match="exactly_once"):
        Share(auto_start=False, exactly_once="yes")
