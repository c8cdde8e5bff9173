"""`Inbox`: where the reactor thread leaves messages (or accepted channels) for user threads.

Why not just an eventfd per channel: every syscall releases the GIL, and getting it back
means waiting for the reactor thread, so a scheduler thread that did an eventfd read and
write per message spent most of its time queueing for the GIL. Waiting here is done with
threading primitives instead (setting an Event does not give up the GIL); an eventfd is
made only when someone asks for `fileno()` (to `select` on it), and from then on kept
readable exactly while the inbox is non-empty or closed.

`wait_any(inboxes, timeout)` waits for the first of several, which is what
`ZmqTransport.wait` needs; each blocking call registers a per-thread waiter.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from ...errors import ChannelClosed

__all__ = ["Inbox", "wait_any"]

_local = threading.local()


def _waiter() -> threading.Event:
    waiter = getattr(_local, "waiter", None)
    if waiter is None:
        waiter = _local.waiter = threading.Event()
    waiter.clear()
    return waiter


class Inbox:
    """A deque filled by the reactor; `get` blocks with a timeout; closes with a reason."""

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._lock = threading.Lock()
        self._waiters: list[threading.Event] = []
        self._fd: int | None = None
        self.why: str | None = None  # set once closed

    def _signal(self) -> None:  # with the lock held
        for waiter in self._waiters:
            waiter.set()
        if self._fd is not None:
            os.eventfd_write(self._fd, 1)

    def put(self, item: Any) -> None:
        with self._lock:
            self._items.append(item)
            if len(self._items) == 1 and self.why is None:
                self._signal()

    def close(self, why: str) -> None:
        with self._lock:
            if self.why is None:
                self.why = why
                if not self._items:
                    self._signal()

    def ready(self) -> bool:
        return bool(self._items) or self.why is not None

    def get(self, timeout: float | None) -> Any:
        """The next item; None on timeout; `ChannelClosed` once closed and empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if self._items:
                    item = self._items.popleft()
                    if self._fd is not None and not self._items and self.why is None:
                        _drain(self._fd)
                    return item
                if self.why is not None:
                    raise ChannelClosed(self.why)
            if not wait_any([self], _remaining(deadline)):
                return None

    def wait(self, timeout: float | None) -> bool:
        return wait_any([self], timeout)

    def _register(self, waiter: threading.Event) -> bool:
        """Add `waiter`; True (and not added) when already ready."""
        with self._lock:
            if self._items or self.why is not None:
                return True
            self._waiters.append(waiter)
            return False

    def _unregister(self, waiter: threading.Event) -> None:
        with self._lock:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass

    def fileno(self) -> int:
        with self._lock:
            if self._fd is None:
                self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                if self._items or self.why is not None:
                    os.eventfd_write(self._fd, 1)
            return self._fd

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            try:
                os.close(self._fd)  # type: ignore[arg-type]
            except OSError:
                pass


def wait_any(inboxes: Sequence[Inbox], timeout: float | None) -> bool:
    """Wait until one of `inboxes` is ready; False on timeout."""
    if any(box.ready() for box in inboxes):
        return True
    if timeout is not None and timeout <= 0:
        return False
    waiter = _waiter()
    registered = []
    try:
        for box in inboxes:
            if box._register(waiter):
                return True
            registered.append(box)
        return waiter.wait(timeout) or any(box.ready() for box in inboxes)
    finally:
        for box in registered:
            box._unregister(waiter)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _drain(fd: int) -> None:
    try:
        os.eventfd_read(fd)
    except BlockingIOError:
        pass
