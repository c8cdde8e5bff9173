"""The core on the memory transport (threads for processes, `transports/memory.py`): a Pool,
a Share and an Skprocess run on it with nothing but the interface. The conformance suite
runs on it too (conftest.TRANSPORTS)."""

from __future__ import annotations

import threading

import pytest

from skprocessing import Pool, ProcessError, ProcessTimeoutError, Skprocess
from skprocessing.core import _exit
from skprocessing.core._exit import at_process_exit, owns_process, process_entry
from skprocessing.core.share import Share
from skprocessing.transports import get_transport
from skprocessing.transports.base import Capability
from skprocessing.transports.memory import MemoryTransport

pytestmark = pytest.mark.timeout(90)

_release = threading.Event()  # lets the threads of killed "processes" finish at the end


@pytest.fixture(autouse=True)
def _release_abandoned_threads():
    _release.clear()
    yield
    _release.set()


def square(x):
    return x * x


def fail_on_three(x):
    if x == 3:
        raise ValueError(f"three is bad: {x}")
    return x


def block_on_two(x):
    if x == 2:
        _release.wait(60)  # runs over the item's timeout: its worker is killed
    return x


def count(share, n):
    for _ in range(n):
        share.counter += 1
    return n


def test_the_memory_scheme_is_registered_and_declares_only_what_it_offers():
    transport = get_transport("memory://")
    assert isinstance(transport, MemoryTransport)
    assert transport.capabilities == {Capability.IMMEDIATE_DELIVERY, Capability.DEATH_CLOSES_CHANNELS}


def test_pool_maps_ordered_and_unordered_on_memory():
    with Pool(2, transport="memory://") as pool:
        assert pool.map(square, range(50)) == [x * x for x in range(50)]
        assert sorted(pool.unordered_map(square, range(50))) == sorted(x * x for x in range(50))
        assert list(pool.imap(square, range(10), chunksize=3)) == [x * x for x in range(10)]


def test_pool_on_memory_reports_a_raising_item_and_goes_on():
    with Pool(2, transport="memory://") as pool:
        results = pool.imap(fail_on_three, range(6))
        assert [next(results) for _ in range(3)] == [0, 1, 2]
        with pytest.raises(ValueError, match="three is bad: 3"):
            next(results)
        assert list(results) == [4, 5]


def test_pool_on_memory_times_out_an_item_and_replaces_its_worker():
    with Pool(2, transport="memory://") as pool:
        results = pool.imap(block_on_two, range(6), timeout=1.0)
        assert [next(results) for _ in range(2)] == [0, 1]
        with pytest.raises(ProcessTimeoutError, match=r"item 2 \(2\) ran over its 1 s timeout"):
            next(results)
        assert list(results) == [3, 4, 5]
        assert pool.map(square, range(4)) == [0, 1, 4, 9]  # the replacement works


def test_share_counter_from_four_workers_on_memory_is_exact():
    share = Share(transport="memory://")
    try:
        share.counter = 0
        with Pool(4, transport="memory://") as pool:
            assert pool.star().map(count, [(share, 250)] * 8, chunksize=1) == [250] * 8
        assert share.counter == 2000
    finally:
        assert share.stop()


class Ticker(Skprocess):
    """Counts runs until stopped; tells each run."""

    def __init__(self):
        self.process_config.runs = None

    def __run__(self):
        self.tell(self._current_run)
        _release.wait(0.01)

    def __result__(self):
        return "stopped"


def test_an_skprocess_on_memory_runs_tells_stops_and_reports_current_run():
    process = Ticker()
    process.start(transport="memory://")
    assert process.listen(timeout=30) == 0
    assert process.listen(timeout=30) == 1
    process.stop()
    assert process.wait(30)
    assert process.result() == "stopped"
    assert process.current_run >= 1  # (a stop ends the run it interrupts uncounted)


class Stuck(Skprocess):
    def __run__(self):
        self.tell("running")
        _release.wait(60)


def test_killing_an_skprocess_on_memory_ends_it_without_ending_the_interpreter():
    process = Stuck()
    process.start(transport="memory://")
    assert process.listen(timeout=30) == "running"
    process.kill()  # the thread is abandoned; its relay must not SIGKILL this process
    assert not process.is_alive
    assert process.result() is None


class Crash(Skprocess):
    def __run__(self):
        raise RuntimeError("boom")


def test_an_error_in_an_skprocess_on_memory_reaches_the_parent():
    process = Crash()
    process.start(transport="memory://")
    with pytest.raises(ProcessError, match="boom"):
        process.result()


_hook_calls: list[str] = []


def _hook() -> None:
    _hook_calls.append("ran")


@process_entry
def _entry_with_exit_work(channel) -> None:
    channel.send([b"done"])


def test_an_entry_ending_on_a_memory_thread_runs_the_exit_hooks_but_keeps_them():
    """The work a process must do before it exits (held Share writes) runs when a core
    entry ends; on a thread the interpreter goes on, so the hooks stay registered for its
    own exit (they are not this one thread's)."""
    transport = MemoryTransport()
    at_process_exit(_hook)
    try:
        mine, theirs = transport.pipe()
        handle = transport.start(_entry_with_exit_work, theirs)
        theirs.close()
        assert mine.recv(timeout=30) == [b"done"]
        assert handle.wait(30) == 0
        assert _hook_calls == ["ran"]
        assert not owns_process()  # and the entry left the process (signals, SIGKILL) alone
        assert _hook in _exit._hooks  # kept for the interpreter's own exit
    finally:
        with _exit._lock:  # (this test's hook only: other tests' hooks stay)
            if _hook in _exit._hooks:
                _exit._hooks.remove(_hook)


def count_then_block_on_two(share, x):
    share.counter += 1
    if x == 2:
        _release.wait(60)  # runs over its timeout: this run's write must leave no trace
    return x


def test_an_exactly_once_share_on_memory_keeps_each_workers_writes_apart():
    # Workers are threads of one interpreter here: the writes a task holds are its own
    # thread's, so a killed run's writes never ride with a neighbour's result.
    share = Share(transport="memory://", exactly_once=True)
    try:
        share.counter = 0
        with Pool(4, transport="memory://") as pool:
            results = pool.star().imap(count_then_block_on_two, [(share, x) for x in range(40)],
                                       timeout=2.0, chunksize=1)
            outcomes = []
            for _ in range(40):
                try:
                    outcomes.append(next(results))
                except ProcessTimeoutError:
                    outcomes.append("timed out")
            assert outcomes == [x if x != 2 else "timed out" for x in range(40)]
            assert pool.star().map(count, [(share, 50)] * 8, chunksize=1) == [50] * 8
        assert share.counter == 39 + 400
    finally:
        assert share.stop()
