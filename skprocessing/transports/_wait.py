"""Wait until file descriptors turn readable, with `poll` (no limit on fd numbers;
`select.select` fails once a process has 1024 files open)."""

from __future__ import annotations

import math
import select
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")

_READABLE = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR | select.POLLNVAL
_POLL_MAX_MS = 2**31 - 1  # poll() takes a C int; a longer wait is a spurious wake-up, not an error


def readable(objects: Sequence[T], timeout: float | None) -> list[T]:
    """The members of `objects` (fds or objects with `fileno()`) that are readable, closed
    or in error, waiting at most `timeout` seconds (None: until one is)."""
    poller = select.poll()
    by_fd: dict[int, list[Any]] = {}
    for obj in objects:
        fd = obj if isinstance(obj, int) else obj.fileno()
        by_fd.setdefault(fd, []).append(obj)
        poller.register(fd, _READABLE)
    ms = None if timeout is None else min(max(0, math.ceil(timeout * 1000)), _POLL_MAX_MS)
    return [obj for fd, _ in poller.poll(ms) for obj in by_fd.get(fd, ())]
