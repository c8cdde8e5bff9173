"""`skprocessing.Executor` against what `concurrent.futures` promises: the behaviour
CPython's own Lib/test/test_concurrent_futures/ checks (executor, as_completed, wait,
shutdown, process pool), ported to our own tests, on the local and ZeroMQ transports.

Tasks that must be "running" or "blocked" wait on files (started / release markers)
with a bounded wait, so no test depends on a guessed sleep."""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
import time
import weakref
from concurrent.futures import (ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION,
                                BrokenExecutor, CancelledError, as_completed, wait)
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from skprocessing import BrokenWorkerError, Executor, ProcessDiedError, StateError
from skprocessing.errors import RemoteTraceback

pytestmark = pytest.mark.timeout(120)

LIMIT = 60.0  # the longest any wait here may take (a loaded machine), never expected


@pytest.fixture(params=["local", "zmq"])
def make(request, assert_reaped):
    """make(workers=2, **options) -> an Executor on the transport under test, shut down
    (and its workers checked reaped) after the test."""
    made: list[Executor] = []

    def build(workers: int = 2, **options) -> Executor:
        if request.param == "zmq":
            options.setdefault("transport", "tcp://127.0.0.1")
        executor = Executor(workers, **options)
        made.append(executor)
        return executor

    yield build
    for executor in made:
        pids = executor.pool.worker_pids if executor.pool.state.value == "open" else []
        executor.shutdown(wait=True, cancel_futures=True)
        for pid in pids:
            assert_reaped(pid)


# -- task functions (module level: they travel by reference, as in the stdlib) ---------------
def mul(x, y):
    return x * y


def capture(*args, **kwargs):
    return args, kwargs


def raise_value_error(message):
    raise ValueError(message)


def die(code=7):
    os._exit(code)


def mark(path):
    Path(path).write_text("ran")
    return path


def wait_for(path: Path, limit: float = LIMIT) -> None:
    deadline = time.monotonic() + limit
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {limit}s")
        time.sleep(0.01)


def block(started, release, value=None):
    """Say it started, then wait (bounded) until released."""
    Path(started).write_text("started")
    wait_for(release)
    return value


class Tasks:
    """Blocking tasks driven by files in a temporary directory."""

    def __init__(self, tmp_path: Path):
        self.dir = tmp_path
        self.release = tmp_path / "release"
        self._n = 0

    def blocker(self, value=None):
        self._n += 1
        started = self.dir / f"started-{self._n}"
        return (block, started, self.release, value), started

    def go(self):
        self.release.write_text("go")


@pytest.fixture
def tasks(tmp_path):
    tasks = Tasks(tmp_path)
    yield tasks
    tasks.go()  # never leave a worker waiting


# -- the type contract ---------------------------------------------------------------------
def test_it_is_a_real_executor_with_real_futures(make):
    ex = make()
    assert isinstance(ex, cf.Executor)
    future = ex.submit(mul, 6, 7)
    assert type(future) is cf.Future
    assert future.result(LIMIT) == 42
    assert issubclass(BrokenWorkerError, BrokenProcessPool)
    assert issubclass(BrokenWorkerError, BrokenExecutor)
    assert issubclass(BrokenWorkerError, ProcessDiedError)


def test_max_workers_is_accepted_as_in_the_stdlib():
    with Executor(max_workers=1) as ex:
        assert ex.pool.workers == 1
        assert ex.submit(mul, 2, 3).result(LIMIT) == 6
    with pytest.raises(TypeError, match="not both"):
        Executor(2, max_workers=2)


def test_workers_must_be_a_positive_int():
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(ValueError, match="workers"):
            Executor(bad)
    with pytest.raises(ValueError, match="workers=0"):
        Executor(0)  # locally: a head with no workers could never run anything


# -- submit --------------------------------------------------------------------------------
def test_submit(make):
    ex = make()
    assert ex.submit(pow, 2, 8).result(LIMIT) == 256


def test_submit_keyword(make):
    ex = make()
    assert ex.submit(mul, 2, y=8).result(LIMIT) == 16
    assert ex.submit(capture, 1, self=2, fn=4).result(LIMIT) == ((1,), {"self": 2, "fn": 4})
    with pytest.raises(TypeError):
        ex.submit(fn=capture, arg=1)  # fn is positional only, as in the stdlib


def test_lambdas_and_closures_work(make):
    ex = make()
    offset = 10
    assert ex.submit(lambda x: x + offset, 5).result(LIMIT) == 15
    assert list(ex.map(lambda x: x * offset, range(4), timeout=LIMIT)) == [0, 10, 20, 30]


def test_submit_rejects_a_non_callable(make):
    with pytest.raises(TypeError, match="callable"):
        make().submit(42)


def test_a_task_error_keeps_its_type_and_the_worker_traceback(make):
    ex = make()
    future = ex.submit(raise_value_error, "bad input 17")
    with pytest.raises(ValueError, match="bad input 17") as info:
        future.result(LIMIT)
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "raise_value_error" in cause.text
    assert isinstance(future.exception(LIMIT), ValueError)


def test_no_stale_references(make):
    # CPython's test_no_stale_references: the executor lets go of the callable.
    class Owner:
        def method(self):
            return 1

    owner = Owner()
    collected = threading.Event()
    ref = weakref.ref(owner, lambda _: collected.set())
    ex = make()
    assert ex.submit(owner.method).result(LIMIT) == 1
    del owner
    assert collected.wait(LIMIT), ref


# -- after shutdown ------------------------------------------------------------------------
def test_submit_after_shutdown_raises_runtime_error(make):
    ex = make()
    ex.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(pow, 2, 5)
    with pytest.raises(StateError):
        ex.map(abs, [1])
    ex.shutdown()  # again: harmless


def test_context_manager_shuts_down_and_waits(make, tasks):
    ex = make()
    with ex:
        futures = [ex.submit(mul, i, i) for i in range(10)]
    assert all(f.done() for f in futures)
    assert [f.result() for f in futures] == [i * i for i in range(10)]
    with pytest.raises(RuntimeError):
        ex.submit(abs, 1)


def test_shutdown_wait_false_returns_at_once_and_the_work_still_finishes(make, tasks):
    ex = make()
    args, started = tasks.blocker("late")
    future = ex.submit(*args)
    wait_for(started)
    ex.shutdown(wait=False)  # must not wait for the blocked task
    assert not future.done()
    tasks.go()
    assert future.result(LIMIT) == "late"


def test_shutdown_cancel_futures(make, tasks):
    # CPython's test_cancel_futures: running ones finish, queued ones are cancelled and never run.
    ex = make(1)
    args, started = tasks.blocker("first")
    first = ex.submit(*args)
    wait_for(started)
    marks = [tasks.dir / f"mark-{i}" for i in range(20)]
    rest = [ex.submit(mark, str(path)) for path in marks]
    closer = threading.Thread(target=ex.shutdown, kwargs={"wait": True, "cancel_futures": True})
    closer.start()
    deadline = time.monotonic() + LIMIT
    while not all(f.done() or f.running() for f in rest) and time.monotonic() < deadline:
        time.sleep(0.01)
    tasks.go()
    closer.join(LIMIT)
    assert not closer.is_alive()
    assert first.result(0) == "first"
    cancelled = [f for f in rest if f.cancelled()]
    assert len(cancelled) >= len(rest) - 2  # what a worker had taken meanwhile ran
    assert all(f.done() for f in rest)
    for future, path in zip(rest, marks):
        assert path.exists() != future.cancelled()  # a cancelled task never ran


def test_shutdown_cancel_futures_wait_false(make, tasks):
    ex = make(1)
    args, started = tasks.blocker()
    ex.submit(*args)
    wait_for(started)
    rest = [ex.submit(mul, i, 2) for i in range(10)]
    ex.shutdown(wait=False, cancel_futures=True)
    tasks.go()
    done, not_done = wait(rest, timeout=LIMIT)
    assert not not_done
    assert any(f.cancelled() for f in rest)


# -- cancel and running ----------------------------------------------------------------------
def test_a_queued_task_is_cancelled_and_never_runs_a_running_one_reports_running(make, tasks):
    ex = make(1)
    args, started = tasks.blocker("first")
    first = ex.submit(*args)
    wait_for(started)
    assert first.running()
    assert not first.cancel()  # running: too late, as in the stdlib
    marks = [tasks.dir / f"mark-{i}" for i in range(12)]
    rest = [ex.submit(mark, str(path)) for path in marks]
    queued = [f for f in rest if not f.running()]
    assert len(queued) == len(rest)  # its one worker is busy: they all wait at the head
    assert all(f.cancel() for f in queued)
    assert all(f.cancelled() for f in queued)
    tasks.go()
    assert first.result(LIMIT) == "first"
    ran = [f for f in rest if not f.cancelled()]
    assert [f.result(LIMIT) for f in ran] == [str(marks[rest.index(f)]) for f in ran]
    with pytest.raises(CancelledError):
        queued[0].result(0)
    # once every task that was not cancelled has run, no cancelled one has (or will)
    ex.shutdown(wait=True)
    for future, path in zip(rest, marks):
        assert path.exists() == (not future.cancelled())


def test_cancelled_futures_are_reported_by_wait_and_as_completed(make, tasks):
    ex = make(1)
    args, started = tasks.blocker()
    first = ex.submit(*args)
    wait_for(started)
    rest = [ex.submit(abs, -i) for i in range(10)]
    queued = [f for f in rest if not f.running()]
    for future in queued:
        future.cancel()
    done, not_done = wait(queued, timeout=LIMIT)
    assert set(done) == set(queued) and not not_done
    assert set(as_completed(queued, timeout=LIMIT)) == set(queued)
    tasks.go()
    first.result(LIMIT)


# -- add_done_callback -------------------------------------------------------------------------
def test_done_callbacks(make, tasks):
    ex = make()
    seen: list = []
    called = threading.Event()

    def callback(future):
        seen.append(future.result())
        called.set()

    future = ex.submit(mul, 3, 4)
    future.add_done_callback(callback)
    assert called.wait(LIMIT)
    assert seen == [12]
    late: list = []
    future.add_done_callback(late.append)  # already done: called at once, here
    assert late == [future]


def test_a_callback_may_submit_more_work(make):
    ex = make()
    chained: list = []
    done = threading.Event()

    def then(future):
        chained.append(ex.submit(mul, future.result(), 10))
        done.set()

    ex.submit(mul, 2, 3).add_done_callback(then)
    assert done.wait(LIMIT)
    assert chained[0].result(LIMIT) == 60


# -- as_completed ------------------------------------------------------------------------------
def test_as_completed(make):
    ex = make()
    futures = [ex.submit(mul, i, 2) for i in range(20)]
    assert sorted(f.result() for f in as_completed(futures, timeout=LIMIT)) == \
        [i * 2 for i in range(20)]


def test_as_completed_duplicates_yield_once(make):
    ex = make()
    future = ex.submit(mul, 2, 2)
    assert len(list(as_completed([future, future], timeout=LIMIT))) == 1


def test_as_completed_times_out(make, tasks):
    ex = make()
    args, started = tasks.blocker()
    slow = ex.submit(*args)
    quick = ex.submit(mul, 1, 1)
    quick.result(LIMIT)
    completed = set()
    with pytest.raises(TimeoutError, match=r"1 \(of 2\) futures unfinished"):
        for future in as_completed([slow, quick], timeout=0.5):
            completed.add(future)
    assert completed == {quick}
    tasks.go()
    assert slow.result(LIMIT) is None


# -- wait --------------------------------------------------------------------------------------
def test_wait_first_completed(make, tasks):
    ex = make()
    args, started = tasks.blocker()
    slow = ex.submit(*args)
    quick = ex.submit(mul, 2, 3)
    done, not_done = wait([slow, quick], timeout=LIMIT, return_when=FIRST_COMPLETED)
    assert done == {quick} and not_done == {slow}
    tasks.go()


def test_wait_first_exception(make, tasks):
    ex = make()
    args, started = tasks.blocker()
    slow = ex.submit(*args)
    ok = ex.submit(mul, 2, 3)
    ok.result(LIMIT)
    bad = ex.submit(raise_value_error, "boom")
    done, not_done = wait([slow, ok, bad], timeout=LIMIT, return_when=FIRST_EXCEPTION)
    assert done == {ok, bad} and not_done == {slow}
    tasks.go()


def test_wait_first_exception_one_already_failed(make):
    ex = make()
    bad = ex.submit(raise_value_error, "boom")
    wait([bad], timeout=LIMIT)
    other = ex.submit(mul, 1, 2)
    done, _ = wait([bad, other], timeout=LIMIT, return_when=FIRST_EXCEPTION)
    assert bad in done


def test_wait_all_completed(make):
    ex = make()
    futures = [ex.submit(mul, i, i) for i in range(10)] + [ex.submit(raise_value_error, "x")]
    done, not_done = wait(futures, timeout=LIMIT, return_when=ALL_COMPLETED)
    assert done == set(futures) and not not_done


def test_wait_timeout(make, tasks):
    ex = make()
    args, started = tasks.blocker()
    slow = ex.submit(*args)
    quick = ex.submit(mul, 1, 1)
    quick.result(LIMIT)
    done, not_done = wait([slow, quick], timeout=0.5, return_when=ALL_COMPLETED)
    assert done == {quick} and not_done == {slow}
    tasks.go()


# -- map ---------------------------------------------------------------------------------------
def test_map(make):
    ex = make()
    assert list(ex.map(pow, range(10), range(10), timeout=LIMIT)) == [pow(i, i) for i in range(10)]
    assert list(ex.map(mul, [1, 2, 3], [4, 5], timeout=LIMIT)) == [4, 10]  # zip's shortest
    assert list(ex.map(abs, [], timeout=LIMIT)) == []


@pytest.mark.parametrize("chunksize", [1, 2, 3, 5, 100])
def test_map_chunksize(chunksize):
    with Executor(2) as ex:
        assert list(ex.map(pow, range(40), range(40), chunksize=chunksize, timeout=LIMIT)) == \
            [pow(i, i) for i in range(40)]


def test_map_bad_chunksize():
    with Executor(1) as ex:
        for bad in (0, -1):
            with pytest.raises(ValueError, match="chunksize"):
                ex.map(abs, [1, 2], chunksize=bad)


def test_map_exception_is_raised_when_its_result_is_reached(make):
    ex = make()
    results = ex.map(lambda x: 1 // x, [1, 1, 0, 1], chunksize=1, timeout=LIMIT)
    assert next(results) == 1
    assert next(results) == 1
    with pytest.raises(ZeroDivisionError):
        next(results)
    with pytest.raises(StopIteration):  # the iterator ends with its error, as the stdlib's
        next(results)


def test_map_timeout(make, tasks):
    ex = make()
    args, started = tasks.blocker()
    results = ex.map(lambda x: x if x != 0 else block(*args[1:]), range(6), chunksize=1,
                     timeout=0.5)
    wait_for(started)
    with pytest.raises(TimeoutError):
        next(results)  # the first result is not there within 0.5 s of the map() call
    tasks.go()
    assert ex.submit(mul, 3, 3).result(LIMIT) == 9


def test_map_runs_everything_even_if_nobody_reads(make, tmp_path):
    ex = make()
    paths = [str(tmp_path / f"m{i}") for i in range(8)]
    ex.map(mark, paths)  # never read, as `executor.map(print, items)` in a script
    ex.shutdown(wait=True)
    assert all(Path(p).exists() for p in paths)


def test_map_results_are_read_after_the_with_block(make):
    with make() as ex:
        results = ex.map(mul, range(50), range(50))
    assert list(results) == [i * i for i in range(50)]


def test_map_progress_callback_and_bad_progress(make):
    ex = make()
    reports: list = []
    assert list(ex.map(mul, range(30), range(30), progress=lambda d, t: reports.append((d, t)),
                       timeout=LIMIT)) == [i * i for i in range(30)]
    assert reports[0] == (0, 30) and reports[-1] == (30, 30)
    assert [d for d, _ in reports] == sorted(d for d, _ in reports)
    with pytest.raises(TypeError, match="progress"):
        ex.map(abs, [1], progress="yes")


def test_map_progress_true_draws_a_plain_line_without_tqdm(make, capsys, monkeypatch):
    import skprocessing.core.pool._progress as progress
    monkeypatch.setattr(progress, "_tqdm_bar", lambda name: None)
    ex = make()
    assert list(ex.map(abs, range(-5, 0), progress=True, timeout=LIMIT)) == [5, 4, 3, 2, 1]
    assert "Executor.map: 5/5 items (100%)" in capsys.readouterr().err


# -- a worker that dies ------------------------------------------------------------------------
def test_a_dead_worker_breaks_only_its_futures_and_the_executor_goes_on(make):
    ex = make()
    good = [ex.submit(mul, i, 3) for i in range(6)]
    doomed = ex.submit(die, 9)
    with pytest.raises(BrokenProcessPool) as info:
        doomed.result(LIMIT)
    assert isinstance(info.value, BrokenWorkerError)
    assert isinstance(info.value.__cause__, ProcessDiedError)
    assert [f.result(LIMIT) for f in good] == [i * 3 for i in range(6)]
    assert ex.submit(mul, 5, 5).result(LIMIT) == 25  # and it goes on
    assert list(ex.map(abs, [-1, -2], timeout=LIMIT)) == [1, 2]


def test_a_dead_worker_in_map_raises_broken_process_pool(make):
    ex = make()
    with pytest.raises(BrokenProcessPool):
        list(ex.map(lambda x: die(3) if x == 2 else x, range(5), chunksize=1, timeout=LIMIT))
    assert ex.submit(mul, 2, 2).result(LIMIT) == 4


class Unsendable:
    def __reduce__(self):
        raise TypeError("this object refuses to be pickled")


def test_an_unsendable_argument_fails_its_future_only(make):
    ex = make()
    bad = ex.submit(abs, Unsendable())
    with pytest.raises(Exception, match="could not be sent"):
        bad.result(LIMIT)
    assert ex.submit(abs, -3).result(LIMIT) == 3


def test_many_submits_all_complete(make):
    ex = make()
    futures = [ex.submit(abs, -i) for i in range(3000)]
    done, not_done = wait(futures, timeout=LIMIT)
    assert not not_done
    assert [f.result() for f in futures] == list(range(3000))


# -- lifetime ----------------------------------------------------------------------------------
def test_shutdown_from_a_done_callback(make):
    ex = make()
    called = threading.Event()

    def stop(_):
        ex.shutdown(wait=True)  # on the completion thread: must not wait for itself
        called.set()

    ex.submit(mul, 1, 2).add_done_callback(stop)
    assert called.wait(LIMIT)
    with pytest.raises(RuntimeError):
        ex.submit(abs, 1)


def test_a_dropped_executor_closes_its_pool_and_workers(assert_reaped):
    ex = Executor(2)
    assert ex.submit(mul, 2, 2).result(LIMIT) == 4
    pool, pids = ex.pool, ex.pool.worker_pids
    ref = weakref.ref(ex)
    del ex
    assert ref() is None  # nothing (no thread) keeps it alive
    deadline = time.monotonic() + LIMIT
    while pool.state.value == "open" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.state.value != "open"
    for pid in pids:
        assert_reaped(pid)


def test_a_program_that_never_shuts_down_still_gets_its_results_and_exits():
    from tests.conftest import run_script
    result = run_script("""
        from skprocessing import Executor
        ex = Executor(2)
        futures = [ex.submit(lambda x: x * 2, i) for i in range(20)]
        futures[-1].add_done_callback(lambda f: print("last", f.result(), flush=True))
        print("leaving", flush=True)
    """, timeout=100)
    assert result.returncode == 0, result.stderr
    assert "leaving" in result.stdout and "last 38" in result.stdout, result.stdout
    assert result.stderr == ""


def test_map_checks_its_arguments_before_reading_the_input(make):
    ex = make()
    items = iter(range(5))
    for bad in ({"progress": "yes"}, {"chunksize": 0}, {"timeout": -1}):
        with pytest.raises((TypeError, ValueError)):
            ex.map(abs, items, **bad)
    with pytest.raises(TypeError, match="callable"):
        ex.map(42, items)
    assert list(ex.map(abs, items, timeout=LIMIT)) == [0, 1, 2, 3, 4]  # nothing was lost


def test_ctrl_c_in_the_with_block_stops_without_waiting_and_leaves_no_worker(
        assert_reaped, ctrl_c, tasks):
    args, started = tasks.blocker()
    with pytest.raises(KeyboardInterrupt):
        with Executor(2) as ex:
            pids = ex.pool.worker_pids
            running = ex.submit(*args)
            queued = [ex.submit(mul, i, i) for i in range(3)] + [ex.submit(*tasks.blocker()[0])]
            ctrl_c(lambda: started.exists())
            running.result(LIMIT)  # interrupted here, as a user at the terminal would
    assert all(f.done() for f in [running, *queued])  # nothing left pending
    with pytest.raises(StateError):
        running.result(0)  # it was stopped, not waited for
    for pid in pids:
        assert_reaped(pid)


def test_a_callable_that_cannot_be_sent_raises_at_submit(make):
    from skprocessing import SerializationError
    ex = make()
    unsendable = Unsendable()
    with pytest.raises(SerializationError, match="Executor.submit: the callable"):
        ex.submit(lambda: unsendable)
    assert ex.submit(mul, 4, 4).result(LIMIT) == 16


# -- the scheduler under many small calls --------------------------------------------------------
class Item:
    def __init__(self, n):
        self.n = n


def test_a_finished_map_or_task_is_not_kept_alive_by_the_workers_caches():
    from skprocessing import Pool
    with Pool(2) as pool:
        items = [Item(i) for i in range(10)]
        refs = [weakref.ref(item) for item in items]
        assert pool.map(lambda item: item.n, items) == list(range(10))
        del items
        assert all(gone(ref) for ref in refs)  # the call (and its input) is gone
    with Executor(2) as ex:
        arg = Item(5)
        ref = weakref.ref(arg)
        assert ex.submit(lambda item: item.n, arg).result(LIMIT) == 5
        del arg
        assert gone(ref)  # once the completion thread has seen the last of the task


def gone(ref: weakref.ref, limit: float = LIMIT) -> bool:
    """True once `ref`'s object is collected (polled: other threads may still let go)."""
    import gc
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        gc.collect()
        if ref() is None:
            return True
        time.sleep(0.01)
    return False
