"""suitkaise 0.4.14's processing/how-to-use.md, example by example; only the import is
ours, sizes and sleeps shrunk. The Pool iterator methods' modifiers are in
test_pool_iterator_modifiers.py."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest

from skprocessing import (Skprocess, Pool, Share, Pipe, autoreconnect, ProcessTimers, ProcessError,
                          PreRunError, RunError, PostRunError, OnFinishError, ResultError,
                          ErrorHandlerError, ProcessTimeoutError, ResultTimeoutError)
from skprocessing import PipeEndpointError, Reconnector, SerializationError, Sktimer, StateError

pytestmark = pytest.mark.timeout(90)


def until(condition, limit=30.0):
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# -- Importing --------------------------------------------------------------------------------

def test_importing():
    # `from suitkaise import processing` becomes `import skprocessing as processing`.
    import skprocessing as processing
    assert processing.Skprocess is Skprocess and processing.Pool is Pool
    for error in (PreRunError, RunError, PostRunError, OnFinishError, ResultError,
                  ErrorHandlerError, ProcessTimeoutError):
        assert issubclass(error, ProcessError)
    assert issubclass(ResultTimeoutError, Exception) and ProcessTimers and Share and Pipe


# -- Skprocess ----------------------------------------------------------------------------------

class MyProcess(Skprocess):
    def __init__(self):
        self.counter = 0
        self.process_config.runs = 10

    def __run__(self):
        self.counter += 1

    def __result__(self):
        return self.counter


def test_skprocess_basic():
    process = MyProcess()
    process.start()
    process.wait()
    result = process.result()
    assert result == 10


# -- Lifecycle methods: each documented snippet, in one process ------------------------------

class Lifecycle(Skprocess):
    def __init__(self, path):
        self.path = path
        self.counter = 0
        self.results = []
        self.batches = [[1, 2], [3], [4, 5, 6]]
        self.done = []
        self.process_config.runs = 3

    def fetch_next_batch(self):
        return self.batches[self.counter]

    def __prerun__(self):
        self.data = self.fetch_next_batch()

    def __run__(self):
        self.batch_result = 0
        for item in self.data:
            self.batch_result += item * 10

    def __postrun__(self):
        self.results.append(self.batch_result)
        self.batch_result = None
        self.counter += 1

    def cleanup_resources(self):
        self.done.append("cleanup")

    def save_final_state(self):
        with open(self.path, "w") as f:
            f.write(repr(self.results))

    def __onfinish__(self):
        self.cleanup_resources()
        self.save_final_state()

    def __result__(self):
        return {
            'count': self.counter,
            'results': self.results,
            'status': 'completed',
            'done': self.done,
        }


def test_lifecycle_methods(tmp_path):
    path = tmp_path / "state.txt"
    assert Lifecycle(str(path)).run() == {'count': 3, 'results': [30, 30, 150],
                                          'status': 'completed', 'done': ['cleanup']}
    assert path.read_text() == "[30, 30, 150]"


class NoResult(Skprocess):
    def __init__(self):
        self.process_config.runs = 1

    def __run__(self):
        self.value = 1


def test_no_result_without_result_hook():
    # NOTE: Your process will not return a result unless you define `__result__()`.
    assert NoResult().run() is None


logged = []


def log_error(error):
    logged.append(error)


class Failing(Skprocess):
    def __init__(self, handle):
        self.process_config.runs = 1
        self.handle = handle

    def __run__(self):
        raise ValueError("bad item")

    def __error__(self):
        if not self.handle:
            return self.error  # what the default does
        log_error(self.error)
        return {'status': 'failed', 'error': str(self.error), 'logged': len(logged)}


def test_error_hook():
    result = Failing(handle=True).run()
    assert result["status"] == "failed" and "bad item" in result["error"] and result["logged"] == 1
    # Default behaviour: returns self.error, which process.result() raises.
    with pytest.raises(RunError) as caught:
        Failing(handle=False).run()
    assert isinstance(caught.value.original_error, ValueError) and caught.value.current_run == 0


# -- process_config ---------------------------------------------------------------------------

def test_process_config_defaults_and_fields():
    class P(Skprocess):
        def __run__(self):
            pass

    config = P().process_config
    assert config.runs is None and config.join_in is None and config.lives == 1
    for section in ("prerun", "run", "postrun", "onfinish", "result", "error"):
        assert getattr(config.timeouts, section) is None  # All default to None


class Runs100(Skprocess):
    def __init__(self):
        # run 100 iterations, then stop
        self.process_config.runs = 100

    def __run__(self):
        pass

    def __result__(self):
        return self.current_run


def test_runs():
    assert Runs100().run() == 100


class JoinIn(Skprocess):
    def __init__(self):
        # stop after 60 seconds (shrunk to 0.3)
        self.process_config.join_in = 0.3

    def __run__(self):
        time.sleep(0.01)

    def __result__(self):
        return self.current_run


def test_join_in():
    process = JoinIn()
    assert process.process_config.runs is None
    assert process.run() >= 1  # it stopped by itself, runs being None


class Lives(Skprocess):
    def __init__(self):
        # retry up to 2 times (3 total attempts)
        self.process_config.lives = 3
        self.process_config.runs = 4
        self.attempts = 0

    def __run__(self):
        if self.current_run == 2 and self.attempts < 2:
            self.attempts += 1
            raise RuntimeError("crash")

    def __result__(self):
        return self.current_run, self.attempts


def test_lives_restart_from_where_they_left_off():
    # 1. run state preserved; 2. restarts where it left off; 3. lives decremented
    assert Lives().run() == (4, 2)


class OutOfLives(Skprocess):
    def __init__(self):
        self.process_config.lives = 3
        self.process_config.runs = 1
        self.attempts = 0

    def __run__(self):
        self.attempts += 1
        raise RuntimeError("always")

    def __error__(self):
        return ("error hook", self.attempts)


def test_lives_exhausted_calls_error():
    # 4. If lives reaches 0, __error__() is called
    assert OutOfLives().run() == ("error hook", 3)


class Timeouts(Skprocess):
    def __init__(self):
        self.process_config.timeouts.prerun = 5.0
        self.process_config.timeouts.run = 0.2  # 30.0 in the document
        self.process_config.timeouts.postrun = 5.0
        self.process_config.timeouts.onfinish = 10.0
        self.process_config.timeouts.result = 5.0
        self.process_config.timeouts.error = 5.0
        self.process_config.runs = 1

    def __run__(self):
        time.sleep(30)


def test_timeouts():
    process = Timeouts()
    process.start()
    try:
        result = process.result()
    except ProcessTimeoutError as e:
        message = f"Timeout in {e.section} after {e.timeout}s on run {e.current_run}"
    assert message == "Timeout in __run__ after 0.2s on run 0"


class TimesOutOnce(Skprocess):
    def __init__(self):
        self.process_config.runs = 2
        self.process_config.lives = 2
        self.process_config.timeouts.run = 0.2
        self.slow_once = True

    def __run__(self):
        if self.slow_once:
            self.slow_once = False  # kept across the retry: the state is preserved
            time.sleep(30)

    def __result__(self):
        return self.current_run


def test_a_timeout_counts_against_lives():
    # "If a section times out, ProcessTimeoutError is raised. This counts against lives."
    assert TimesOutOnce().run() == 2
    process = TimesOutOnce()
    process.process_config.lives = 1
    with pytest.raises(ProcessTimeoutError):
        process.run()


# -- Control methods --------------------------------------------------------------------------

class Forever(Skprocess):
    def __init__(self):
        self.finished = False

    def __run__(self):
        time.sleep(0.005)

    def __onfinish__(self):
        self.finished = True

    def __result__(self):
        return ("finished", self.finished)


def test_start_stop_wait():
    process = Forever()
    process.start()  # returns immediately
    until(lambda: process.current_run >= 1)
    assert process.is_alive
    finished = process.wait(timeout=0.05)  # returns False if timeout
    assert finished is False
    process.stop()  # non-blocking
    finished = process.wait()  # blocks until done
    assert finished is True and not process.is_alive
    # Then runs __onfinish__() and __result__()
    assert process.result() == ("finished", True)


def test_kill():
    process = Forever()
    process.start()
    until(lambda: process.current_run >= 1)
    process.kill()  # no cleanup, no __onfinish__(), no result
    assert not process.is_alive
    assert process.result() is None


def test_wait_async():
    process = MyProcess()
    process.start()

    async def main():
        return await process.wait.asynced()()

    assert asyncio.run(main()) is True


def test_result_modifiers():
    process = MyProcess()
    process.start()
    data = process.result()  # blocks until result ready
    assert data == 10
    # with timeout
    assert process.result.timeout(10.0)() == 10
    # background - returns Future
    future = process.result.background()()
    assert future.result() == 10

    async def main():
        return await process.result.asynced()()

    assert asyncio.run(main()) == 10


def test_run_and_its_modifiers():
    assert MyProcess().run() == 10
    # Equivalent to: start(), wait(), result()
    process = MyProcess()
    process.start()
    process.wait()
    assert process.result() == 10
    assert MyProcess().run.timeout(30.0)() == 10
    future = MyProcess().run.background()()
    # ... do other work ...
    assert future.result() == 10

    async def main():
        return await MyProcess().run.asynced()()

    assert asyncio.run(main()) == 10


def test_result_timeout_error():
    process = Forever()
    process.start()
    try:
        try:
            result = process.result.timeout(0.2)()  # 10.0 in the document
        except ResultTimeoutError as e:
            result = "Timed out waiting for result"
        assert result == "Timed out waiting for result"
        with pytest.raises(ResultTimeoutError):
            process.wait.timeout(0.1)()
        with pytest.raises(ResultTimeoutError):
            process.listen.timeout(0.1)()
    finally:
        process.stop()
        process.wait()


class ProcessErrorExample(Skprocess):
    def __init__(self):
        self.process_config.runs = 3

    def __run__(self):
        if self.current_run == 1:
            raise KeyError("missing")


def test_process_error():
    process = ProcessErrorExample()
    process.start()
    try:
        result = process.result()
    except ProcessError as e:
        message = f"Process failed: {e}"
        assert e.current_run == 1 and isinstance(e.original_error, KeyError)
    assert message.startswith("Process failed: ") and "missing" in message


# -- tell() and listen() ----------------------------------------------------------------------

class Talker(Skprocess):
    def __init__(self):
        self.batch = []
        self.config = {}

    def handle_command(self, command):
        if command["command"] == "update_config":
            self.config["value"] = command["value"]
            self.batch = list(range(command["value"] // 10))

    def __prerun__(self):
        command = self.listen(timeout=1.0)
        if command:
            self.handle_command(command)

    def __run__(self):
        pass

    def __postrun__(self):
        if self.batch:
            self.tell({"status": "batch_complete", "count": len(self.batch)})
            self.batch = []


def test_tell_and_listen():
    process = Talker()
    process.start()
    try:
        # from parent
        process.tell({"command": "update_config", "value": 100})
        data = process.listen()  # blocks until data received
        assert data == {"status": "batch_complete", "count": 10}
        data = process.listen(timeout=0.2)  # returns None if timeout
        assert data is None
        process.tell({"command": "update_config", "value": 30})
        future = process.listen.background()(timeout=5.0)
        assert future.result() == {"status": "batch_complete", "count": 3}

        async def main():
            process.tell({"command": "update_config", "value": 20})
            return await process.listen.asynced()()

        assert asyncio.run(main()) == {"status": "batch_complete", "count": 2}
    finally:
        process.stop()
        process.wait()


# -- Timing, ProcessTimers ----------------------------------------------------------------------

class Timed(Skprocess):
    def __init__(self):
        self.process_config.runs = 5

    def __prerun__(self):
        time.sleep(0.001)

    def __run__(self):
        time.sleep(0.002)

    def __postrun__(self):
        pass

    def __onfinish__(self):
        pass

    def __result__(self):
        return "ok"


def test_timing():
    process = Timed()
    process.start()
    process.wait()
    # access timing data
    assert process.__run__.timer.mean >= 0.002
    assert process.__prerun__.timer.total_time >= 0.005
    assert process.__postrun__.timer.percentile(95) >= 0
    # aggregate timer for full iterations (prerun + run + postrun)
    assert process.process_timer.mean >= process.__run__.timer.mean
    timer = process.__run__.timer
    for stat in (timer.mean, timer.median, timer.stdev, timer.min, timer.max):
        assert isinstance(stat, float)


def test_process_timers():
    process = Timed()
    process.start()
    process.wait()
    timers = process.timers
    assert isinstance(timers, ProcessTimers)
    assert timers.run.mean >= 0.002
    assert timers.prerun.total_time >= 0.005
    assert timers.full_run.percentile(95) >= timers.run.min
    assert timers.full_run.num_times == timers.run.num_times == 5
    assert timers.onfinish.num_times == 1 and timers.result.num_times == 1
    assert timers.error is None or timers.error.num_times == 0  # no __error__ ran
    assert all(isinstance(getattr(timers, n), Sktimer)
               for n in ("prerun", "run", "postrun", "onfinish", "result", "full_run"))


def test_properties():
    process = MyProcess()
    assert process.current_run == 0 and process.is_alive is False
    process.start()
    process.wait()
    assert process.current_run == 10 and process.error is None
    assert isinstance(process.timers, ProcessTimers)


# -- Pool -------------------------------------------------------------------------------------

def process_item(x):
    return x + 1


def fn(x):
    return x * 2


def add(a, b):
    return a + b


items = list(range(8))
args_tuples = [(1, 2), (3, 4)]


@pytest.fixture(scope="module")
def pool():
    pool = Pool(workers=4)
    yield pool
    pool.close()


def test_pool_basic_and_constructor(pool):
    results = pool.map(process_item, items)
    assert results == [x + 1 for x in items]
    default = Pool()  # None = number of CPUs
    try:
        assert default.map(fn, [1, 2]) == [2, 4]
    finally:
        default.close()


def test_map_and_modifiers(pool):
    assert pool.map(fn, items) == [x * 2 for x in items]
    # star - unpacks tuples as function arguments
    assert pool.star().map(add, [(1, 2), (3, 4)]) == [3, 7]
    assert pool.map.timeout(30.0)(fn, items) == [x * 2 for x in items]
    future = pool.map.background()(fn, items)
    assert future.result() == [x * 2 for x in items]
    future = pool.star().map.background()(add, args_tuples)
    assert future.result() == [3, 7]


def test_unordered_map_and_modifiers(pool):
    assert sorted(pool.unordered_map(fn, items)) == [x * 2 for x in items]
    assert sorted(pool.star().unordered_map(add, [(1, 2), (3, 4)])) == [3, 7]
    assert sorted(pool.unordered_map.timeout(30.0)(fn, items)) == [x * 2 for x in items]
    future = pool.unordered_map.background()(fn, items)
    assert isinstance(future.result(), list) and sorted(future.result()) == [x * 2 for x in items]
    assert sorted(pool.star().unordered_map.timeout(30.0)(add, args_tuples)) == [3, 7]

    async def main():
        return await pool.star().unordered_map.asynced()(add, args_tuples)

    assert sorted(asyncio.run(main())) == [3, 7]


def test_imap_and_unordered_imap(pool):
    got = []
    for result in pool.imap(fn, items):
        got.append(result)
    assert got == [x * 2 for x in items]
    assert [r for r in pool.star().imap(add, [(1, 2), (3, 4)])] == [3, 7]
    assert [r for r in pool.imap.timeout(10.0)(fn, items)] == [x * 2 for x in items]
    assert sorted(r for r in pool.unordered_imap(fn, items)) == [x * 2 for x in items]
    assert sorted(r for r in pool.star().unordered_imap(add, [(1, 2), (3, 4)])) == [3, 7]
    assert sorted(pool.star().unordered_imap.timeout(30.0)(add, args_tuples)) == [3, 7]


def first(t):
    return ("one argument", t)


def test_star(pool):
    # without star: fn receives a single tuple argument
    assert pool.map(first, [(1, 2), (3, 4)]) == [("one argument", (1, 2)), ("one argument", (3, 4))]
    # with star: fn receives unpacked arguments
    assert pool.star().map(add, [(1, 2), (3, 4)]) == [3, 7]
    assert pool.star().imap(add, args_tuples) is not None
    assert list(pool.star().imap(add, args_tuples)) == [3, 7]
    assert sorted(pool.star().unordered_imap(add, args_tuples)) == [3, 7]
    assert sorted(pool.star().unordered_map(add, args_tuples)) == [3, 7]
    assert pool.star().map.timeout(30.0)(add, args_tuples) == [3, 7]


def heavy_computation(item):
    return sum(range(item * 100))


class ProcessItem(Skprocess):
    def __init__(self, item):
        self.item = item
        self.process_config.runs = 1

    def __run__(self):
        self.result_data = heavy_computation(self.item)

    def __result__(self):
        return self.result_data


def test_skprocess_with_pool(pool):
    # Pool creates instances and runs them
    results = pool.map(ProcessItem, items)
    assert results == [heavy_computation(i) for i in items]


def sleepy(x):
    time.sleep(x)
    return x


def test_pool_context_manager_close_terminate():
    with Pool(workers=4) as pool:
        results = pool.map(fn, items)
    # pool is closed on exit
    assert results == [x * 2 for x in items]
    pool = Pool(workers=2)
    assert pool.map(fn, [1]) == [2]
    pool.close()  # wait for all active processes to finish
    pool = Pool(workers=2)
    future = pool.map.background()(sleepy, [30, 30])
    began = time.monotonic()
    pool.terminate()  # forcefully terminate all processes
    with pytest.raises(StateError, match="terminated"):
        future.result(timeout=30)
    assert time.monotonic() - began < 25  # the 30 s items did not run to their end


# -- Share ------------------------------------------------------------------------------------

def test_share_any_object():
    share = Share()
    try:
        share.timer = Sktimer()
        share.counter = 0
        share.timer.add_time(0.5)
        assert share.timer.num_times == 1 and share.counter == 0
    finally:
        share.stop()


class IncrementProcess(Skprocess):
    def __init__(self, share):
        self.share = share
        self.process_config.runs = 10

    def __postrun__(self):
        self.share.counter += 1


def test_share_basic_usage():
    share = Share()
    try:
        share.counter = 0
        pool = Pool(workers=4)
        try:
            pool.map(IncrementProcess, [share] * 10)
        finally:
            pool.close()
        assert share.counter == 100  # (10 processes × 10 runs each)
    finally:
        share.stop()


class Account:  # a user class: works automatically
    def __init__(self):
        self.balance = 0

    def deposit(self, amount):
        self.balance += amount
        return self.balance


class Depositor(Skprocess):
    def __init__(self, share, amount):
        self.share = share
        self.amount = amount
        self.process_config.runs = 1

    def __run__(self):
        self.share.account.deposit(self.amount)


def test_share_supported_objects():
    share = Share()
    try:
        share.account = Account()
        share.values = {"a": [1, 2]}
        share.name = "x"
        with Pool(workers=2) as pool:
            pool.star().map(Depositor, [(share, n) for n in (1, 2, 3)])
        assert share.account.balance == 6
        assert share.values == {"a": [1, 2]} and share.name == "x"
        # Iterators: the remaining values, as a plain iterator
        share.pairs = zip("ab", [1, 2])
        share.numbered = enumerate(["x", "y"])
        assert list(share.pairs) == [("a", 1), ("b", 2)]
        assert list(share.numbered) == [(0, "x"), (1, "y")]
        share.mapped = map(str, [1, 2])
        assert list(share.mapped) == ["1", "2"]
    finally:
        share.stop()


def test_share_refuses_multiprocessing_objects():
    import multiprocessing
    share = Share()
    try:
        with pytest.raises(SerializationError, match="share.queue") as caught:
            share.queue = multiprocessing.Queue()
        assert "inheritance" in str(caught.value)  # multiprocessing's own reason
        with pytest.raises(AttributeError):
            share.queue  # nothing was stored
    finally:
        share.stop()


def test_share_start_and_stop():
    share = Share()  # auto-starts
    assert share.is_running and not share.has_error
    share.counter = 1
    assert share.stop() is True  # stop sharing (frees resources)
    assert not share.is_running
    share.start()  # start again
    assert share.is_running
    share.counter += 1
    assert share.counter == 2
    share.exit()  # or exit
    assert not share.is_running


def test_share_changes_while_stopped_wait_for_start():
    share = Share()
    share.counter = 1
    share.stop()
    with pytest.warns(RuntimeWarning, match="stopped"):  # we also say so
        share.counter = 5  # queued while stopped
    share.start()
    try:
        assert share.counter == 5
    finally:
        share.stop()


def test_share_reconnect_all():
    share = Share()
    try:
        share.db = sqlite3.connect(":memory:")
        # share.db is a Reconnector in Share
        reconnected = share.reconnect_all()
        # now it's a live connection again
        conn = reconnected["db"]
        assert isinstance(conn, sqlite3.Connection)
        assert conn.execute("select 1").fetchone() == (1,)
    finally:
        share.stop()


def test_share_context_manager_and_clear():
    with Share() as share:
        share.counter = 0
        share.counter += 1
        assert share.counter == 1
        share.clear()  # Clear all shared objects and counters
        with pytest.raises(AttributeError):
            share.counter
        share.counter = 7
        assert share.counter == 7
    # automatically stopped on exit
    assert not share.is_running


# -- Pipe -------------------------------------------------------------------------------------

def process_command(command):
    return {"result": command["value"] * 2}


class PipeProcess(Skprocess):
    def __init__(self, pipe_point):
        self.pipe = pipe_point
        self.process_config.runs = 1

    def __run__(self):
        # receive command
        command = self.pipe.recv()
        # process it
        result = process_command(command)
        # send result back
        self.pipe.send(result)


def test_pipe_with_skprocess():
    # parent
    anchor, point = Pipe.pair()
    process = PipeProcess(point)
    process.start()
    anchor.send({"action": "compute", "value": 42})
    result = anchor.recv()
    assert result == {"result": 84}
    assert process.wait(timeout=30)
    anchor.close()


class Receiver(Skprocess):
    def __init__(self, point):
        self.point = point
        self.process_config.runs = 1

    def __run__(self):
        self.got = self.point.recv()

    def __result__(self):
        return self.got


def test_pipe_pairs_and_directions():
    anchor, point = Pipe.pair()  # bidirectional (default)
    anchor.send({"data": [1, 2, 3]})
    data = point.recv()
    point.send({"status": "received"})
    assert data == {"data": [1, 2, 3]} and anchor.recv() == {"status": "received"}
    anchor.close()
    point.close()
    anchor, point = Pipe.pair(one_way=True)  # anchor sends, point receives
    process = Receiver(point)
    process.start()
    anchor.send("one way")
    assert process.result() == "one way"
    with pytest.raises(PipeEndpointError, match="only receives"):
        point.send("back")
    anchor.close()


def test_pipe_lock_unlock():
    anchor, point = Pipe.pair()
    point.lock()  # prevent transfer
    # As in suitkaise, starting a process that holds it is a serialization error (here
    # naming the attribute, with the PipeEndpointError as its cause).
    with pytest.raises(SerializationError, match="point") as caught:
        Receiver(point).start()
    assert isinstance(caught.value.__cause__, PipeEndpointError) or "locked" in str(caught.value)
    point.unlock()  # allow transfer
    anchor.lock()  # always locked
    with pytest.raises(PipeEndpointError):
        anchor.unlock()
    anchor.close()
    point.close()


# -- autoreconnect ----------------------------------------------------------------------------
# No PostgreSQL or Redis server here: a placeholder of the user's own, keyed as those
# libraries' connections, shows which password reaches which attribute in the child.

class ServerConnection(Reconnector):
    def __init__(self, kind, name):
        self.kind, self.name = kind, name
        self.auth_keys = (kind,)

    def _connect(self, auth):
        return ("live", self.kind, self.name, auth)


@autoreconnect(
    start_threads=True,
    **{
        "psycopg2.Connection": {"*": "secret"},
        "redis.Redis": {"*": "redis_pass"},
    }
)
class MyDbProcess(Skprocess):
    def __init__(self, db_connection, cache_connection):
        self.db = db_connection
        self.cache = cache_connection
        self.thread = threading.Thread(target=time.sleep, args=(0,))
        self.process_config.runs = 1

    def __run__(self):
        # db and cache are automatically reconnected
        self.seen = (self.db, self.cache, self.thread.ident is not None)

    def __result__(self):
        return self.seen


def test_autoreconnect():
    process = MyDbProcess(ServerConnection("psycopg2.Connection", "db"),
                          ServerConnection("redis.Redis", "cache"))
    db, cache, thread_started = process.run()
    assert db == ("live", "psycopg2.Connection", "db", "secret")
    assert cache == ("live", "redis.Redis", "cache", "redis_pass")
    assert thread_started  # start_threads=True


@autoreconnect(**{
    "psycopg2.Connection": {
        "*": "default_password",            # default for all psycopg2 connections
        "analytics_db": "analytics_secret",  # specific override for analytics_db attr
    },
})
class MultiProcess(Skprocess):
    def __init__(self):
        self.main_db = ServerConnection("psycopg2.Connection", "main")  # uses "*" auth
        self.analytics_db = ServerConnection("psycopg2.Connection", "analytics")
        self.process_config.runs = 1

    def __run__(self):
        pass

    def __result__(self):
        return self.main_db[3], self.analytics_db[3]


def test_autoreconnect_multiple_connections():
    assert MultiProcess().run() == ("default_password", "analytics_secret")


def test_autoreconnect_sqlite(tmp_path):
    path = str(tmp_path / "x.db")

    @autoreconnect
    class Reader(Skprocess):
        def __init__(self):
            self.db = sqlite3.connect(path)
            self.process_config.runs = 1

        def __run__(self):
            self.db.execute("create table t (v)")
            self.db.execute("insert into t values (1)")
            self.db.commit()

    Reader().run()
    assert sqlite3.connect(path).execute("select v from t").fetchall() == [(1,)]
