"""suitkaise 0.4.14's processing/how-it-works.md. Most of its code shows suitkaise's own
internals (`_setup`, `TimedMethod`, `_engine_main`, the manager queues, `_ObjectProxy`);
those are not a contract and ours differ. What a user can observe of each section is
tested here, with the document's user-side snippets as written (only the import is ours)."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from skprocessing import (ErrorHandlerError, OnFinishError, Pipe, PipeEndpointError, Pool, PostRunError,
                          PreRunError, ProcessConfig, ProcessError, ProcessTimeoutError, ProcessTimers,
                          ResultError, ResultTimeoutError, RunError, Share, Skprocess, Sktimer,
                          TimeoutConfig, autoreconnect)

pytestmark = pytest.mark.timeout(90)


# == Skprocess: class hierarchy and initialization ============================================

class MyProcess(Skprocess):
    def __init__(self):
        self.counter = 0


def test_init_runs_after_the_setup():
    process = MyProcess()  # no super().__init__(): the base's setup still ran first
    assert process.counter == 0
    assert isinstance(process.process_config, ProcessConfig)
    assert process.process_config.runs is None and process.process_config.lives == 1
    assert process.error is None and process.current_run == 0 and not process.is_alive


class Counting(Skprocess):
    def __init__(self, runs):
        self.counter = 0
        self.process_config.runs = runs

    def __prerun__(self):
        time.sleep(0.001)

    def __run__(self):
        self.counter += 1

    def __result__(self):
        return self.counter


def test_timed_methods_stay_callable_and_carry_their_timer():
    process = Counting(runs=3)
    process.__run__()  # "Keep the method callable as normal"
    assert process.counter == 1
    assert process.run() == 4  # the state travelled: 1, then three runs
    # The document prints `.timer.elapsed`; Sktimer (theirs and ours) has no `elapsed`:
    # most_recent / total_time are the figures it means.
    assert process.__run__.timer.num_times == 3 and process.__run__.timer.most_recent >= 0
    assert process.__prerun__.timer.total_time >= 0.003


# == Serialization for subprocess transfer ====================================================

def test_a_locally_defined_class_with_helpers_and_class_attributes_travels():
    class Local(Skprocess):  # pickle cannot carry <locals> classes; this must
        factor = 3

        def __init__(self, value):
            self.value = value
            self.me = self  # a circular reference in the state
            self.process_config.runs = 2

        def scale(self, x):
            return x * self.factor

        def __run__(self):
            self.value = self.scale(self.value)

        def __result__(self):
            return self.value, self.me is self

    assert Local(2).run() == (18, True)
    with Pool(workers=2) as pool:
        assert pool.map(Local, [1, 2]) == [(9, True), (18, True)]


# == start() flow ==============================================================================

class Gate(Skprocess):
    def __init__(self):
        self.process_config.runs = 1

    def __run__(self):
        self.opened = self.listen(timeout=60)  # runs on only once the parent says so

    def __result__(self):
        return self.opened


def test_start_returns_at_once_and_timers_exist():
    process = Gate()
    process.start()  # returns while the child is still inside __run__
    assert process.is_alive
    assert isinstance(process.timers, ProcessTimers)
    process.tell("open")
    assert process.result() == "open"


# == Engine: main loop, queue symmetry, continuation order ====================================

class Symmetric(Skprocess):
    def __init__(self):
        self.process_config.runs = 1

    def __run__(self):
        got = self.listen(timeout=10)  # parent tell() -> child listen()
        self.tell(("child got", got))  # child tell() -> parent listen()


def test_tell_and_listen_are_symmetric():
    process = Symmetric()
    process.start()
    process.tell("ping")
    assert process.listen(timeout=10) == ("child got", "ping")
    assert process.wait(timeout=30)


class StopFirst(Skprocess):
    def __init__(self):
        self.process_config.runs = 1000
        self.process_config.join_in = 60.0

    def __run__(self):
        if self.current_run == 4:
            self.stop()  # the stop signal wins over the run limit and the time limit

    def __result__(self):
        return self.current_run


def test_continuation_checks_stop_then_runs_then_join_in():
    # The stop is seen after __run__ of run 4: that iteration ends there, uncounted.
    assert StopFirst().run() == 4

    class RunsBeforeTime(Skprocess):
        def __init__(self):
            self.process_config.runs = 3
            self.process_config.join_in = 60.0

        def __run__(self):
            pass

        def __result__(self):
            return self.current_run

    assert RunsBeforeTime().run() == 3


class Phases(Skprocess):
    def __init__(self):
        self.process_config.runs = 2
        self.log = []

    def __prerun__(self):
        self.log.append(("prerun", self.current_run))

    def __run__(self):
        self.log.append(("run", self.current_run))

    def __postrun__(self):
        self.log.append(("postrun", self.current_run))

    def __onfinish__(self):
        self.log.append(("onfinish", self.current_run))

    def __result__(self):
        return self.log


def test_main_loop_order_and_run_counter():
    assert Phases().run() == [("prerun", 0), ("run", 0), ("postrun", 0),
                              ("prerun", 1), ("run", 1), ("postrun", 1), ("onfinish", 2)]


# == Section timing: failed timings are discarded ==============================================

class FailsTwice(Skprocess):
    def __init__(self):
        self.process_config.runs = 3
        self.process_config.lives = 3
        self.failures = 0

    def __run__(self):
        time.sleep(0.001)
        if self.current_run == 1 and self.failures < 2:
            self.failures += 1
            raise RuntimeError("transient")

    def __error__(self):
        return "unreachable"

    def __result__(self):
        return self.failures, self.process_config.lives


def test_failed_sections_stay_out_of_the_timers_and_lives_count_down():
    process = FailsTwice()
    # As in suitkaise's engine, the child's config shows the lives left after a retry.
    assert process.run() == (2, 1)
    assert process.timers.run.num_times == 3  # the two failed attempts are not timed
    assert process.timers.full_run.num_times == 3


# == Timeout implementation: signals interrupt any code, blocking calls included =============

class Blocking(Skprocess):
    def __init__(self):
        self.process_config.runs = 1
        self.process_config.timeouts.run = 0.2

    def __run__(self):
        threading.Event().wait(60)  # blocking, as an I/O wait would be


def test_a_timeout_interrupts_a_blocking_call():
    process = Blocking()
    began = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as caught:
        process.run()
    assert time.monotonic() - began < 30
    error = caught.value
    assert (error.section, error.timeout, error.current_run) == ("__run__", 0.2, 0)
    assert str(error).startswith("Timeout in __run__ after 0.2s on run 0")


# == Finish sequence and error handling ========================================================

class OnFinishFails(Skprocess):
    def __init__(self):
        self.process_config.runs = 2
        self.process_config.lives = 3
        self.finishes = 0

    def __run__(self):
        pass

    def __onfinish__(self):
        self.finishes += 1
        raise KeyError("cleanup failed")

    def __error__(self):
        return type(self.error).__name__, self.finishes, type(self.error.original_error).__name__


def test_a_failing_onfinish_goes_to_error_once_without_a_retry():
    assert OnFinishFails().run() == ("OnFinishError", 1, "KeyError")


class ResultFails(Skprocess):
    def __init__(self):
        self.process_config.runs = 1

    def __run__(self):
        pass

    def __result__(self):
        raise ValueError("no result")


def test_a_failing_result_raises_result_error():
    process = ResultFails()
    with pytest.raises(ResultError) as caught:
        process.run()
    assert isinstance(caught.value.original_error, ValueError)
    assert process.timers.result.num_times == 1  # timed however it ended


class ErrorFails(Skprocess):
    def __init__(self):
        self.process_config.runs = 1

    def __run__(self):
        raise ValueError("first")

    def __error__(self):
        raise RuntimeError("handler broke")


def test_a_failing_error_handler():
    # how-to-use.md: "ErrorHandlerError: Raised when __error__() fails" -- what we do.
    # (how-it-works.md says the original error is sent instead; the two documents differ.)
    with pytest.raises(ErrorHandlerError) as caught:
        ErrorFails().run()
    assert isinstance(caught.value.original_error, RuntimeError)


class BigResult(Skprocess):
    def __init__(self):
        self.process_config.runs = 1

    def __run__(self):
        self.data = b"x" * (8 << 20)

    def __result__(self):
        return self.data


def test_a_large_result_never_deadlocks_wait():
    # "Result queue draining": wait() before result() with a result far larger than a pipe.
    process = BigResult()
    process.start()
    assert process.wait(timeout=60)
    assert len(process.result()) == 8 << 20
    assert process.timers.run.num_times == 1  # the child's timers reached the parent


# == Pool ======================================================================================

def slow_or_fast(x):
    time.sleep(30 if x == 2 else 0)
    return x


def test_pool_timeout_path_raises_timeout_error():
    with Pool(workers=2) as pool:
        with pytest.raises(TimeoutError):
            pool.map.timeout(1.0)(slow_or_fast, [1, 2, 3])
        assert pool.map(slow_or_fast, [1, 3]) == [1, 3]  # the pool is still usable


class Inline(Skprocess):
    def __init__(self, x):
        self.x = x
        self.process_config.runs = 3
        self.process_config.lives = 2
        self.failed = False

    def __run__(self):
        if self.current_run == 1 and not self.failed:
            self.failed = True
            raise RuntimeError("once")
        if self.x == 0 and self.current_run == 2:
            self.stop()  # a Pool item may stop itself too

    def __result__(self):
        return self.x, self.current_run, self.failed


def test_pool_runs_skprocess_items_with_the_same_lifecycle():
    with Pool(workers=2) as pool:
        assert pool.map(Inline, [0, 1]) == [(0, 2, True), (1, 3, True)]


def test_modifier_chaining():
    with Pool(workers=2) as pool:
        assert pool.map(abs, [-1]) == [1]
        assert pool.map.timeout(30)(abs, [-1]) == [1]
        assert pool.map.background()(abs, [-1]).result(timeout=30) == [1]
        for method in ("map", "imap", "unordered_imap", "unordered_map"):
            assert sorted(getattr(pool.star(), method)(max, [(1, 2), (4, 3)])) == [2, 4]


# == Share =====================================================================================

class Box:
    def __init__(self):
        self.count = 0
        self.items = []

    def add(self, item):
        self.items.append(item)
        self.count += 1

    @property
    def size(self):
        return len(self.items)


class Writer(Skprocess):
    def __init__(self, share, n):
        self.share = share
        self.n = n
        self.process_config.runs = 5

    def __run__(self):
        self.share.counter += 1
        seen = self.share.counter  # read-your-own-write: at least what this worker wrote
        assert seen >= self.current_run + 1
        self.share.box.add(self.n)

    def __result__(self):
        self.share.made_in_child = ("child", self.n)  # a new name, set in a child
        return "ok"


def test_share_primitives_augmented_assignment_objects_and_properties():
    with Share() as share:
        share.counter = 0
        share.box = Box()
        share.box.count = 0  # setattr on a shared object goes to the coordinator
        with Pool(workers=3) as pool:
            assert pool.star().map(Writer, [(share, n) for n in range(3)]) == ["ok"] * 3
        assert share.counter == 15
        assert share.box.count == 15 and share.box.size == 15  # a property, read fresh
        assert sorted(share.box.items) == sorted([0, 1, 2] * 5)
        assert share.made_in_child in [("child", n) for n in range(3)]
        share.box.add("last")
        assert share.box.items[-1] == "last"  # a read after a write sees it


def test_share_registers_any_object_including_sktimer():
    with Share() as share:
        share.timer = Sktimer()
        share.timer.add_time(0.25)
        share.timer.add_time(0.75)
        assert share.timer.num_times == 2 and share.timer.mean == 0.5


# == Pipe ======================================================================================

def test_pipe_endpoints_roles_and_locks():
    anchor, point = Pipe.pair()
    assert isinstance(anchor, Pipe.Anchor) and isinstance(point, Pipe.Point)
    with pytest.raises(PipeEndpointError):
        anchor.unlock()  # Anchor endpoints are always locked
    from skprocessing import SerializationError, serialize
    with pytest.raises(SerializationError):
        serialize(anchor)  # a locked endpoint cannot be serialized
    point.lock()
    with pytest.raises(SerializationError):
        serialize(point)
    point.unlock()
    assert serialize(point)
    anchor.send({"any": object.__name__})
    assert point.recv() == {"any": "object"}
    anchor.close()
    point.close()


# == ProcessConfig, ProcessTimers ===============================================================

def test_process_config_structure():
    config = ProcessConfig()
    assert (config.runs, config.join_in, config.lives) == (None, None, 1)
    assert isinstance(config.timeouts, TimeoutConfig)
    timeouts = TimeoutConfig()
    assert all(getattr(timeouts, f) is None
               for f in ("prerun", "run", "postrun", "onfinish", "result", "error"))
    config = ProcessConfig(runs=5, join_in=2.0, lives=3, timeouts=TimeoutConfig(run=1.0))
    assert (config.runs, config.join_in, config.lives, config.timeouts.run) == (5, 2.0, 3, 1.0)
    assert ProcessConfig(runs=5) == ProcessConfig(runs=5)  # compared as dataclasses are
    assert "runs=5" in repr(ProcessConfig(runs=5))


def test_process_timers_structure():
    timers = ProcessTimers()
    assert isinstance(timers.full_run, Sktimer) and timers.full_run.num_times == 0
    for name in ("prerun", "run", "postrun", "onfinish", "result", "error"):
        timer = getattr(timers, name)
        assert timer is None or (isinstance(timer, Sktimer) and timer.num_times == 0)
    process = Phases()
    process.run()
    full, parts = process.timers.full_run, [process.timers.prerun, process.timers.run,
                                            process.timers.postrun]
    assert full.num_times == 2
    assert full.total_time >= sum(p.total_time for p in parts) * 0.99


# == autoreconnect ==============================================================================

def test_autoreconnect_only_marks_the_class():
    @autoreconnect(start_threads=True, **{"sqlite3.Connection": {"*": None}})
    class Marked(Skprocess):
        def __run__(self):
            pass

    assert isinstance(Marked, type) and issubclass(Marked, Skprocess)
    assert Marked().process_config.runs is None  # nothing else changed


class WithThread(Skprocess):
    def __init__(self):
        self.process_config.runs = 1
        self.started = threading.Event()
        self.thread = threading.Thread(target=self.started.set, daemon=True)

    def __run__(self):
        self.ok = self.started.wait(10)

    def __result__(self):
        return self.ok


def test_start_threads_starts_rebuilt_threads():
    assert autoreconnect(start_threads=True)(WithThread)().run() is True


# == Error hierarchy and structure ==============================================================

def test_error_hierarchy():
    for error in (PreRunError, RunError, PostRunError, OnFinishError, ResultError,
                  ErrorHandlerError, ProcessTimeoutError, ResultTimeoutError):
        assert issubclass(error, ProcessError)
    error = ProcessError("failed", current_run=2, original_error=ValueError("x"))
    assert (str(error), error.current_run, type(error.original_error)) == ("failed", 2, ValueError)


class PrerunFails(Skprocess):
    def __init__(self):
        self.process_config.runs = 3

    def __prerun__(self):
        if self.current_run == 2:
            raise OSError("disk")

    def __run__(self):
        pass


def test_section_errors_carry_run_and_original_error():
    with pytest.raises(PreRunError) as caught:
        PrerunFails().run()
    assert caught.value.current_run == 2 and isinstance(caught.value.original_error, OSError)
    assert "__prerun__" in str(caught.value) and "run 2" in str(caught.value)
