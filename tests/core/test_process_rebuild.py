"""A process whose object cannot be rebuilt in the child: result() raises that error (with
the child's reason), and the parent's timers stay usable."""

from __future__ import annotations

import os

import pytest

from skprocessing import ProcessError, Skprocess

pytestmark = pytest.mark.timeout(60)


def _rebuild_only_in(pid: int) -> "OnlyHere":
    if os.getpid() != pid:
        raise RuntimeError("this object cannot be rebuilt in another process")
    return OnlyHere()


class OnlyHere:
    def __reduce__(self):
        return _rebuild_only_in, (os.getpid(),)


class Carrier(Skprocess):
    def __init__(self):
        self.process_config.runs = 1
        self.part = OnlyHere()

    def __run__(self):
        pass


def test_a_rebuild_failure_in_the_child_reaches_result():
    process = Carrier()
    process.start()
    with pytest.raises(ProcessError, match="could not be rebuilt in the child") as caught:
        process.result()
    assert "cannot be rebuilt in another process" in str(caught.value)
    assert process.timers.run.num_times == 0 and process.__run__.timer is process.timers.run
    assert not process.is_alive
