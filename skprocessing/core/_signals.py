"""A process's stop signal and run counter: the core's, carried however the transport allows.

    Flag      set / clear / is_set / wait     the stop signal the engine checks per section
    Counter   value                           current_run, written by the child

A transport with `Capability.SAME_HOST_MEMORY` gives shared integers: the parent and the
child then share the cells (`SharedFlag`, and the `SharedInt` itself as the counter), so
`stop()` and `current_run` cost no message. Any other transport carries them as messages
on the control channel (`remote.py`'s relay: STOP one way, RUN reports the other), with
plain in-process cells on each side (`PlainFlag`, `PlainCounter`).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

from .._deadline import Deadline
from ..transports.base import SharedInt

__all__ = ["Flag", "Counter", "PlainFlag", "PlainCounter", "SharedFlag"]


class Flag(ABC):
    """A boolean: the stop signal of a process."""

    @abstractmethod
    def set(self) -> None: ...

    @abstractmethod
    def clear(self) -> None: ...

    @abstractmethod
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None, interval: float = 0.005) -> bool:
        """Wait until set; False if `timeout` passed first."""
        deadline = Deadline(timeout)
        while not self.is_set():
            if deadline.expired():
                return False
            time.sleep(interval)
        return True


class Counter(ABC):
    """An integer one side writes and the other reads (`current_run`)."""

    value: int


class PlainFlag(Flag):
    """A flag in this process only (a relay sets it from a STOP message; a Pool item's)."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set


class PlainCounter(Counter):
    """An int in this process: a parent's copy of a reported `current_run`, or a child's
    own, which its relay reports."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class SharedFlag(Flag):
    """A flag over a transport's shared integer (non-zero: set); passable to `start()`."""

    __slots__ = ("cell",)

    def __init__(self, cell: SharedInt):
        self.cell = cell

    def set(self) -> None:
        self.cell.value = 1

    def clear(self) -> None:
        self.cell.value = 0

    def is_set(self) -> bool:
        return self.cell.value != 0

    def __reduce__(self):
        return (SharedFlag, (self.cell,))
