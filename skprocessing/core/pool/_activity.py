"""What the head remembers of its recent past, for `Pool.status()` and the `status`
command: items finished per second lately, and the last workers it lost (and why).

Sampled by the scheduler's loop at most once a second (one clock read per wake-up): a
loop that did not wake finished nothing, so a missing sample means no progress.
"""

from __future__ import annotations

import collections
import time
from typing import Any

__all__ = ["Activity", "WINDOW", "LOSSES_KEPT"]

WINDOW = 60.0     # seconds of history the throughput is measured over
LOSSES_KEPT = 20  # recent worker losses remembered


class Activity:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._next = 0.0
        self.losses: collections.deque[dict[str, Any]] = collections.deque(maxlen=LOSSES_KEPT)

    def sample(self, done: int) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + 1.0
        self._samples.append((now, done))
        while self._samples and self._samples[0][0] < now - WINDOW:
            self._samples.popleft()

    def throughput(self, done: int) -> float:
        """Items finished per second over the last `WINDOW` seconds (0.0: none)."""
        now = time.monotonic()
        recent = [(t, d) for t, d in self._samples if t >= now - WINDOW]
        if not recent:
            return 0.0
        since, then = recent[0]
        span = now - since
        return (done - then) / span if span > 0 else 0.0

    def lost(self, pid: int | None, host: str | None, why: str, items: int) -> None:
        self.losses.append({"at": time.time(), "pid": pid, "host": host, "why": why,
                            "items": items})
