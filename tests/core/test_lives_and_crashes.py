"""`lives` retry what the process survives (an exception, a section timeout), not a crash
of the child (os._exit, SIGKILL, a segfault): its state died with it, so `result()` raises
ProcessDiedError saying so. A Pool's `retries=` re-runs a crashed Skprocess item afresh."""

from __future__ import annotations

import os
import signal

import pytest

from skprocessing import Pool, ProcessDiedError, Skprocess


def _attempts(folder: str) -> int:
    path = os.path.join(folder, "attempts")
    return os.path.getsize(path) if os.path.exists(path) else 0


class FailsFirst(Skprocess):
    """Logs each attempt (one byte), then fails the first one the way it is told to."""

    def __init__(self, folder: str, how: str = "raise", lives: int = 3):
        self.folder = folder
        self.how = how
        self.process_config.runs = 1
        self.process_config.lives = lives
        self.process_config.timeouts.run = 1.0

    def __run__(self):
        with open(os.path.join(self.folder, "attempts"), "ab") as f:
            f.write(b".")
        if _attempts(self.folder) > 1:
            return
        if self.how == "raise":
            raise ValueError("first attempt fails")
        if self.how == "hang":
            import time
            time.sleep(30)  # the run section's 1 s timeout ends it
        if self.how == "exit":
            os._exit(9)
        if self.how == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.how == "segfault":
            import ctypes
            ctypes.string_at(0)

    def __result__(self):
        return _attempts(self.folder)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["raise", "hang"])
def test_lives_retry_a_section_that_raises_or_times_out(tmp_path, how):
    assert FailsFirst(str(tmp_path), how).run() == 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how, code", [("exit", 9), ("sigkill", -signal.SIGKILL),
                                       ("segfault", -signal.SIGSEGV)])
def test_a_crash_of_the_child_is_not_retried_and_says_why(tmp_path, how, code):
    process = FailsFirst(str(tmp_path), how, lives=3)
    process.start()
    assert process.wait(timeout=30)
    with pytest.raises(ProcessDiedError, match=r"during run 0 .*lives \(3\) retry a section "
                                               r"that raises, not a process that dies") as info:
        process.result()
    assert info.value.exitcode == code
    assert _attempts(str(tmp_path)) == 1  # one attempt: the crash was not retried


@pytest.mark.timeout(60)
def test_without_lives_the_death_message_stays_short(tmp_path):
    process = FailsFirst(str(tmp_path), "exit", lives=1)
    process.start()
    assert process.wait(timeout=30)
    with pytest.raises(ProcessDiedError) as info:
        process.result()
    assert "lives" not in str(info.value)


@pytest.mark.timeout(90)
def test_a_pool_reruns_a_crashed_skprocess_item_with_retries(tmp_path):
    with Pool(1) as pool:
        assert pool.star().map(FailsFirst, [(str(tmp_path), "sigkill", 1)], retries=1) == [2]
    assert _attempts(str(tmp_path)) == 2
