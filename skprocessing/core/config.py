"""`ProcessConfig`: how many runs, how long, how many lives, and per-section timeouts.

Values are checked when assigned, so a bad setting fails on the line that made it.
"""

from __future__ import annotations

from typing import Any

from .._seconds import seconds as _seconds

__all__ = ["ProcessConfig", "TimeoutConfig"]


class TimeoutConfig:
    """Seconds (or None for no limit) for each lifecycle section."""

    SECTIONS = ("prerun", "run", "postrun", "onfinish", "result", "error")

    def __init__(self, prerun: float | None = None, run: float | None = None,
                 postrun: float | None = None, onfinish: float | None = None,
                 result: float | None = None, error: float | None = None) -> None:
        given = (prerun, run, postrun, onfinish, result, error)
        for section, value in zip(self.SECTIONS, given):
            setattr(self, section, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.SECTIONS:
            raise AttributeError(f"no timeout for section {name!r}; sections: {', '.join(self.SECTIONS)}")
        object.__setattr__(self, name, _seconds(f"timeouts.{name}", value))

    def get(self, section: str) -> float | None:
        return getattr(self, section)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimeoutConfig):
            return NotImplemented
        return all(self.get(s) == other.get(s) for s in self.SECTIONS)

    def __repr__(self) -> str:
        return f"TimeoutConfig({', '.join(f'{s}={self.get(s)}' for s in self.SECTIONS)})"


class ProcessConfig:
    """`runs` (None: until `stop()`), `join_in` (seconds of running time, or None),
    `lives` (attempts in all; 1 means no retry) and `timeouts` (per section)."""

    def __init__(self, runs: int | None = None, join_in: float | None = None, lives: int = 1,
                 timeouts: TimeoutConfig | None = None) -> None:
        self.runs = runs          # the documented defaults: until stop(), no time limit,
        self.join_in = join_in    # no retry, no section timeouts
        self.lives = lives
        self.timeouts = TimeoutConfig() if timeouts is None else timeouts

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProcessConfig):
            return NotImplemented
        return (self.runs, self.join_in, self.lives, self.timeouts) == \
            (other.runs, other.join_in, other.lives, other.timeouts)

    @property
    def runs(self) -> int | None:
        return self._runs

    @runs.setter
    def runs(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"runs must be an int or None, not {type(value).__name__} {value!r}")
        if value is not None and value < 0:
            raise ValueError(f"runs must be 0 or more (None: until stop()), got {value}")
        self._runs = value

    @property
    def join_in(self) -> float | None:
        return self._join_in

    @join_in.setter
    def join_in(self, value: float | None) -> None:
        self._join_in = _seconds("join_in", value)

    @property
    def lives(self) -> int:
        return self._lives

    @lives.setter
    def lives(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"lives must be an int, not {type(value).__name__} {value!r}")
        if value < 1:
            raise ValueError(f"lives must be at least 1 (1 means no retry), got {value}")
        self._lives = value

    def __repr__(self) -> str:
        return (f"ProcessConfig(runs={self.runs}, join_in={self.join_in}, lives={self.lives}, "
                f"timeouts={self.timeouts!r})")
