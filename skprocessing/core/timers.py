"""`Sktimer` (a thread-safe collection of measured times with statistics) and `ProcessTimers`."""

from __future__ import annotations

import math
import statistics
import threading
import time
from typing import Any

__all__ = ["Sktimer", "TimerStats", "ProcessTimers", "Stopwatch"]


class Stopwatch:
    """`start()`, `stop()`, `discard()` and `with`, once for every timer kind: a subclass
    says where a thread's running start is kept (`_starts`, `_start_key`) and takes the
    elapsed time in `add_time`. Starts are per thread, so threads can time at once."""

    __slots__ = ()

    def _starts(self) -> dict[Any, float]:
        raise NotImplementedError

    def _start_key(self) -> Any:
        return threading.get_ident()

    def start(self) -> None:
        self._starts()[self._start_key()] = time.perf_counter()

    def stop(self) -> float:
        """Record and return the time since this thread's `start()`."""
        began = self._starts().pop(self._start_key(), None)
        if began is None:
            raise RuntimeError("Sktimer.stop() without start() in this thread")
        elapsed = time.perf_counter() - began
        self.add_time(elapsed)  # type: ignore[attr-defined]
        return elapsed

    def discard(self) -> None:
        """Forget this thread's running `start()` without recording it."""
        self._starts().pop(self._start_key(), None)

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


class _Statistics:
    """Statistics over `self.times`, for a live `Sktimer` and its frozen `TimerStats`."""

    __slots__ = ()
    times: list[float]

    # -- statistics --------------------------------------------------------------------------
    @property
    def num_times(self) -> int:
        return len(self.times)

    @property
    def total_time(self) -> float:
        return math.fsum(self.times)

    @property
    def most_recent(self) -> float | None:
        times = self.times
        return times[-1] if times else None

    @property
    def mean(self) -> float | None:
        times = self.times
        return math.fsum(times) / len(times) if times else None

    @property
    def median(self) -> float | None:
        times = self.times
        return statistics.median(times) if times else None

    @property
    def stdev(self) -> float | None:
        """Sample standard deviation; 0.0 for a single time."""
        times = self.times
        if not times:
            return None
        return statistics.stdev(times) if len(times) > 1 else 0.0

    @property
    def variance(self) -> float | None:
        sd = self.stdev
        return None if sd is None else sd * sd

    @property
    def min(self) -> float | None:
        times = self.times
        return min(times) if times else None

    @property
    def max(self) -> float | None:
        times = self.times
        return max(times) if times else None

    def percentile(self, p: float) -> float | None:
        """The p-th percentile (0 to 100), linearly interpolated between samples."""
        if not 0 <= p <= 100:
            raise ValueError(f"percentile must be between 0 and 100, got {p}")
        times = sorted(self.times)
        if not times:
            return None
        rank = (len(times) - 1) * p / 100
        low = math.floor(rank)
        high = min(low + 1, len(times) - 1)
        return times[low] + (times[high] - times[low]) * (rank - low)

    @property
    def fastest_time(self) -> float | None:
        return self.min

    @property
    def slowest_time(self) -> float | None:
        return self.max

    @property
    def fastest_index(self) -> int | None:
        times = self.times
        return times.index(min(times)) if times else None

    @property
    def slowest_index(self) -> int | None:
        times = self.times
        return times.index(max(times)) if times else None

    @property
    def most_recent_index(self) -> int | None:
        count = len(self.times)
        return count - 1 if count else None

    def get_time(self, index: int) -> float | None:
        """The `index`-th recorded time (negative counts from the end); None if out of range."""
        times = self.times
        try:
            return times[index]
        except IndexError:
            return None


class TimerStats(_Statistics):
    """A frozen copy of an `Sktimer`'s times (`timer.get_stats()`), with the same statistics."""

    __slots__ = ("times",)

    def __init__(self, times: list[float]):
        self.times = list(times)

    def __repr__(self) -> str:
        return f"<TimerStats n={self.num_times} mean={self.mean}>"


class Sktimer(Stopwatch, _Statistics):
    """Collects durations: `start()`/`stop()`, `with timer:`, or `add_time(seconds)`.

    Statistics are over every recorded time; they are None while there are none.
    """

    def __init__(self) -> None:
        self._times: list[float] = []
        self._started: dict[int, float] = {}  # per thread, so threads can time at once

    # -- measuring ---------------------------------------------------------------------------
    def _starts(self) -> dict[int, float]:
        return self._started

    def add_time(self, seconds: float) -> None:
        self._times.append(seconds)  # list.append is atomic: no lock on the hot path

    def reset(self) -> None:
        self._times.clear()
        self._started.clear()

    @property
    def times(self) -> list[float]:
        return list(self._times)  # a snapshot; copying a list is atomic under the GIL

    @property
    def num_times(self) -> int:
        return len(self._times)

    def get_stats(self) -> TimerStats:
        """The statistics of the times recorded so far, frozen (later times do not change it)."""
        return TimerStats(self.times)

    get_statistics = get_stats

    # -- transport ---------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"times": self.times}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()
        self._times = list(state["times"])

    def __repr__(self) -> str:
        mean = self.mean
        return f"<Sktimer n={self.num_times} mean={'-' if mean is None else f'{mean:.6f}s'}>"


SECTIONS = ("prerun", "run", "postrun", "onfinish", "result", "error")


class ProcessTimers:
    """One `Sktimer` per lifecycle section, plus `full_run` (also `process_timer`: one time per
    complete iteration, prerun + run + postrun)."""

    def __init__(self) -> None:
        self.prerun = Sktimer()
        self.run = Sktimer()
        self.postrun = Sktimer()
        self.onfinish = Sktimer()
        self.result = Sktimer()
        self.error = Sktimer()
        self.full_run = Sktimer()

    @property
    def process_timer(self) -> Sktimer:
        """The documented name of `full_run` (as `process.process_timer`)."""
        return self.full_run

    def section(self, name: str) -> Sktimer:
        return getattr(self, name)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}={self.section(n).num_times}" for n in (*SECTIONS, "full_run"))
        return f"<ProcessTimers {counts}>"
