"""suitkaise 0.4.14's processing/examples.md, example by example; only the import is ours,
sizes and sleeps shrunk. The examples also use suitkaise's `timing` module (`timing.time()`,
`timing.elapsed()`, `timing.sleep()`, `TimeThis`), which is not part of processing: the
standard library's `time` and a five-line `TimeThis` below stand in for it; `Sktimer` is
ours."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import sqlite3
import time

import pytest

from skprocessing import (Pipe, Pool, ProcessError, ProcessTimeoutError, RunError, Share, Skprocess,
                          Sktimer, StateError, autoreconnect)

pytestmark = pytest.mark.timeout(90)


class TimeThis:
    """suitkaise.timing.TimeThis, as far as the examples use it."""

    def __enter__(self):
        self.began = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.most_recent = time.perf_counter() - self.began


# == Basic Skprocess ===========================================================================

class CounterProcess(Skprocess):
    def __init__(self, target: int = 10):
        self.target = target
        self.counter = 0
        # configure: run exactly 'target' iterations
        self.process_config.runs = target

    def __run__(self):
        self.counter += 1

    def __result__(self):
        return self.counter


def test_simple_counter_process():
    process = CounterProcess(target=100)
    process.start()
    process.wait()
    result = process.result()
    assert f"Final count: {result}" == "Final count: 100"


class QuickProcess(Skprocess):
    def __init__(self, data: list):
        self.data = data
        self.results = []
        self.process_config.runs = len(data)

    def __run__(self):
        # process one item per run
        item = self.data[self._current_run]
        self.results.append(item * 2)

    def __result__(self):
        return self.results


def test_using_run():
    process = QuickProcess([1, 2, 3, 4, 5])
    results = process.run()
    assert results == [2, 4, 6, 8, 10]


class DataProcessor(Skprocess):
    def __init__(self, batch_size: int = 5):
        self.batch_size = batch_size
        self.process_config.runs = 3  # process 3 batches
        self.current_batch = None
        self.processed_batches = []
        self.total_items = 0

    def __prerun__(self):
        batch_number = self._current_run
        self.current_batch = [f"item_{batch_number}_{i}" for i in range(self.batch_size)]
        print(f"[prerun] Fetched batch {batch_number}: {len(self.current_batch)} items")

    def __run__(self):
        processed = []
        for item in self.current_batch:
            result = item.upper()
            processed.append(result)
            self.total_items += 1
        self._processed = processed
        print(f"[run] Processed {len(processed)} items")

    def __postrun__(self):
        self.processed_batches.append(self._processed)
        self.current_batch = None  # clear for next iteration
        self._processed = None
        print(f"[postrun] Saved batch, total batches: {len(self.processed_batches)}")

    def __onfinish__(self):
        print(f"[onfinish] Finished processing {self.total_items} total items")

    def __result__(self):
        return {
            'batches': self.processed_batches,
            'total_items': self.total_items,
            'num_batches': len(self.processed_batches)
        }


def test_full_lifecycle_process(capfd):
    process = DataProcessor(batch_size=3)
    result = process.run()
    assert f"Result: {result['num_batches']} batches, {result['total_items']} items" == \
        "Result: 3 batches, 9 items"
    assert result['batches'][1] == ["ITEM_1_0", "ITEM_1_1", "ITEM_1_2"]
    printed = capfd.readouterr().out.splitlines()  # the child's prints reach our stdout
    assert printed == [
        "[prerun] Fetched batch 0: 3 items", "[run] Processed 3 items",
        "[postrun] Saved batch, total batches: 1",
        "[prerun] Fetched batch 1: 3 items", "[run] Processed 3 items",
        "[postrun] Saved batch, total batches: 2",
        "[prerun] Fetched batch 2: 3 items", "[run] Processed 3 items",
        "[postrun] Saved batch, total batches: 3",
        "[onfinish] Finished processing 9 total items",
    ]


class MonitorProcess(Skprocess):
    def __init__(self):
        # no run limit - runs until stop() is called
        self.process_config.runs = None
        self.events = []

    def __run__(self):
        import os
        payload = f"{self._current_run}:{os.getpid()}".encode()
        digest = hashlib.sha256(payload).hexdigest()
        self.events.append({
            'run': self._current_run,
            'time': time.time(),
            'pid': os.getpid(),
            'memory': self._get_memory_usage(),
            'hash': digest[:12],
        })

    def _get_memory_usage(self):
        try:
            import resource
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
        except ImportError:
            return 0

    def __onfinish__(self):
        print(f"Monitor shutting down after {len(self.events)} events")

    def __result__(self):
        return self.events


def test_indefinite_process_with_stop():
    import os
    process = MonitorProcess()
    process.start()
    data = b"monitor_work"
    for _ in range(2000):
        data = hashlib.sha256(data).digest()
    time.sleep(0.05)
    deadline = time.monotonic() + 30
    while process.current_run < 1 and time.monotonic() < deadline:  # not in the document:
        time.sleep(0.01)  # a loaded machine may not have started it within 0.05 s
    process.stop()
    process.wait()
    events = process.result()
    assert len(events) >= 1
    assert [e['run'] for e in events] == list(range(len(events)))
    assert all(e['pid'] != os.getpid() for e in events)


class TimeBoundProcess(Skprocess):
    def __init__(self, max_seconds: float = 10.0):
        self.process_config.runs = None  # this is the default
        self.process_config.join_in = max_seconds
        self.iterations = 0

    def __run__(self):
        payload = f"iter_{self._current_run}".encode()
        digest = hashlib.sha256(payload).digest()
        self.iterations += digest[0]

    def __result__(self):
        return self.iterations


def test_time_limited_process_with_join_in():
    began = time.monotonic()
    process = TimeBoundProcess(max_seconds=0.3)
    result = process.run()
    assert result > 0 and process.current_run >= 1
    assert time.monotonic() - began < 30  # it ended by itself


class UnreliableProcess(Skprocess):
    def __init__(self):
        self.process_config.runs = 10
        # allow 3 total attempts (2 retries)
        self.process_config.lives = 3
        self.successful_runs = 0
        self.attempt_count = 0

    def __prerun__(self):
        self.attempt_count += 1

    def __run__(self):
        payload = f"run:{self._current_run}".encode()
        digest = hashlib.sha256(payload).digest()
        if digest[0] % 5 == 0:
            raise RuntimeError(f"Content failure on run {self._current_run}")
        self.successful_runs += 1

    def __error__(self):
        print(f"Process failed after {self.attempt_count} attempts")
        print(f"Error: {self.error}")
        return {
            'status': 'failed',
            'successful_runs': self.successful_runs,
            'error': str(self.error)
        }

    def __result__(self):
        return {
            'status': 'success',
            'successful_runs': self.successful_runs,
            'total_attempts': self.attempt_count
        }


def test_process_with_retries_lives():
    failing = [r for r in range(10) if hashlib.sha256(f"run:{r}".encode()).digest()[0] % 5 == 0]
    process = UnreliableProcess()
    try:
        result = process.run()
    except ProcessError as e:
        pytest.fail(f"Process ultimately failed: {e}")  # __error__ returns, never raises
    if failing:  # the failure is deterministic: the same run fails on every life
        assert result['status'] == 'failed' and result['successful_runs'] == failing[0]
        assert f"Content failure on run {failing[0]}" in result['error']
        assert process.current_run == failing[0]
    else:
        assert result == {'status': 'success', 'successful_runs': 10, 'total_attempts': 10}


class SlowProcess(Skprocess):
    def __init__(self):
        self.process_config.runs = 5
        self.process_config.timeouts.prerun = 1.0
        self.process_config.timeouts.run = 0.5  # 2.0 in the document
        self.process_config.timeouts.postrun = 1.0
        self.completed_runs = 0

    def __prerun__(self):
        pass

    def __run__(self):
        if self._current_run == 3:
            self._fibonacci(40)  # takes far longer than the timeout
        else:
            self._fibonacci(15)
        self.completed_runs += 1

    def _fibonacci(self, n):
        if n <= 1:
            return n
        return self._fibonacci(n - 1) + self._fibonacci(n - 2)

    def __error__(self):
        if isinstance(self.error, ProcessTimeoutError):
            print(f"Timeout in {self.error.section} after {self.error.timeout}s")
        return {
            'status': 'timeout',
            'completed_runs': self.completed_runs
        }

    def __result__(self):
        return {'status': 'success', 'completed_runs': self.completed_runs}


def test_timeouts_on_lifecycle_methods(capfd):
    process = SlowProcess()
    result = process.run()
    assert result == {'status': 'timeout', 'completed_runs': 3}
    assert "Timeout in __run__ after 0.5s" in capfd.readouterr().out


class TimedProcess(Skprocess):
    def __init__(self, runs: int = 20):
        self.process_config.runs = runs
        self.data = [f"data_block_{i}" for i in range(1000)]

    def __prerun__(self):
        self.data = self.data[-1:] + self.data[:-1]

    def __run__(self):
        iterations = 5 + (self._current_run * 7 % 10)  # 50 + (... % 100) in the document
        for _ in range(iterations):
            for item in self.data[:100]:
                hashlib.sha256(item.encode()).hexdigest()

    def __postrun__(self):
        sorted(self.data[:50])

    def __result__(self):
        return "done"


def test_accessing_timing_data():
    process = TimedProcess(runs=20)
    assert process.run() == "done"
    prerun, run, postrun = process.__prerun__.timer, process.__run__.timer, process.__postrun__.timer
    assert 0 < prerun.min <= prerun.mean <= prerun.max
    assert 0 < run.percentile(50) <= run.percentile(95) <= run.max
    assert postrun.total_time > 0
    lines = [f"  mean:   {prerun.mean:.4f}s", f"  p95:    {run.percentile(95):.4f}s",
             f"  total:  {postrun.total_time:.4f}s"]
    assert all(line.endswith("s") for line in lines)
    # aggregate timer for full iterations
    assert process.process_timer.num_times == 20
    assert process.process_timer.total_time >= run.total_time + prerun.total_time
    assert process.process_timer.mean > 0


class AsyncFriendlyProcess(Skprocess):
    def __init__(self, process_id: int, data_chunks: list):
        self.process_id = process_id
        self.data_chunks = data_chunks
        self.process_config.runs = len(data_chunks)
        self.results = []

    def __run__(self):
        chunk = self.data_chunks[self._current_run]
        hash_result = hashlib.sha256(chunk.encode()).hexdigest()
        self.results.append({'process': self.process_id, 'run': self._current_run,
                             'hash': hash_result[:16]})

    def __result__(self):
        return self.results


async def run_processes_concurrently():
    all_data = [
        [f"process_0_chunk_{i}" for i in range(5)],
        [f"process_1_chunk_{i}" for i in range(5)],
        [f"process_2_chunk_{i}" for i in range(5)],
    ]
    processes = []
    for i, data in enumerate(all_data):
        p = AsyncFriendlyProcess(process_id=i, data_chunks=data)
        p.start()
        processes.append(p)
    wait_tasks = [p.wait.asynced()() for p in processes]
    await asyncio.gather(*wait_tasks)
    results = [p.result() for p in processes]
    return results


def test_async_process_execution():
    results = asyncio.run(run_processes_concurrently())
    assert [len(r) for r in results] == [5, 5, 5]
    assert results[2][4] == {'process': 2, 'run': 4, 'hash':
                             hashlib.sha256(b"process_2_chunk_4").hexdigest()[:16]}


class BackgroundProcess(Skprocess):
    def __init__(self, numbers: list):
        self.numbers = numbers
        self.process_config.runs = len(numbers)
        self.results = []

    def __run__(self):
        n = self.numbers[self._current_run]
        factors = self._prime_factors(n)
        self.results.append({'number': n, 'factors': factors})

    def _prime_factors(self, n):
        factors = []
        d = 2
        while d * d <= n:
            while n % d == 0:
                factors.append(d)
                n //= d
            d += 1
        if n > 1:
            factors.append(n)
        return factors

    def __result__(self):
        return self.results


def test_background_execution_with_future():
    numbers = [123456789, 987654321, 1000003, 999983, 65537]  # smaller primes than the document's
    process = BackgroundProcess(numbers)
    future = process.run.background()()
    main_thread_work = []
    for i in range(5):
        main_thread_work.append(math.factorial(100 + i))
    result = future.result()
    assert len(result) == 5
    assert result[0] == {'number': 123456789, 'factors': [3, 3, 3607, 3803]}
    assert result[1] == {'number': 987654321, 'factors': [3, 3, 17, 17, 379721]}
    assert result[4]['factors'] == [65537]


# == Pool ======================================================================================

def square(x):
    return x * x


def test_basic_map():
    pool = Pool(workers=4)
    items = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    results = pool.map(square, items)
    assert results == [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]
    pool.close()


def process_data(data):
    normalized = data.strip().lower()
    data_hash = hashlib.md5(normalized.encode()).hexdigest()
    return {'original': data, 'normalized': normalized, 'hash': data_hash[:8]}


@pytest.fixture(scope="module")
def pool():
    with Pool(workers=4) as pool:
        yield pool


def test_pool_as_context_manager():
    with Pool(workers=4) as pool:
        items = ["  Apple  ", "BANANA", "Cherry", "  DATE", "elderberry"]
        results = pool.map(process_data, items)
        lines = [f"{r['original']:>12} -> {r['normalized']:<12} ({r['hash']})" for r in results]
    assert [r['normalized'] for r in results] == ["apple", "banana", "cherry", "date", "elderberry"]
    assert lines[1] == f"      BANANA -> banana       ({hashlib.md5(b'banana').hexdigest()[:8]})"
    with pytest.raises(StateError, match="closed"):  # pool is automatically closed
        pool.map(square, [1])


def add(a, b):
    return a + b


def multiply(x, y, z):
    return x * y * z


def test_star_for_tuple_unpacking(pool):
    # without star(): add() expects 2 args, got 1 tuple
    with pytest.raises(TypeError):
        pool.map(add, [(1, 2), (3, 4)])
    pairs = [(1, 2), (3, 4), (5, 6), (7, 8)]
    sums = pool.star().map(add, pairs)
    assert f"Sums: {sums}" == "Sums: [3, 7, 11, 15]"
    triples = [(1, 2, 3), (4, 5, 6), (7, 8, 9)]
    products = pool.star().map(multiply, triples)
    assert f"Products: {products}" == "Products: [6, 120, 504]"


def variable_work(item):
    iterations = (item % 10 + 1) * 50  # * 500 in the document
    data = str(item).encode()
    for _ in range(iterations):
        data = hashlib.sha256(data).digest()
    return {'item': item, 'iterations': iterations, 'hash': hashlib.sha256(data).hexdigest()[:12]}


def test_unordered_map_for_fastest_list(pool):
    items = list(range(20))
    results = pool.unordered_map(variable_work, items)
    assert isinstance(results, list) and len(results) == 20
    assert sorted(r['item'] for r in results) == items
    assert all(r == variable_work(r['item']) for r in results)


def heavy_computation(item):
    data = str(item).encode()
    for _ in range(100):  # 1000 in the document
        data = hashlib.sha256(data).digest()
    final_hash = hashlib.sha256(data).hexdigest()
    return {'input': item, 'hash': final_hash,
            'derived': [final_hash[i:i + 4] for i in range(0, 64, 4)]}


def test_imap_for_memory_efficiency(pool):
    items = range(100)
    processed = 0
    for result in pool.imap(heavy_computation, items):
        assert result['input'] == processed  # in order
        processed += 1
        assert len(result['derived']) == 16
    assert f"Done! Processed {processed} total items" == "Done! Processed 100 total items"


def test_unordered_imap_for_fastest_results(pool):
    items = list(range(20))
    results = []
    for result in pool.unordered_imap(variable_work, items):
        results.append(result)
    assert sorted(r['item'] for r in results) == items


def slow_function(x):
    def fib(n):
        if n <= 1:
            return n
        return fib(n - 1) + fib(n - 2)

    if x == 5:
        return fib(40)  # takes far longer than the timeout
    else:
        return fib(10 + x)  # fib(20 + x) in the document


def test_pool_with_timeout():
    with Pool(workers=4) as pool:
        items = [1, 2, 3, 4, 5, 6, 7, 8]
        try:
            results = pool.map.timeout(1.0)(slow_function, items)  # 2.0 in the document
            outcome = results
        except TimeoutError as e:
            outcome = f"Operation timed out: {e}"
        assert outcome.startswith("Operation timed out: ")
        got = []
        try:
            for result in pool.imap.timeout(5.0)(slow_function, [1, 2, 3]):
                got.append(result)
        except TimeoutError:
            got.append("imap timed out")
        assert got == [89, 144, 233]


def compute(x):
    def prime_factors(n):
        factors = []
        d = 2
        while d * d <= n:
            while n % d == 0:
                factors.append(d)
                n //= d
            d += 1
        if n > 1:
            factors.append(n)
        return factors

    large_num = 10**6 + x * 1000 + 7  # 10**9 + ... in the document
    return {'input': x, 'number': large_num, 'factors': prime_factors(large_num)}


def test_background_execution_with_pool(pool):
    items = list(range(20))
    future = pool.map.background()(compute, items)
    main_work = []
    for i in range(3):
        result = math.factorial(500 + i * 100)
        main_work.append(len(str(result)))
    results = future.result()
    assert len(results) == 20 and results[0] == compute(0)
    assert math.prod(results[7]['factors']) == results[7]['number']


def cpu_work(x):
    data = str(x).encode()
    for _ in range(100):  # 1000 in the document
        data = hashlib.sha256(data).digest()
    return {'input': x, 'hash': hashlib.sha256(data).hexdigest()[:16]}


async def process_batches():
    with Pool(workers=4) as pool:
        batch1 = list(range(10))
        batch2 = list(range(10, 20))
        batch3 = list(range(20, 30))
        results = await asyncio.gather(
            pool.map.asynced()(cpu_work, batch1),
            pool.map.asynced()(cpu_work, batch2),
            pool.map.asynced()(cpu_work, batch3),
        )
        return results


def test_async_pool_operations():
    results = asyncio.run(process_batches())
    assert [len(r) for r in results] == [10, 10, 10]
    assert results[1][0] == cpu_work(10) and results[2][9] == cpu_work(29)


class DataTransformer(Skprocess):
    def __init__(self, input_data: dict):
        self.input_data = input_data
        self.process_config.runs = 1  # single run per item
        self.transformed = None

    def __run__(self):
        data = self.input_data
        data_json = json.dumps(data, sort_keys=True)
        data_hash = hashlib.sha256(data_json.encode()).hexdigest()
        self.transformed = {
            'original_id': data['id'],
            'original_value': data['value'],
            'doubled': data['value'] * 2,
            'squared': data['value'] ** 2,
            'hash': data_hash[:12],
            'processed': True
        }

    def __result__(self):
        return self.transformed


def test_using_skprocess_with_pool():
    items = [{'id': 1, 'value': 10}, {'id': 2, 'value': 20},
             {'id': 3, 'value': 30}, {'id': 4, 'value': 40}]
    with Pool(workers=2) as pool:
        results = pool.map(DataTransformer, items)
        lines = [f"ID {r['original_id']}: {r['original_value']} -> doubled={r['doubled']}, "
                 f"squared={r['squared']}" for r in results]
    assert lines == ["ID 1: 10 -> doubled=20, squared=100", "ID 2: 20 -> doubled=40, squared=400",
                     "ID 3: 30 -> doubled=60, squared=900", "ID 4: 40 -> doubled=80, squared=1600"]


def process_pair(x, y):
    n, r = max(x, y), min(x, y)
    result = math.comb(n * 10, r * 2)
    return {'inputs': (x, y), 'comb': result, 'digits': len(str(result))}


def test_combining_star_with_modifiers():
    pairs = [(1, 2), (3, 4), (5, 6), (7, 8)]
    expected = [process_pair(*p) for p in pairs]

    async def main():
        with Pool(workers=4) as pool:
            assert pool.star().map.timeout(5.0)(process_pair, pairs) == expected
            future = pool.star().map.background()(process_pair, pairs)
            assert future.result() == expected
            assert await pool.star().map.asynced()(process_pair, pairs) == expected
            assert [r['inputs'] for r in pool.star().imap(process_pair, pairs)] == pairs
            assert sorted(r['inputs'] for r in pool.star().unordered_imap(process_pair, pairs)) == pairs

    asyncio.run(main())


def risky_function(x):
    if x == 3:
        raise ValueError(f"Cannot process {x}")
    return x * 2


def test_error_handling_in_pool(pool):
    items = [1, 2, 3, 4, 5]
    # Deliberate difference: the document catches RuntimeError; the worker's own
    # ValueError reaches us (as in concurrent.futures). See README "Coming from suitkaise".
    with pytest.raises(ValueError, match="Cannot process 3"):
        try:
            results = pool.map(risky_function, items)
        except RuntimeError as e:
            pytest.fail("not a RuntimeError")
    safe_items = [1, 2, 4, 5]
    results = pool.map(risky_function, safe_items)
    assert f"Safe results: {results}" == "Safe results: [2, 4, 8, 10]"


# == Share =====================================================================================

class Counter:
    def __init__(self):
        self.value = 0

    def increment(self, amount: int = 1):
        self.value += amount


class SharedCounterProcess(Skprocess):
    def __init__(self, shared: Share, amount: int = 1):
        self.shared = shared
        self.amount = amount
        self.process_config.runs = 10  # increment 10 times

    def __postrun__(self):
        # use a method to avoid read/modify/write races
        self.shared.counter.increment(self.amount)

    def __result__(self):
        return "done"


def test_basic_shared_counter():
    share = Share()
    share.counter = Counter()
    with Pool(workers=4) as pool:
        assert pool.map(SharedCounterProcess, [share] * 5) == ["done"] * 5
    assert f"Final counter: {share.counter.value}" == "Final counter: 50"
    share.stop()


class TimedWorker(Skprocess):
    def __init__(self, shared: Share, work_count: int = 5):
        self.shared = shared
        self.process_config.runs = work_count

    def __run__(self):
        with TimeThis() as run_timer:
            data = b"benchmark_data"
            iterations = 50 + (self._current_run * 97 % 150)  # 500 + (... % 1500)
            for _ in range(iterations):
                data = hashlib.sha256(data).digest()
        self.shared.timer.add_time(run_timer.most_recent)

    def __result__(self):
        return "done"


def test_sharing_complex_objects_like_sktimer():
    share = Share()
    share.timer = Sktimer()
    workers = 4
    with Pool(workers=workers) as pool:
        pool.map(TimedWorker, [share] * workers)
    stats = share.timer.get_stats()
    num_times = stats.num_times
    assert num_times == 20  # (4 workers × 5 runs each)
    assert 0 < stats.min <= stats.mean <= stats.max
    assert stats.stdev >= 0 and stats.variance >= 0
    share.stop()


class WorkerProcess(Skprocess):
    def __init__(self, shared: Share):
        self.shared = shared
        self.process_config.runs = 10

    def __postrun__(self):
        self.shared.counter.increment(1)

    def __result__(self):
        return "done"


def test_share_as_context_manager():
    with Share() as share:
        share.counter = Counter()
        with Pool(workers=2) as pool:
            pool.map(WorkerProcess, [share] * 3)
        assert f"Final value: {share.counter.value}" == "Final value: 30"
    assert not share.is_running  # Share automatically stopped after 'with' block


class Stats:
    def __init__(self):
        self.processed = 0
        self.errors = 0
        self.successes = 0

    def record_success(self):
        self.processed += 1
        self.successes += 1

    def record_error(self):
        self.processed += 1
        self.errors += 1


class StatsProcessor(Skprocess):  # DataProcessor in the document
    def __init__(self, shared: Share, item: dict):
        self.shared = shared
        self.item = item
        self.process_config.runs = 1

    def __run__(self):
        with TimeThis() as run_timer:
            try:
                data = self.item['data'].encode()
                checksum = hashlib.sha256(data).digest()
                if checksum[0] % 5 == 0:
                    raise RuntimeError(f"Failed processing {self.item['id']}")
                for _ in range(100):  # 1000 in the document
                    data = hashlib.sha256(data).digest()
                self.shared.stats.record_success()
            except Exception:
                self.shared.stats.record_error()
        self.shared.timer.add_time(run_timer.most_recent)

    def __result__(self):
        return self.item['id']


def test_multiple_shared_objects():
    items = [{'id': i, 'data': f'item_{i}'} for i in range(20)]
    failing = sum(hashlib.sha256(i['data'].encode()).digest()[0] % 5 == 0 for i in items)
    with Share() as share:
        share.stats = Stats()
        share.timer = Sktimer()
        with Pool(workers=4) as pool:
            args = [(share, item) for item in items]
            assert pool.star().map(StatsProcessor, args) == list(range(20))
        assert share.stats.processed == 20
        assert share.stats.successes == 20 - failing and share.stats.errors == failing
        assert f"Avg time: {share.timer.mean:.4f}s" and share.timer.num_times == 20


class IterativeWorker(Skprocess):
    def __init__(self, shared: Share):
        self.shared = shared
        self.process_config.runs = 20  # 100 in the document

    def __run__(self):
        with TimeThis() as run_timer:
            data = f"iteration_{self._current_run}".encode()
            iterations = 20 + (hashlib.sha256(data).digest()[0] % 60)  # 200 + (... % 600)
            for _ in range(iterations):
                data = hashlib.sha256(data).digest()
        self.shared.progress += 1
        self.shared.timer.add_time(run_timer.most_recent)

    def __result__(self):
        return "complete"


def test_sharing_with_single_skprocess():
    with Share() as share:
        share.progress = 0
        share.timer = Sktimer()
        process = IterativeWorker(share)
        process.start()
        seen = []
        while process.is_alive:
            seen.append(share.progress)  # monitor progress from parent
            payload = b"progress"
            for _ in range(500):
                payload = hashlib.sha256(payload).digest()
        process.wait()
        assert seen == sorted(seen) and all(0 <= p <= 20 for p in seen)
        assert share.progress == 20
        assert share.timer.num_times == 20 and share.timer.total_time > 0
        assert process.result() == "complete"


def test_share_start_and_stop_control():
    share = Share(auto_start=False)
    assert not share.is_running
    with pytest.warns(RuntimeWarning, match="stopped"):
        share.counter = 0  # warning: Share is stopped
    share.start()
    assert f"Running: {share.is_running}" == "Running: True"
    share.counter = 100
    share.stop()
    assert f"Running: {share.is_running}" == "Running: False"
    share.start()
    assert f"Counter: {share.counter}" == "Counter: 100"
    share.stop()


class Incrementer(Skprocess):
    def __init__(self, shared: Share):
        self.shared = shared
        self.process_config.runs = 10

    def __postrun__(self):
        self.shared.count += 1

    def __result__(self):
        return "done"


def test_clearing_share_state():
    with Share() as share:
        share.count = 0
        with Pool(workers=2) as pool:
            pool.map(Incrementer, [share] * 2)
        assert f"After batch 1: {share.count}" == "After batch 1: 20"
        share.clear()
        share.count = 0  # re-initialize
        with Pool(workers=2) as pool:
            pool.map(Incrementer, [share] * 3)
        assert f"After batch 2: {share.count}" == "After batch 2: 30"


# == Pipe ======================================================================================

class PipeWorker(Skprocess):
    def __init__(self, pipe_point: Pipe.Point):
        self.pipe = pipe_point
        self.process_config.runs = 1

    def __run__(self):
        command = self.pipe.recv()
        print(f"[Child] Received: {command}")
        result = command['value'] * 2
        self.pipe.send({'result': result, 'status': 'ok'})
        print(f"[Child] Sent result: {result}")

    def __result__(self):
        return "pipe_complete"


def test_basic_pipe_communication():
    anchor, point = Pipe.pair()
    process = PipeWorker(point)
    process.start()
    point.close()
    anchor.send({'action': 'compute', 'value': 21})
    response = anchor.recv()
    assert response == {'result': 42, 'status': 'ok'}
    process.wait()
    assert process.result() == "pipe_complete"
    anchor.close()


class DataReceiver(Skprocess):
    def __init__(self, pipe_point: Pipe.Point):
        self.pipe = pipe_point
        self.process_config.runs = 1
        self.received_data = []

    def __run__(self):
        while True:
            data = self.pipe.recv()
            if data is None:
                break
            self.received_data.append(data)

    def __result__(self):
        return self.received_data


def test_one_way_pipe():
    anchor, point = Pipe.pair(one_way=True)
    process = DataReceiver(point)
    process.start()
    point.close()
    for i in range(5):
        anchor.send({'id': i, 'value': i * 10})
    anchor.send(None)  # sentinel
    process.wait()
    result = process.result()
    assert result == [{'id': i, 'value': i * 10} for i in range(5)]
    anchor.close()


class DualPipeWorker(Skprocess):
    def __init__(self, cmd_pipe: Pipe.Point, data_pipe: Pipe.Point):
        self.cmd_pipe = cmd_pipe
        self.data_pipe = data_pipe
        self.process_config.runs = None  # run until stop

    def __run__(self):
        try:
            cmd = self.cmd_pipe.recv()
            if cmd['action'] == 'process':
                data = self.data_pipe.recv()
                result = sum(data)
                self.cmd_pipe.send({'status': 'done', 'result': result})
            elif cmd['action'] == 'stop':
                self.stop()
        except Exception as e:
            self.cmd_pipe.send({'status': 'error', 'error': str(e)})

    def __result__(self):
        return "worker_stopped"


def test_multiple_pipes():
    cmd_anchor, cmd_point = Pipe.pair()
    data_anchor, data_point = Pipe.pair()
    process = DualPipeWorker(cmd_point, data_point)
    process.start()
    cmd_point.close()
    data_point.close()
    cmd_anchor.send({'action': 'process'})
    data_anchor.send([1, 2, 3, 4, 5])
    result = cmd_anchor.recv()
    assert f"Result: {result}" == "Result: {'status': 'done', 'result': 15}"
    cmd_anchor.send({'action': 'stop'})
    assert process.wait(timeout=30)
    assert process.result() == "worker_stopped"
    cmd_anchor.close()
    data_anchor.close()


# == tell() and listen() =======================================================================

class CommandableProcess(Skprocess):
    def __init__(self):
        self.process_config.runs = None  # run indefinitely
        self.multiplier = 1
        self.results = []

    def __prerun__(self):
        command = self.listen(timeout=0.1)
        if command is not None:
            if command.get('action') == 'set_multiplier':
                self.multiplier = command['value']
            elif command.get('action') == 'stop':
                self.stop()

    def __run__(self):
        data = f"run_{self._current_run}_mult_{self.multiplier}".encode()
        for _ in range(100 * self.multiplier):
            data = hashlib.sha256(data).digest()
        value = int.from_bytes(data[:4], 'big') % 1000
        self.results.append({'run': self._current_run, 'value': value, 'mult': self.multiplier})
        if self._current_run % 5 == 0:
            self.tell({'progress': self._current_run, 'latest': value})

    def __result__(self):
        return self.results


def test_tell_and_listen_basic_usage():
    process = CommandableProcess()
    process.start()
    data = b"parent_work"
    for _ in range(1500):
        data = hashlib.sha256(data).digest()
    process.tell({'action': 'set_multiplier', 'value': 10})
    messages = []
    for _ in range(20):
        msg = process.listen(timeout=0.1)
        if msg is not None:
            messages.append(msg)
    process.tell({'action': 'stop'})
    assert process.wait(timeout=60)
    while True:
        msg = process.listen(timeout=0.1)
        if msg is None:
            break
        messages.append(msg)
    results = process.result()
    assert [r['run'] for r in results] == list(range(len(results)))
    assert results and results[-1]['mult'] == 10  # the command reached the child
    assert [m['progress'] for m in messages] == [r['run'] for r in results if r['run'] % 5 == 0]


class AsyncWorker(Skprocess):
    def __init__(self, data_items: list):
        self.data_items = data_items
        self.process_config.runs = len(data_items)
        self.results = []

    def __run__(self):
        item = self.data_items[self._current_run]
        hash_result = hashlib.sha256(item.encode()).hexdigest()
        self.results.append(hash_result[:16])
        if self._current_run % 5 == 0:
            self.tell({'run': self._current_run, 'status': 'working',
                       'last_hash': hash_result[:8]})

    def __result__(self):
        return self.results


def test_tell_and_listen_async_usage():
    async def monitor_process():
        data = [f"async_data_item_{i}" for i in range(20)]
        process = AsyncWorker(data)
        process.start()
        statuses = []
        while process.is_alive:
            msg = await process.listen.asynced()(timeout=0.2)
            if msg:
                statuses.append(msg)
        await process.wait.asynced()()
        while (msg := process.listen(timeout=0.1)) is not None:  # not in the document: the
            statuses.append(msg)  # messages still queued when it ended
        return process.result(), statuses

    result, statuses = asyncio.run(monitor_process())
    assert len(result) == 20
    assert [s['run'] for s in statuses] == [0, 5, 10, 15]


# == autoreconnect =============================================================================
# No PostgreSQL here: sqlite3 (on a file) plays the database, keyed as the documents key
# psycopg2; the pattern (a connection opened in the parent, live again in the child) is theirs.

@autoreconnect(start_threads=False, **{"sqlite3.Connection": {"*": None}})
class DatabaseWorker(Skprocess):
    def __init__(self, db_connection, query: str):
        self.db = db_connection
        self.query = query
        self.process_config.runs = 1
        self.results = None

    def __run__(self):
        # self.db is now a live connection, not a Reconnector
        cursor = self.db.cursor()
        cursor.execute(self.query)
        self.results = cursor.fetchall()
        cursor.close()

    def __result__(self):
        return self.results


def test_basic_autoreconnect(tmp_path):
    path = str(tmp_path / "mydb.db")
    with sqlite3.connect(path) as setup:
        setup.execute("create table users (name)")
        setup.execute("create table orders (item)")
        setup.executemany("insert into users values (?)", [("ann",), ("bob",)])
        setup.execute("insert into orders values ('book')")
    db = sqlite3.connect(path)
    with Pool(workers=2) as pool:
        queries = [
            (db, "SELECT * FROM users LIMIT 10"),
            (db, "SELECT * FROM orders LIMIT 10"),
        ]
        results = pool.star().map(DatabaseWorker, queries)
    assert results == [[("ann",), ("bob",)], [("book",)]]


@autoreconnect(
    start_threads=False,
    **{
        "psycopg2.Connection": {"*": "default_pass", "analytics_db": "analytics_pass"},
        "redis.Redis": {"*": "redis_secret"},
        "pymongo.MongoClient": {"*": "mongo_pass"},
        "sqlite3.Connection": {"*": None},
    }
)
class MultiDbWorker(Skprocess):
    def __init__(self, main_db, analytics_db, cache, mongo):
        self.main_db = main_db
        self.analytics_db = analytics_db
        self.cache = cache
        self.mongo = mongo
        self.process_config.runs = 1

    def __run__(self):
        self.kinds = [type(c).__name__ for c in (self.main_db, self.analytics_db, self.cache, self.mongo)]

    def __result__(self):
        return self.kinds


def test_autoreconnect_with_multiple_connection_types(tmp_path):
    # Four sqlite connections stand in for the four servers (none runs here).
    connections = [sqlite3.connect(str(tmp_path / f"{n}.db")) for n in "abcd"]
    assert MultiDbWorker(*connections).run() == ["Connection"] * 4


# == Full-on distributed task queue =============================================================

class TaskStats:
    def __init__(self):
        self.total_tasks = 0
        self.completed = 0
        self.failed = 0
        self.retried = 0

    def record_complete(self):
        self.completed += 1
        self.total_tasks += 1

    def record_fail(self):
        self.failed += 1
        self.total_tasks += 1

    def record_retry(self):
        self.retried += 1


class TaskWorker(Skprocess):
    def __init__(self, shared: Share, task: dict):
        self.shared = shared
        self.task = task
        self.process_config.runs = 1
        self.process_config.lives = 3
        self.process_config.timeouts.run = 5.0
        self.result_data = None
        self.attempts = 0

    def __prerun__(self):
        self.attempts += 1
        if self.attempts > 1:
            self.shared.stats.record_retry()

    def __run__(self):
        start = time.time()
        try:
            iterations = 50 + (self.task['id'] * 37 % 150)  # 500 + (... % 1500)
            data = self.task['data'].encode()
            for _ in range(iterations):
                data = hashlib.sha256(data).digest()
            checksum = hashlib.sha256(self.task['data'].encode()).digest()
            if checksum[0] % 10 == 0:
                raise RuntimeError(f"Task {self.task['id']} failed (content check)")
            self.result_data = {
                'task_id': self.task['id'],
                'input': self.task['data'],
                'output': hashlib.sha256(data).hexdigest()[:32],
                'iterations': iterations,
                'attempts': self.attempts,
                'status': 'success'
            }
            self.shared.stats.record_complete()
        finally:
            elapsed = time.time() - start
            self.shared.timer.add_time(elapsed)

    def __error__(self):
        self.shared.stats.record_fail()
        return {
            'task_id': self.task['id'],
            'input': self.task['data'],
            'output': None,
            'attempts': self.attempts,
            'status': 'failed',
            'error': str(self.error)
        }

    def __result__(self):
        return self.result_data


def run_task_queue(tasks: list[dict], workers: int = 4):
    with Share() as share:
        share.stats = TaskStats()
        share.timer = Sktimer()
        args = [(share, task) for task in tasks]
        with Pool(workers=workers) as pool:
            results = pool.star().map(TaskWorker, args)
        stats = {
            'total_tasks': share.stats.total_tasks,
            'completed': share.stats.completed,
            'failed': share.stats.failed,
            'retried': share.stats.retried,
            'timing': {
                'total': share.timer.total_time,
                'mean': share.timer.mean,
                'min': share.timer.min,
                'max': share.timer.max,
                'p95': share.timer.percentile(95),
            }
        }
    return {'results': results, 'stats': stats}


def test_full_on_distributed_task_queue():
    tasks = [{'id': i, 'data': f'task_data_{i}'} for i in range(50)]
    failing = {t['id'] for t in tasks if hashlib.sha256(t['data'].encode()).digest()[0] % 10 == 0}
    assert failing  # the document's data has some
    output = run_task_queue(tasks, workers=4)
    stats = output['stats']
    assert stats['total_tasks'] == 50
    assert stats['failed'] == len(failing) and stats['completed'] == 50 - len(failing)
    assert stats['retried'] == 2 * len(failing)
    assert stats['timing']['min'] <= stats['timing']['mean'] <= stats['timing']['max']
    assert json.dumps(stats)  # plain values, ready to print or save
    for r in output['results']:
        if r['task_id'] in failing:
            assert r['status'] == 'failed' and r['attempts'] == 3 and r['output'] is None
        else:
            assert r['status'] == 'success' and r['attempts'] == 1
    assert [r['task_id'] for r in output['results']] == list(range(50))


# == Full-on data streaming pipeline ============================================================

class Results:
    def __init__(self):
        self.items = []
        self.count = 0

    def add(self, item):
        self.items.append(item)
        self.count += 1


class DataPipelineWorker(Skprocess):
    def __init__(self, shared: Share, worker_id: int):
        self.shared = shared
        self.worker_id = worker_id
        self.process_config.runs = None
        self.processed = 0

    def __prerun__(self):
        msg = self.listen(timeout=0.1)
        if msg is not None:
            if msg.get('action') == 'stop':
                self.stop()
            elif msg.get('action') == 'data':
                self._pending_data = msg['payload']
            else:
                self._pending_data = None
        else:
            self._pending_data = None

    def __run__(self):
        if self._pending_data is None:
            return
        with TimeThis() as run_timer:
            data = self._pending_data
            if isinstance(data, str):
                data_bytes = data.encode()
                for _ in range(50):  # 500 in the document
                    data_bytes = hashlib.sha256(data_bytes).digest()
                output = hashlib.sha256(data_bytes).hexdigest()[:16]
            else:
                output = data * 2
            result = {'worker': self.worker_id, 'input': data, 'output': output,
                      'timestamp': time.time()}
        self.shared.results.add(result)
        self.shared.timer.add_time(run_timer.most_recent)
        self.processed += 1
        self._pending_data = None

    def __postrun__(self):
        if self.processed > 0 and self.processed % 10 == 0:
            self.tell({'worker': self.worker_id, 'processed': self.processed, 'status': 'running'})

    def __onfinish__(self):
        self.tell({'worker': self.worker_id, 'processed': self.processed, 'status': 'finished'})

    def __result__(self):
        return {'worker_id': self.worker_id, 'total_processed': self.processed}


def run_pipeline(data_stream, num_workers: int = 2, timeout: float = 5.0):
    with Share() as share:
        share.results = Results()
        share.timer = Sktimer()
        workers = []
        for i in range(num_workers):
            worker = DataPipelineWorker(share, worker_id=i)
            worker.start()
            workers.append(worker)
        start_time = time.time()
        worker_idx = 0
        for item in data_stream:
            if time.time() - start_time > timeout:
                break
            checksum = hashlib.sha256(str(item).encode()).hexdigest()[:8]
            workers[worker_idx].tell({'action': 'data', 'payload': item, 'checksum': checksum})
            worker_idx = (worker_idx + 1) % num_workers
        for worker in workers:
            worker.tell({'action': 'stop'})
        statuses = []
        for worker in workers:
            while True:
                msg = worker.listen(timeout=0.5)
                if msg is None:
                    break
                statuses.append(msg)
        for worker in workers:
            worker.wait()
        worker_results = [worker.result() for worker in workers]
        return {
            'results': share.results.items,
            'count': share.results.count,
            'worker_stats': worker_results,
            'timing': {
                'total': share.timer.total_time,
                'mean': share.timer.mean if share.timer.num_times > 0 else 0,
            },
            'statuses': statuses
        }


def test_full_on_data_streaming_pipeline():
    def generate_data(n):
        for i in range(n):
            yield f"item_{i}"

    output = run_pipeline(generate_data(30), num_workers=3, timeout=10.0)  # 100 items
    assert output['count'] == 30
    assert sorted(r['input'] for r in output['results']) == sorted(f"item_{i}" for i in range(30))
    assert output['worker_stats'] == [{'worker_id': i, 'total_processed': 10} for i in range(3)]
    assert all(r['worker'] == int(r['input'].split('_')[1]) % 3 for r in output['results'])
    # The parent collects statuses until one 0.5 s listen() comes back empty, so on a
    # loaded machine the last ones may come later than it listens (in suitkaise too).
    assert all(s['status'] in ('running', 'finished') and s['worker'] in (0, 1, 2)
               for s in output['statuses'])
    assert all(s['processed'] == 10 for s in output['statuses'] if s['status'] == 'finished')
    assert output['timing']['total'] > 0 and json.dumps(output)
