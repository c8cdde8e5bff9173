"""Skprocess across real processes: lifecycle, lives, timeouts, messaging, faults."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from concurrent.futures import Future

import pytest

from skprocessing import (OnFinishError, ProcessDiedError, ProcessTimeoutError,
                          ResultError, ResultTimeoutError, RunError, SerializationError,
                          Skprocess, StateError)
from tests.conftest import interruptible, pid_alive, run_script, tagged_processes, wait_gone

pytestmark = pytest.mark.timeout(60)


class Counter(Skprocess):
    def __init__(self, runs: int = 3):
        self.process_config.runs = runs
        self.seen: list[int] = []

    def __prerun__(self):
        self.seen.append(-1)

    def __run__(self):
        self.seen.append(self.current_run)

    def __postrun__(self):
        self.seen.append(-2)

    def __result__(self):
        return self.seen


def test_runs_every_section_in_order_and_returns_the_result():
    process = Counter(runs=3)
    assert process.run() == [-1, 0, -2, -1, 1, -2, -1, 2, -2]
    assert process.current_run == 3
    assert not process.is_alive


def test_timers_come_home_with_the_child_measurements():
    process = Counter(runs=5)
    process.run()
    assert process.timers.run.num_times == 5
    assert process.timers.full_run.num_times == 5
    assert process.__run__.timer is process.timers.run
    timer = process.timers.run
    assert timer.min <= timer.median <= timer.max
    assert timer.total_time == pytest.approx(sum(timer.times))
    assert timer.percentile(0) == timer.min and timer.percentile(100) == timer.max


def test_no_result_hook_means_none():
    class Quiet(Skprocess):
        def __init__(self):
            self.process_config.runs = 1

        def __run__(self):
            pass

    assert Quiet().run() is None


def test_local_class_with_lambda_and_closure_attributes():
    offset = 10

    def add_offset(x):
        return x + offset

    class Local(Skprocess):
        def __init__(self):
            self.double = lambda x: x * 2
            self.shift = add_offset
            self.value = 1
            self.process_config.runs = 2

        def __run__(self):
            self.value = self.shift(self.double(self.value))

        def __result__(self):
            return self.value

    assert Local().run() == 34  # (1*2+10)*2+10


def test_subclass_defined_in_main_script():
    result = run_script("""
        from skprocessing import Skprocess
        class Job(Skprocess):
            def __init__(self):
                self.process_config.runs = 4
                self.total = 0
            def __run__(self):
                self.total += self.current_run
            def __result__(self):
                return self.total
        if __name__ == "__main__":
            print("RESULT", Job().run())
    """)
    assert result.returncode == 0, result.stderr
    assert "RESULT 6" in result.stdout


def test_a_retry_keeps_the_state_the_object_had():
    class Flaky(Skprocess):
        def __init__(self):
            self.process_config.runs = 1
            self.attempts = 0
            self.process_config.lives = 3

        def __run__(self):
            self.attempts += 1
            if self.attempts < 3:
                raise ValueError("not yet")

        def __result__(self):
            return self.attempts

    assert Flaky().run() == 3


def test_exhausted_lives_raise_the_section_error_with_context():
    class Broken(Skprocess):
        def __init__(self):
            self.process_config.runs = 5
            self.process_config.lives = 2

        def __run__(self):
            if self.current_run == 2:
                raise KeyError("missing")

    process = Broken()
    with pytest.raises(RunError) as caught:
        process.run()
    error = caught.value
    assert error.current_run == 2
    assert isinstance(error.original_error, KeyError)
    assert "KeyError" in error.remote_traceback and "__run__" in error.remote_traceback
    assert process.error is not None and isinstance(process.error, RunError)


def test_error_hook_return_value_is_the_result():
    class Handled(Skprocess):
        def __init__(self):
            self.process_config.runs = 1

        def __run__(self):
            raise RuntimeError("boom")

        def __error__(self):
            return f"handled {type(self.error).__name__}"

    assert Handled().run() == "handled RunError"


def test_section_errors_use_their_own_class():
    class FailsToFinish(Skprocess):
        def __init__(self):
            self.process_config.runs = 1

        def __run__(self):
            pass

        def __onfinish__(self):
            raise OSError("disk")

    with pytest.raises(OnFinishError):
        FailsToFinish().run()


def test_run_timeout_interrupts_a_blocking_call():
    class Sleeper(Skprocess):
        def __init__(self):
            self.process_config.runs = 1
            self.process_config.timeouts.run = 0.3

        def __run__(self):
            time.sleep(30)

    began = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as caught:
        Sleeper().run()
    assert time.monotonic() - began < 10
    assert caught.value.section == "__run__" and caught.value.timeout == 0.3
    assert caught.value.current_run == 0


def test_join_in_bounds_total_running_time():
    class Forever(Skprocess):
        def __init__(self):
            self.process_config.runs = None
            self.process_config.join_in = 0.3

        def __run__(self):
            time.sleep(0.01)

        def __result__(self):
            return self.current_run

    runs = Forever().run()
    assert runs >= 1


class Looper(Skprocess):
    def __init__(self):
        self.process_config.runs = None
        self.finished = False

    def __run__(self):
        time.sleep(0.005)

    def __onfinish__(self):
        self.finished = True

    def __result__(self):
        return ("stopped", self.finished, self.current_run)


def test_stop_finishes_gracefully_with_onfinish_and_result():
    process = Looper()
    process.start()
    deadline = time.monotonic() + 10
    while process.current_run < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.current_run >= 3  # live progress is visible in the parent
    process.stop()
    assert process.wait(timeout=10)
    kind, finished, runs = process.result()
    assert (kind, finished) == ("stopped", True) and runs >= 3


def test_stop_on_a_blocked_run_ends_within_its_timeout():
    class Stuck(Skprocess):
        def __init__(self):
            self.process_config.runs = None
            self.process_config.lives = 100  # without stop() it would retry for ~50 s
            self.process_config.timeouts.run = 0.5

        def __run__(self):
            threading.Event().wait()  # blocks forever

    process = Stuck()
    process.start()
    time.sleep(0.1)
    process.stop()
    assert process.wait(timeout=10)
    with pytest.raises(ProcessTimeoutError):
        process.result()


def test_kill_ends_at_once_without_result():
    process = Looper()
    process.start()
    pid = process._sk.handle.pid
    process.kill()
    assert not process.is_alive and not pid_alive(pid)
    assert process.result() is None and process.error is None  # suitkaise: "no result"
    assert process.wait(0)


@pytest.mark.parametrize("how, code", [
    ("os._exit(3)", 3),
    ("os.kill(os.getpid(), signal.SIGKILL)", -signal.SIGKILL),
    ("ctypes.string_at(0)", -signal.SIGSEGV),
])
def test_a_child_that_dies_hard_never_hangs_the_parent(how, code):
    class Dies(Skprocess):
        def __init__(self, statement):
            self.process_config.runs = 1
            self.statement = statement

        def __run__(self):
            import ctypes, os, signal  # noqa: E401,F401  (used by the statement)
            exec(self.statement)

    process = Dies(how)
    process.start()
    assert process.wait(timeout=20)
    with pytest.raises(ProcessDiedError) as caught:
        process.result()
    assert caught.value.exitcode == code
    assert f"pid {process._sk.handle.pid}" in str(caught.value)


class Echo(Skprocess):
    def __init__(self, count: int):
        self.process_config.runs = count

    def __run__(self):
        message = self.listen(timeout=10)
        self.tell(("echo", message))


def test_tell_and_listen_work_both_ways():
    process = Echo(3)
    process.start()
    for item in (1, "two", {"three": [3]}):
        process.tell(item)
        assert process.listen(timeout=10) == ("echo", item)
    process.result()
    assert process.listen(timeout=0.1) is None  # the child is gone: nothing, not a hang


def test_listen_returns_none_on_timeout():
    process = Echo(1)
    process.start()
    assert process.listen(timeout=0.05) is None
    process.tell("now")
    assert process.listen(timeout=10) == ("echo", "now")
    process.wait(10)


def test_modifiers_on_wait_result_listen_and_run():
    process = Echo(1)
    process.start()
    with pytest.raises(ResultTimeoutError):
        process.wait.timeout(0.05)()
    with pytest.raises(ResultTimeoutError):
        process.listen.timeout(0.05)()
    future = process.result.background()()
    assert isinstance(future, Future)
    process.tell("x")
    assert asyncio.run(process.listen.asynced()()) == ("echo", "x")
    assert future.result(timeout=10) is None
    assert Counter(1).run.timeout(30)() == [-1, 0, -2]
    assert asyncio.run(Counter(1).run.asynced()()) == [-1, 0, -2]


def test_bad_definitions_and_calls_get_clear_errors():
    process = Counter()
    with pytest.raises(StateError, match="before start"):
        process.result()
    with pytest.raises(ValueError, match="runs must be 0 or more"):
        process.process_config.runs = -1
    with pytest.raises(TypeError, match="timeouts.run must be a number"):
        process.process_config.timeouts.run = "soon"
    with pytest.raises(ValueError, match="lives must be at least 1"):
        process.process_config.lives = 0
    process.start()
    with pytest.raises(StateError, match="already started"):
        process.start()
    process.wait(10)


class Unpicklable:
    def __reduce__(self):
        raise TypeError("this object refuses to travel")


def test_unserializable_attribute_names_its_path():
    class Holder(Skprocess):
        def __init__(self):
            self.process_config.runs = 1
            self.state = {"ok": 1, "conn": Unpicklable()}

        def __run__(self):
            pass

    with pytest.raises(SerializationError) as caught:
        Holder().start()
    assert "Holder -> state['conn']" in str(caught.value)
    assert caught.value.path == "Holder -> state['conn']"


def test_unserializable_result_is_reported_not_lost():
    class BadResult(Skprocess):
        def __init__(self):
            self.process_config.runs = 1

        def __run__(self):
            pass

        def __result__(self):
            return Unpicklable()

    with pytest.raises(ResultError, match="could not be sent"):
        BadResult().run()


def test_safe_to_start_with_threads_and_a_zmq_context_in_the_parent():
    import zmq
    context = zmq.Context()
    socket = context.socket(zmq.PAIR)
    socket.bind("inproc://held")
    held = threading.Lock()
    held.acquire()  # a lock held by another thread at start time must not deadlock the child
    blocker = threading.Thread(target=held.acquire, daemon=True)
    blocker.start()
    try:
        assert Counter(2).run() == [-1, 0, -2, -1, 1, -2]
    finally:
        held.release()
        socket.close(linger=0)
        context.term()


# A parent script whose child runs forever; argv[1] says what the parent does meanwhile
# (and so where a signal finds it). It prints the child's pid, or "go" for "start".
FOREVER_PARENT = """
import os, sys, time
from skprocessing import Skprocess
class Forever(Skprocess):
    def __init__(self):
        self.process_config.runs = None
    def __run__(self):
        time.sleep(0.01)
if __name__ == "__main__":
    moment = sys.argv[1]
    if moment == "start":  # Ctrl-C lands inside one of these start()s, or between two
        print("go", flush=True)
        for _ in range(200):
            Forever().start()
        time.sleep(60)
    p = Forever(); p.start()
    print(p._sk.handle.pid, flush=True)
    if moment == "kill":
        os.kill(os.getpid(), 9)
    elif moment == "wait":
        p.wait()
    elif moment == "result":
        p.result()
    else:
        while True:
            p.listen()
"""


def test_no_orphans_when_the_parent_is_killed():
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-c", FOREVER_PARENT, "kill"], capture_output=True,
                            text=True, timeout=60)
    child = int(result.stdout.split()[0])
    assert wait_gone(child, 10), f"child {child} outlived its killed parent"


@pytest.mark.parametrize("moment", ["start", "wait", "result", "listen"])
def test_ctrl_c_in_the_parent_leaves_no_orphans(tmp_path, moment):
    """Ctrl-C at any moment: the script exits promptly by KeyboardInterrupt, and every
    process it started (the launcher, the children) is gone with it."""
    import subprocess
    import sys
    import uuid
    tag = uuid.uuid4().hex
    with open(tmp_path / "stderr", "w") as stderr:
        parent = subprocess.Popen(interruptible([sys.executable, "-c", FOREVER_PARENT, moment]),
                                  stdout=subprocess.PIPE, stderr=stderr, text=True,
                                  env=dict(os.environ, SKP_TEST_TAG=tag))
        try:
            assert parent.stdout.readline().strip()  # "go", or the child's pid
            parent.send_signal(signal.SIGINT)
            parent.wait(30)
        finally:
            parent.kill()
            parent.wait()
    err = (tmp_path / "stderr").read_text()
    assert parent.returncode == -signal.SIGINT and "KeyboardInterrupt" in err, err
    deadline = time.monotonic() + 10
    while tagged_processes(tag) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not tagged_processes(tag), f"outlived the interrupted parent: {tagged_processes(tag)}"


def test_a_child_that_tells_more_than_a_socket_buffer_still_delivers_its_result():
    class Chatty(Skprocess):
        def __init__(self):
            self.process_config.runs = 1

        def __run__(self):
            for i in range(20):
                self.tell(bytes([i]) * 100_000)

        def __result__(self):
            return "done"

    process = Chatty()
    process.start()
    assert process.result.timeout(30)() == "done"
    heard = [process.listen(timeout=5) for _ in range(20)]
    assert [h[0] for h in heard] == list(range(20)) and all(len(h) == 100_000 for h in heard)


def test_wait_with_a_timeout_is_not_held_up_by_another_thread_waiting():
    process = Looper()
    process.start()
    waiter = threading.Thread(target=process.result)
    waiter.start()
    time.sleep(0.1)
    began = time.monotonic()
    assert process.wait(timeout=0.1) is False
    assert time.monotonic() - began < 5
    process.stop()
    waiter.join(20)
    assert not waiter.is_alive()


def test_starts_with_more_than_1024_files_open():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard limit on open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        assert Counter(1).run() == [-1, 0, -2]
    finally:
        for fd in opened:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_dead_launcher_is_replaced():
    from skprocessing.transports._launcher import get_launcher
    dead = get_launcher()
    dead._process.kill()
    dead._process.wait(10)
    from skprocessing import TransportError
    with pytest.raises(TransportError, match="launcher process is gone"):
        Counter(1).run()  # this start finds it gone
    assert Counter(1).run() == [-1, 0, -2]
    assert get_launcher() is not dead
