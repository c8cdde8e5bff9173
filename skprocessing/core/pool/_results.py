"""The caller's side of a call: `collect` for map/unordered_map, `ResultIterator` for
imap/unordered_imap. Both raise a task's error at its item, and cancel the call when the
caller stops early (an error, Ctrl-C, a `.timeout()` running out, an abandoned iterator).
"""

from __future__ import annotations

import time
from typing import Any, Generic, TypeVar

from ...errors import ResultTimeoutError
from ._call import TIMED_OUT, Call
from ._messages import unpack_error

__all__ = ["collect", "ResultIterator", "item_error"]

T = TypeVar("T")  # one result's type


def item_error(call: Call, index: int, packed: tuple) -> BaseException:
    return unpack_error(packed, f"item {index} of {call.name}")


def _timed_out(call: Call, seconds: float | None) -> ResultTimeoutError:
    return ResultTimeoutError(f"{call.name} did not finish within {seconds:g} s; "
                              f"{call.consumed} of its items had been received; the rest "
                              f"were cancelled and the workers running them replaced")


def collect(pool: Any, call: Call, ordered: bool, seconds: float | None) -> list:
    """Every result as a list (input order, or completion order); raises the first error
    to arrive, after cancelling the rest of the call."""
    deadline = None if seconds is None else time.monotonic() + seconds
    parts: list[tuple[int, list]] = []
    try:
        while True:
            got = call.get(deadline)
            if got is None:
                break
            if got is TIMED_OUT:
                pool._cancel(call, kill=True)
                raise _timed_out(call, seconds)
            start, values, errors = got
            call.consumed += len(values)
            if errors:
                pool._cancel(call, kill=False)
                offset = min(errors)
                raise item_error(call, start + offset, errors[offset])
            parts.append((start, values))
    except BaseException:
        if not call.done:
            pool._cancel(call, kill=True)  # Ctrl-C and the like: nothing of it runs on
        raise
    finally:
        pool._forget(call)
    if ordered:
        parts.sort(key=_first)
    out: list = []
    for _, values in parts:
        out.extend(values)
    return out


def _first(part: tuple[int, list]) -> int:
    return part[0]


class ResultIterator(Generic[T]):
    """Results one by one, as they come (unordered) or in input order. After a task's
    error is raised, iteration may go on: the other items are not lost."""

    def __init__(self, pool: Any, call: Call, ordered: bool, seconds: float | None):
        self._pool = pool
        self._call = call
        self._ordered = ordered
        self._seconds = seconds
        self._deadline = None if seconds is None else time.monotonic() + seconds
        self._waiting: dict[int, tuple[list, dict | None]] = {}  # ordered: early arrivals
        self._next_start = 0
        self._start = 0
        self._values: list = []
        self._errors: dict | None = None
        self._pos = 0
        self._finished = False

    def __iter__(self) -> ResultIterator[T]:
        return self

    def __enter__(self) -> ResultIterator[T]:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close(kill=True)

    def ready(self) -> bool:
        """True when `next()` would return (or raise) without waiting."""
        return self._pos < len(self._values)

    def __next__(self) -> T:
        while self._pos >= len(self._values):
            self._advance()
        pos = self._pos
        self._pos += 1
        if self._errors and pos in self._errors:
            raise item_error(self._call, self._start + pos, self._errors[pos])
        return self._values[pos]

    def _advance(self) -> None:
        if self._finished:
            raise StopIteration
        self._call.taken(len(self._values))
        try:
            start, values, errors = self._next_chunk()
        except StopIteration:
            self._finish()
            raise
        except BaseException:
            self.close(kill=True)
            raise
        self._start, self._values, self._errors, self._pos = start, values, errors, 0

    def _next_chunk(self) -> tuple[int, list, dict | None]:
        while True:
            if self._ordered and self._next_start in self._waiting:
                start = self._next_start
                values, errors = self._waiting.pop(start)
                self._next_start += len(values)
                return start, values, errors
            got = self._call.get(self._deadline)
            if got is None:
                raise StopIteration
            if got is TIMED_OUT:
                raise _timed_out(self._call, self._seconds)
            if not self._ordered:
                return got
            start, values, errors = got
            self._waiting[start] = (values, errors)

    def _finish(self) -> None:
        self._finished = True
        self._values, self._pos = [], 0
        self._pool._forget(self._call)

    def close(self, kill: bool = False) -> None:
        """Stop early: the rest of the call is cancelled at once (no more of the input is
        read; with `kill`, the workers running its items now are replaced rather than
        left to finish them). Leaving a `with` block closes it with `kill`."""
        if not self._finished:
            if not self._call.done:
                self._pool._abort(self._call, kill=kill)
            self._finish()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
