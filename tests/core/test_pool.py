"""Pool: every map flavour, every kind of callable, modifiers, errors; real processes."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from concurrent.futures import Future

import pytest

from skprocessing import ProcessError, ResultTimeoutError, RunError, SerializationError, Skprocess, StateError
from skprocessing.core.pool import Pool
from skprocessing.errors import RemoteTraceback

pytestmark = pytest.mark.timeout(90)


def square(x):
    return x * x


def pid_of(_):
    return os.getpid()


def fail_on_three(x):
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


@pytest.fixture(scope="module", params=["local", "tcp://127.0.0.1"])
def pool(request):
    # Every test that takes this fixture runs over both transports: the scheduler speaks
    # only the transport interface, so the ZeroMQ backend must behave the same.
    with Pool(2, transport=request.param) as shared:
        yield shared


# -- the four maps, star, callables --------------------------------------------------------

def test_map_keeps_input_order(pool):
    assert pool.map(square, range(1000)) == [x * x for x in range(1000)]


def test_unordered_map_returns_every_result(pool):
    assert sorted(pool.unordered_map(square, range(500))) == [x * x for x in range(500)]


def test_imap_and_unordered_imap(pool):
    assert list(pool.imap(square, range(300))) == [x * x for x in range(300)]
    assert sorted(pool.unordered_imap(square, iter(range(300)))) == [x * x for x in range(300)]


def test_empty_input(pool):
    assert pool.map(square, []) == []
    assert list(pool.imap(square, iter([]))) == []


def test_star_unpacks_items_for_all_four(pool):
    pairs = [(2, 3), (3, 2), (5, 0)]
    assert pool.star().map(pow, pairs) == [8, 9, 1]
    assert sorted(pool.star().unordered_map(pow, pairs)) == [1, 8, 9]
    assert list(pool.star().imap(pow, pairs)) == [8, 9, 1]
    assert sorted(pool.star().unordered_imap(pow, pairs)) == [1, 8, 9]


def test_any_callable(pool):
    offset = 10

    def local(x):
        return x + offset

    class Local:
        def __init__(self, k):
            self.k = k

        def times(self, x):
            return x * self.k

        def __call__(self, x):
            return x - self.k

    assert pool.map(lambda x: x * 2, range(5)) == [0, 2, 4, 6, 8]
    assert pool.map(local, range(3)) == [10, 11, 12]
    assert pool.map(Local(3).times, range(3)) == [0, 3, 6]
    assert pool.map(Local(1), range(3)) == [-1, 0, 1]
    assert [o.k for o in pool.map(Local, range(3))] == [0, 1, 2]


class Squarer(Skprocess):
    def __init__(self, x):
        self.x = x
        self.process_config.runs = 3
        self.total = 0

    def __prerun__(self):
        self.total += 1

    def __run__(self):
        self.total += self.x

    def __result__(self):
        return (self.total, self.timers.run.num_times, self.timers.full_run.num_times)


class Adder(Skprocess):
    def __init__(self, a, b):
        self.process_config.runs = 1
        self.a, self.b = a, b

    def __run__(self):
        if self.a < 0:
            raise KeyError("negative")

    def __result__(self):
        return self.a + self.b


def test_skprocess_items_run_their_full_lifecycle(pool):
    # one instance per item; 3 runs each: prerun adds 1, run adds x; every section timed
    assert pool.map(Squarer, [1, 2]) == [(6, 3, 3), (9, 3, 3)]
    assert pool.star().map(Adder, [(1, 2), (3, 4)]) == [3, 7]


def test_skprocess_error_is_raised_with_its_section_class(pool):
    with pytest.raises(RunError, match="negative") as info:
        pool.star().map(Adder, [(1, 2), (-1, 0)])
    assert "KeyError" in info.value.__cause__.text


def test_workers_are_started_once_and_reused(pool):
    pids = set(pool.worker_pids)
    assert len(pids) == 2
    for _ in range(3):
        assert set(pool.map(pid_of, range(50), chunksize=1)) <= pids
    assert set(pool.worker_pids) == pids


class CountsPickles:
    pickled = 0  # counted in this (the parent) process

    def __call__(self, x):
        return x

    def __getstate__(self):
        type(self).pickled += 1
        return {}


def test_function_is_serialized_once_per_call(pool):
    fn = CountsPickles()
    before = CountsPickles.pickled  # the fixture runs this once per transport
    assert pool.map(fn, range(200), chunksize=1) == list(range(200))
    assert CountsPickles.pickled - before == 1


def test_chunksize_sends_items_in_blocks(pool):
    pids = pool.map(pid_of, range(100), chunksize=10)
    for block in range(10):
        assert len(set(pids[block * 10:block * 10 + 10])) == 1


def test_large_arguments_and_results(pool):
    blobs = [bytes([i]) * (1 << 20) for i in range(6)]
    assert pool.map(len, blobs) == [1 << 20] * 6
    assert pool.map(bytes, [1 << 20] * 4) == [bytes(1 << 20)] * 4


# -- streaming and lazy input ----------------------------------------------------------------

def test_imap_streams_from_an_infinite_generator(pool):
    pulled = itertools.count()

    def source():
        for n in itertools.count():
            next(pulled)
            yield n

    results = pool.imap(square, source())
    assert [next(results) for _ in range(20)] == [x * x for x in range(20)]
    results.close()


def test_imap_reads_a_huge_generator_with_bounded_lookahead(pool):
    pulled = [0]

    def source():
        for n in range(10_000_000):
            pulled[0] = n
            yield n

    results = pool.imap(square, source())
    seen = 0
    for seen, value in enumerate(results, 1):
        assert value == (seen - 1) ** 2
        if seen % 50_000 == 0:
            assert pulled[0] - seen < 200_000  # the window, not the whole input
        if seen == 150_000:
            break
    results.close()
    assert pulled[0] < 400_000


def test_abandoned_imap_leaves_the_pool_usable(pool):
    results = pool.imap(square, itertools.count())
    assert next(results) == 0
    del results
    assert pool.map(square, range(10)) == [x * x for x in range(10)]


# -- modifiers --------------------------------------------------------------------------------

def test_modifiers_and_combinations(pool):
    assert pool.map.timeout(30)(square, range(5)) == [0, 1, 4, 9, 16]
    future = pool.map.background()(square, range(5))
    assert isinstance(future, Future) and future.result(30) == [0, 1, 4, 9, 16]
    combined = pool.star().map.timeout(30).background()(pow, [(2, 2)])
    assert combined.result(30) == [4]
    assert asyncio.run(_gather(pool)) == [[0, 1, 4], [1, 0]]
    assert list(pool.imap.timeout(30)(square, range(3))) == [0, 1, 4]
    assert sorted(pool.unordered_map.background()(square, range(3)).result(30)) == [0, 1, 4]


async def _gather(pool):
    return await asyncio.gather(pool.map.asynced()(square, range(3)),
                                pool.map.timeout(30).asynced()(lambda x: 1 - x, range(2)))


def test_concurrent_maps_from_threads(pool):
    results = {}

    def run(k):
        results[k] = pool.map(lambda x, k=k: x + k, range(300))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {k: [x + k for x in range(300)] for k in range(4)}


# -- errors -----------------------------------------------------------------------------------

def test_task_error_comes_back_with_type_message_and_traceback(pool):
    with pytest.raises(ValueError, match="bad item 3") as info:
        pool.map(fail_on_three, range(10))
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "fail_on_three" in info.value.__cause__.text
    assert any("item 3" in note for note in info.value.__notes__)
    assert pool.map(square, range(3)) == [0, 1, 4]  # the pool goes on


def test_imap_raises_at_the_items_position_and_goes_on(pool):
    results = pool.imap(fail_on_three, range(6), chunksize=2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="bad item 3"):
        next(results)
    assert list(results) == [4, 5]


class Unpicklable(Exception):
    def __init__(self):
        super().__init__("cannot travel")
        self.lock = threading.Lock()


def raise_unpicklable(x):
    raise Unpicklable()


def test_an_exception_that_cannot_travel_still_reports_its_type_and_text(pool):
    with pytest.raises(ProcessError, match="Unpicklable: cannot travel"):
        pool.map(raise_unpicklable, [1])


class Unsendable:
    """Refused by every serializer."""

    def __reduce__(self):
        raise TypeError("refuses to travel")


def test_unserializable_argument_names_its_index_and_path(pool):
    items = [1, 2, {"conn": Unsendable()}, 4]
    with pytest.raises(SerializationError, match="item 2") as info:
        pool.map(str, items)
    assert "['conn']" in str(info.value) and "Unsendable" in str(info.value)


def test_unserializable_argument_in_imap_fails_only_that_item(pool):
    results = pool.imap(str, [1, Unsendable(), 3], chunksize=3)
    assert next(results) == "1"
    with pytest.raises(SerializationError, match="item 1"):
        next(results)
    assert next(results) == "3"


def unsendable_result(x):
    return {"answer": Unsendable()} if x == 1 else x


def test_unserializable_result_names_its_index_and_path(pool):
    with pytest.raises(SerializationError, match="item 1") as info:
        pool.map(unsendable_result, range(3), chunksize=3)
    assert "['answer']" in str(info.value) and "Unsendable" in str(info.value)
    assert list(pool.imap(unsendable_result, [0, 2], chunksize=2)) == [0, 2]


def test_unserializable_function_is_refused_at_the_call(pool):
    thing = Unsendable()
    with pytest.raises(SerializationError, match="callable"):
        pool.map(lambda x: thing, [1])


def test_bad_arguments():
    with pytest.raises(ValueError):
        Pool(0)
    with Pool(1) as pool:
        with pytest.raises(TypeError):
            pool.map(42, [1])
        with pytest.raises(ValueError):
            pool.map(square, [1], chunksize=0)
        with pytest.raises(ValueError):
            pool.map(square, [1], timeout=-1)


def test_generator_error_is_raised_in_the_caller(pool):
    def source():
        yield 1
        raise OSError("input broke")

    with pytest.raises(OSError, match="input broke"):
        pool.map(square, source())
    assert pool.map(square, [2]) == [4]


# -- lifetime ---------------------------------------------------------------------------------

def test_closed_pool_raises_a_clear_error(assert_reaped):
    pool = Pool(2)
    assert pool.map(square, range(4)) == [0, 1, 4, 9]
    pids = pool.worker_pids
    pool.close()
    for pid in pids:
        assert_reaped(pid)
    for call in (pool.map, pool.unordered_map, pool.imap, pool.unordered_imap, pool.star().map):
        with pytest.raises(StateError, match="closed"):
            call(square, [1])
    pool.close()  # idempotent


def test_terminate_kills_workers_and_fails_running_maps(assert_reaped):
    pool = Pool(2)
    pool.map(square, [1])
    pids = pool.worker_pids
    future = pool.map.background()(_sleep, [30, 30])
    pool.terminate()
    with pytest.raises(StateError, match="terminated"):
        future.result(30)
    for pid in pids:
        assert_reaped(pid)


def _sleep(seconds):
    import time
    time.sleep(seconds)
    return seconds


def test_context_manager_closes_and_reaps(assert_reaped):
    with Pool(2) as pool:
        assert pool.map(square, [3]) == [9]
        pids = pool.worker_pids
    assert pool.state.value == "closed"
    for pid in pids:
        assert_reaped(pid)


def test_close_waits_for_background_maps():
    pool = Pool(2)
    future = pool.map.background()(_sleep, [0.2, 0.2, 0.2])
    pool.close()
    assert future.result(0) == [0.2, 0.2, 0.2]


def test_whole_call_timeout_cancels_and_replaces_busy_workers(assert_reaped):
    with Pool(2) as pool:
        pool.map(square, [1])
        before = pool.worker_pids
        with pytest.raises(ResultTimeoutError, match="did not finish"):
            pool.map.timeout(0.5)(_sleep, [60, 60, 60])
        for pid in before:
            assert_reaped(pid)
        assert pool.map(square, range(3)) == [0, 1, 4]


def test_a_large_closure_travels_once_per_worker(pool):
    table = bytearray(range(256)) * 8192  # 2 MiB, an out-of-band buffer for pickle 5
    assert pool.map(lambda i: table[i], range(0, 2_000_000, 250_000)) == [
        table[i] for i in range(0, 2_000_000, 250_000)]


def test_input_where_nothing_serializes_does_not_hang(pool):
    with pytest.raises(SerializationError, match="item 0"):
        pool.map(str, [Unsendable()])
    results = pool.imap(str, [Unsendable(), Unsendable()])
    for _ in range(2):
        with pytest.raises(SerializationError):
            next(results)
    assert list(results) == []


def test_close_cancels_an_imap_nobody_reads(assert_reaped):
    pool = Pool(2)
    results = pool.imap(square, itertools.count())
    assert next(results) == 0
    pids = pool.worker_pids
    pool.close()  # must not wait forever for an endless, unread imap
    with pytest.raises(StateError, match="closed before this imap was read"):
        for _ in results:
            pass
    for pid in pids:
        assert_reaped(pid)


def test_unordered_imap_raises_errors_and_goes_on(pool):
    results = pool.unordered_imap(fail_on_three, range(6), chunksize=1)
    got, errors = [], 0
    while True:
        try:
            got.append(next(results))
        except ValueError:
            errors += 1
        except StopIteration:
            break
    assert sorted(got) == [0, 1, 2, 4, 5] and errors == 1


def test_imap_asynced_and_background(pool):
    iterator = asyncio.run(_imap_async(pool))
    assert list(iterator) == [0, 1, 4]
    assert list(pool.unordered_imap.background()(square, [3]).result(30)) == [9]


async def _imap_async(pool):
    return await pool.imap.asynced()(square, range(3))


def test_worker_count(assert_reaped):
    with Pool(3) as three:
        assert three.workers == 3 and len(set(three.map(pid_of, range(60), chunksize=1))) <= 3
        while len(three.worker_pids) < 3:
            time.sleep(0.01)
        for pid in three.worker_pids:
            assert_reaped(pid)
    with Pool() as default:
        assert default.workers == (os.cpu_count() or 1)


class BreaksOnLoad:
    """Serializes fine, fails to load in the worker."""

    def __reduce__(self):
        return (_refuse_to_load, ())


def _refuse_to_load():
    raise RuntimeError("cannot be rebuilt here")


def test_an_item_that_cannot_be_loaded_in_the_worker_is_named(pool):
    results = pool.imap(str, [1, 2, BreaksOnLoad(), 4], chunksize=4)
    assert [next(results), next(results)] == ["1", "2"]
    with pytest.raises(Exception, match="cannot be rebuilt here") as info:
        next(results)
    assert any("item 2" in note for note in info.value.__notes__)
    assert list(results) == ["4"]


def test_a_pool_cannot_travel(pool):
    with pytest.raises(SerializationError, match="Pool cannot be sent"):
        pool.map(lambda x: pool, [1])


@pytest.mark.parametrize("serializer", ["cloudpickle", "pickle"])
def test_other_serializers(serializer):
    with Pool(2, serializer=serializer) as other:
        assert other.map(square, range(20)) == [x * x for x in range(20)]
        with pytest.raises(ValueError, match="bad item 3"):
            other.map(fail_on_three, range(5))
        if serializer == "pickle":
            with pytest.raises(SerializationError, match="callable"):
                other.map(lambda x: x, [1])  # plain pickle refuses lambdas, at the call


@pytest.mark.timeout(60)
def test_a_map_over_another_maps_imap_does_not_deadlock():
    with Pool(2) as pool:
        inner = pool.imap(lambda x: x + 1, range(50))
        assert pool.map(lambda x: x * 10, inner) == [(x + 1) * 10 for x in range(50)]


@pytest.mark.timeout(60)
def test_a_blocking_input_does_not_stall_other_maps():
    import queue as queue_module
    source: queue_module.Queue = queue_module.Queue()

    def slow_items():
        while (item := source.get()) is not None:
            yield item

    with Pool(2) as pool:
        waiting = pool.map.background()(lambda x: -x, slow_items())
        assert pool.map(abs, [-1, -2, -3], timeout=20) == [1, 2, 3]  # served meanwhile
        for item in (1, 2, 3):
            source.put(item)
        source.put(None)
        assert waiting.result(timeout=30) == [-1, -2, -3]


@pytest.mark.timeout(60)
def test_an_input_iterator_that_raises_fails_the_call_with_its_error():
    def broken():
        yield 1
        raise LookupError("input went wrong")

    with Pool(1) as pool:
        with pytest.raises(LookupError, match="input went wrong"):
            pool.map(abs, broken())
        assert pool.map(abs, iter([-5])) == [5]
