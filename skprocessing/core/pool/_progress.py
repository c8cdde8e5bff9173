"""Progress of one map: `progress=True` draws a live bar, `progress=callable` reports.

    pool.map(fn, items, progress=True)                    a bar: done/total, rate, ETA
    pool.map(fn, items, progress=lambda done, total: ...)  your own (total None: unknown)

The bar is tqdm's (`tqdm.auto`, so it renders in Jupyter too) when tqdm is installed
(`pip install skprocessing[progress]`), else one line on stderr redrawn at most ~10 times
a second. A reporter is told in the caller's thread as it takes each finished chunk from
its call (`Call.get`), never on the scheduler's, so a slow terminal or callback cannot
stall the pool; a map without `progress=` pays one attribute test per chunk.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Union

__all__ = ["ProgressSpec", "make_reporter", "check_progress", "Reporter", "Callback", "PlainBar"]

ProgressSpec = Union[bool, Callable[[int, "int | None"], Any], None]

REDRAW = 0.1      # seconds between redraws of the plain line on a terminal (~10 Hz)
REDRAW_LOG = 5.0  # ... and between lines when stderr is not a terminal (a log file)


class Reporter:
    """What a call tells: `begin(total)` once, `advance(items)` per finished chunk, and
    `close()` when the call is over (finished, failed or cancelled)."""

    def begin(self, total: int | None) -> None: ...

    def advance(self, items: int) -> None: ...

    def close(self) -> None: ...


def check_progress(spec: Any, name: str) -> None:
    """Raises TypeError for a `progress=` that is not None, a bool or a callable."""
    if not (spec is None or isinstance(spec, bool) or callable(spec)):
        raise TypeError(f"{name}: progress must be True, False, None or a callable "
                        f"progress(done, total), not {type(spec).__name__} {spec!r}")


def make_reporter(spec: Any, name: str) -> Reporter | None:
    """The reporter for a map's `progress=` argument (None: no progress, the default).
    Raises TypeError for anything but None, a bool or a callable."""
    check_progress(spec, name)
    if spec is None or spec is False:
        return None
    if spec is True:
        bar = _tqdm_bar(name)
        return bar if bar is not None else PlainBar(name)
    return Callback(spec)


class Callback(Reporter):
    """Calls `fn(done, total)` at the start (done 0) and as each chunk finishes. An error
    it raises ends the map, like an error of the map itself."""

    def __init__(self, fn: Callable[[int, int | None], Any]):
        self._fn = fn
        self._done = 0
        self._total: int | None = None

    def begin(self, total: int | None) -> None:
        self._total = total
        self._fn(0, total)

    def advance(self, items: int) -> None:
        self._done += items
        self._fn(self._done, self._total)


def _tqdm_bar(name: str) -> Reporter | None:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return _TqdmBar(tqdm, name)


class _TqdmBar(Reporter):
    def __init__(self, tqdm: Any, name: str):
        self._tqdm = tqdm
        self._name = name
        self._bar: Any = None

    def begin(self, total: int | None) -> None:
        self._bar = self._tqdm(total=total, desc=self._name, unit="item", dynamic_ncols=True)

    def advance(self, items: int) -> None:
        self._bar.update(items)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class PlainBar(Reporter):
    """`Pool.map: 4096/100000 items (4%), 12345 items/s, ETA 0:00:07` on stderr: redrawn in
    place on a terminal, a new line every few seconds otherwise, a last one at the end."""

    def __init__(self, name: str, stream: Any = None):
        self._name = name
        self._stream = stream
        self._done = 0
        self._total: int | None = None
        self._started = self._drawn = 0.0
        self._open = False

    def begin(self, total: int | None) -> None:
        self._total = total
        self._started = time.monotonic()
        self._open = True
        stream = self._out()
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._draw(self._started)

    def advance(self, items: int) -> None:
        self._done += items
        now = time.monotonic()
        if now - self._drawn >= (REDRAW if self._tty else REDRAW_LOG):
            self._draw(now)

    def close(self) -> None:
        if self._open:
            self._open = False
            self._draw(time.monotonic(), end="\n")

    def line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        rate = self._done / elapsed
        if self._total is None:
            text = f"{self._name}: {self._done} items"
        else:
            percent = 100 * self._done // self._total if self._total else 100
            text = f"{self._name}: {self._done}/{self._total} items ({percent}%)"
        text += f", {rate:,.0f} items/s" if self._done else ""
        if self._total is not None and 0 < self._done < self._total and rate > 0:
            text += f", ETA {_clock((self._total - self._done) / rate)}"
        elif self._total is not None and self._done >= self._total:
            text += f", in {_clock(elapsed)}"
        return text

    def _draw(self, now: float, end: str = "") -> None:
        self._drawn = now
        stream = self._out()
        if self._tty:
            stream.write("\r" + self.line(now) + "\x1b[K" + end)
        elif end or now > self._started:  # a log gets whole lines, not the opening 0
            stream.write(self.line(now) + "\n")
        stream.flush()

    def _out(self) -> Any:
        return self._stream if self._stream is not None else sys.stderr


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
