"""suitkaise 0.4.14's processing/quick-start.md and the processing parts of the docs' root
quick-start.md, as written there; only the import is ours (sizes shrunk)."""

from __future__ import annotations

import time

import pytest

from skprocessing import Pool, Share, Skprocess, Sktimer

pytestmark = pytest.mark.timeout(90)


# -- processing/quick-start.md: "Run a process" ------------------------------------------

class Doubler(Skprocess):
    def __init__(self, value):
        self.value = value

    def __run__(self):
        self.value *= 2

    def __result__(self):
        return self.value


def test_run_a_process():
    # As written, Doubler has no run limit: runs defaults to None ("run until stopped",
    # as how-to-use.md documents), so run() would not return; suitkaise 0.4.14 loops
    # forever on it too. What it does: it doubles on every iteration until stopped.
    process = Doubler(5)
    process.start()
    deadline = time.monotonic() + 30
    while process.current_run < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.current_run >= 3 and process.is_alive  # still running, doubling
    process.stop()
    assert process.wait(timeout=30)
    result = process.result()
    # current_run counts whole iterations; a stop seen after __run__ ends the iteration
    # there (as in suitkaise), so the last doubling may not be counted.
    assert process.current_run >= 1
    assert result in (5 * 2 ** process.current_run, 5 * 2 ** (process.current_run + 1))
    # The document's figure is that of one iteration: runs=1.
    process = Doubler(5)
    process.process_config.runs = 1
    result = process.run()  # start, wait, return result
    assert result == 10


# -- "Run it multiple times" --------------------------------------------------------------

class Doubler3(Skprocess):
    def __init__(self, value):
        self.value = value
        self.process_config.runs = 3  # loop 3 times

    def __run__(self):
        self.value *= 2

    def __result__(self):
        return self.value


def test_run_it_multiple_times():
    result = Doubler3(5).run()
    assert result == 40  # (5 → 10 → 20 → 40)


# -- "Batch processing with Pool" ---------------------------------------------------------

def double(x):
    return x * 2


def test_batch_processing_with_pool():
    pool = Pool(workers=4)
    try:
        results = pool.map(double, [1, 2, 3, 4, 5])
    finally:
        pool.close()
    assert results == [2, 4, 6, 8, 10]


# -- "Share state across processes" -------------------------------------------------------

class Worker(Skprocess):
    def __init__(self, share, item):
        self.share = share
        self.item = item
        # Not in the document: without a limit a Pool item runs until stopped
        # (runs=None), in suitkaise as here, so pool.map would never return.
        self.process_config.runs = 1

    def __run__(self):
        self.share.results.append(self.item * 2)
        self.share.counter += 1


def test_share_state_across_processes():
    share = Share()
    try:
        share.counter = 0
        share.results = []
        pool = Pool(workers=4)
        try:
            pool.star().map(Worker, [(share, x) for x in range(10)])
        finally:
            pool.close()
        assert share.counter == 10
        assert sorted(share.results) == [x * 2 for x in range(10)]  # [0, 2, 4, ..., 18]
    finally:
        share.stop()


# -- "Communicate between parent and process" ---------------------------------------------

class Echo(Skprocess):
    def __prerun__(self):
        self.msg = self.listen(timeout=1.0)

    def __run__(self):
        if self.msg:
            self.tell(f"echo: {self.msg}")


def test_communicate_between_parent_and_process():
    process = Echo()
    process.start()
    try:
        process.tell("hello")
        response = process.listen(timeout=2.0)
        assert response == "echo: hello"
    finally:
        process.stop()
        process.wait()


# -- "Add retries and timeouts" -----------------------------------------------------------

class ReliableWorker(Skprocess):
    attempts_file: str = ""

    def __init__(self, attempts_file):
        self.process_config.lives = 3  # retry up to 2 times on crash
        self.process_config.timeouts.run = 10.0  # 10 second timeout per run
        self.process_config.runs = 1
        self.attempts_file = attempts_file

    def __run__(self):
        do_work(self.attempts_file)

    def __result__(self):
        return "done"


def do_work(attempts_file):
    # Crashes on the first two attempts, succeeds on the third: three lives suffice.
    with open(attempts_file, "a+") as f:
        f.write("x")
        f.seek(0)
        attempts = len(f.read())
    if attempts < 3:
        raise RuntimeError(f"attempt {attempts} crashed")


def test_add_retries_and_timeouts(tmp_path):
    worker = ReliableWorker(str(tmp_path / "attempts"))
    assert worker.process_config.lives == 3
    assert worker.process_config.timeouts.run == 10.0
    assert worker.run() == "done"
    assert (tmp_path / "attempts").read_text() == "xxx"


# -- docs root quick-start.md, "1. Share state across processes" ---------------------------

class Counter(Skprocess):
    def __init__(self, share):
        self.share = share
        self.process_config.runs = 5

    def __run__(self):
        self.share.counter += 1


def test_root_quick_start_share_counter():
    share = Share()
    try:
        share.counter = 0
        with Pool(workers=4) as pool:
            pool.map(Counter, [share] * 4)
        assert share.counter == 20  # (4 processes × 5 runs)
    finally:
        share.stop()


# -- root quick-start.md, "Putting it together" -------------------------------------------
# suitkaise's Circuit is not part of processing; a small circuit breaker of the user's own
# stands in for it (any object can live in a Share).

class ServiceError(Exception):
    pass


class Circuit:
    def __init__(self, num_shorts_to_trip, sleep_time_after_trip):
        self.num_shorts_to_trip = num_shorts_to_trip
        self.sleep_time_after_trip = sleep_time_after_trip
        self.shorts = 0
        self.total_trips = 0

    def short(self):
        self.shorts += 1
        if self.shorts >= self.num_shorts_to_trip:
            self.shorts = 0
            self.total_trips += 1


def fetch(url):
    if url.endswith("bad"):
        raise ServiceError(url)
    return url


class ResilientWorker(Skprocess):
    def __init__(self, share, url):
        self.share = share
        self.url = url
        self.process_config.runs = 1

    def __run__(self):
        self.share.timer.start()
        try:
            result = fetch(self.url)
        except ServiceError:
            self.share.circuit.short()
        self.share.timer.stop()


def test_root_quick_start_putting_it_together():
    urls = [f"http://x/{i}" for i in range(5)] + [f"http://x/{i}/bad" for i in range(5)]
    share = Share()
    try:
        share.timer = Sktimer()
        share.circuit = Circuit(num_shorts_to_trip=5, sleep_time_after_trip=2.0)
        pool = Pool(workers=4)
        try:
            pool.star().map(ResilientWorker, [(share, url) for url in urls])
        finally:
            pool.close()
        assert share.timer.num_times == len(urls)
        assert share.timer.mean >= 0
        assert f"Mean response time: {share.timer.mean:.3f}s"
        assert share.circuit.total_trips == 1
    finally:
        share.stop()
