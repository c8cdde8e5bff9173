"""`Deadline(seconds)`: one time limit, counted down on the monotonic clock.

    deadline = Deadline(timeout)        # None: no limit
    while not done():
        if deadline.expired():
            return False
        wait(deadline.remaining(0.05))  # at most 0.05 s, less if the limit comes sooner

Checking a user's number (`nan`, negative, `inf` meaning no limit) is `_seconds.seconds`'s
job; a Deadline takes a number already checked (or None).
"""

from __future__ import annotations

import time

__all__ = ["Deadline"]


class Deadline:
    """A point `seconds` from now; `Deadline(None)` never comes."""

    __slots__ = ("at",)

    def __init__(self, seconds: float | None):
        self.at = None if seconds is None else time.monotonic() + seconds

    def remaining(self, at_most: float | None = None) -> float | None:
        """Seconds left (0.0 once passed), capped at `at_most`; None: no limit and no cap."""
        if self.at is None:
            return at_most
        left = max(0.0, self.at - time.monotonic())
        return left if at_most is None else min(left, at_most)

    def expired(self) -> bool:
        """True once the deadline has passed (never without a limit)."""
        return self.at is not None and time.monotonic() >= self.at

    def __repr__(self) -> str:
        return "<Deadline: no limit>" if self.at is None else f"<Deadline in {self.remaining():.3f} s>"
