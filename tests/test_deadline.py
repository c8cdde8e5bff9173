"""`Deadline`: the one countdown every wait loop uses (skprocessing/_deadline.py)."""

from __future__ import annotations

from skprocessing._deadline import Deadline


def test_no_limit_never_expires_and_leaves_the_cap():
    deadline = Deadline(None)
    assert not deadline.expired()
    assert deadline.remaining() is None
    assert deadline.remaining(0.05) == 0.05


def test_a_passed_deadline_has_nothing_left():
    deadline = Deadline(0.0)
    assert deadline.expired()
    assert deadline.remaining() == 0.0
    assert deadline.remaining(0.05) == 0.0


def test_a_far_deadline_counts_down_and_is_capped():
    deadline = Deadline(3600.0)
    assert not deadline.expired()
    assert 0.0 < deadline.remaining() <= 3600.0
    assert deadline.remaining(0.05) == 0.05
    assert "Deadline in" in repr(deadline) and "no limit" in repr(Deadline(None))
