"""`first_to_answer`: try every address at once, keep the first that answers.

A peer may advertise several addresses (every interface of its host, loopback last), some
unreachable from here: tried one after another, each dead one would cost a whole timeout.
So every attempt runs on its own thread; the first channel to come back wins, one that
comes back later (or after the caller gave up) is closed, and when none does the error
names what each address said.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from ..errors import TransportError
from ..transports.base import Channel

__all__ = ["first_to_answer"]


def first_to_answer(addresses: Sequence[str], attempt: Callable[[str], Channel], *,
                    timeout: float | None = None, failure: str = "no address answered",
                    name: str = "skprocessing-dial") -> tuple[Channel, str]:
    """(channel, its address) from the first `attempt(address)` to return; `attempt`
    raises what went wrong. Raises TransportError("`failure`: address: error; ...") once
    every attempt failed, or when `timeout` passes first (None: as long as they take)."""
    race = _Race(len(addresses))
    for address in addresses:
        threading.Thread(target=race.run, args=(attempt, address), name=name, daemon=True).start()
    return race.result(timeout, failure)


class _Race:
    def __init__(self, count: int):
        self._left = count
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._winner: tuple[Channel, str] | None = None
        self._errors: list[str] = []
        self._abandoned = False  # result() gave up: whatever connects later is closed

    def run(self, attempt: Callable[[str], Channel], address: str) -> None:
        try:
            channel = attempt(address)
        except Exception as exc:
            self._finish(None, f"{address}: {exc}")
        else:
            self._finish((channel, address), None)

    def _finish(self, won: tuple[Channel, str] | None, error: str | None) -> None:
        with self._lock:
            self._left -= 1
            if won is not None and self._winner is None and not self._abandoned:
                self._winner, won = won, None
            elif error:
                self._errors.append(error)
            if self._winner is not None or self._left <= 0:
                self._done.set()
        if won is not None:
            won[0].close()  # a slower duplicate, or too late

    def result(self, timeout: float | None, failure: str) -> tuple[Channel, str]:
        self._done.wait(timeout)
        with self._lock:
            if self._winner is not None:
                return self._winner
            self._abandoned = True
            errors = self._errors or [f"no answer within {timeout:g} s"]
            raise TransportError(f"{failure}: " + "; ".join(errors))
