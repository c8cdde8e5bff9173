"""`SharedCell`: one integer in shared memory, a `SharedInt` for processes on one host.

A transport-layer piece, not a backend: the local and ZeroMQ backends both hand these out
for processes they start on this machine (a memfd passed to the child as a descriptor;
reading it is a memory load).
"""

from __future__ import annotations

import mmap
import os
import tempfile

from ._launcher import PassedByFd
from .base import SharedInt

__all__ = ["SharedCell"]


class SharedCell(SharedInt, PassedByFd):
    """One signed 64-bit integer in shared memory."""

    def __init__(self, fd: int | None = None):
        if fd is None:
            fd = _anonymous_memory(8)
        self._fd = fd
        self._map = mmap.mmap(fd, 8)
        self._cell = memoryview(self._map).cast("q")

    @property
    def value(self) -> int:
        return self._cell[0]

    @value.setter
    def value(self, new: int) -> None:
        self._cell[0] = new

    def _export_fd(self) -> tuple[int, None]:
        return self._fd, None

    @classmethod
    def _import_fd(cls, fd: int, state: None) -> SharedCell:
        return cls(fd)

    def __reduce__(self):
        raise TypeError("a shared cell can only be passed to a process through Transport.start()")

    def __del__(self):
        try:
            self._cell.release()
            self._map.close()
            os.close(self._fd)
        except (AttributeError, OSError, BufferError):
            pass


def _anonymous_memory(size: int) -> int:
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("skprocessing-cell", os.MFD_CLOEXEC)
    else:
        fd, path = tempfile.mkstemp(prefix="skprocessing-cell-")
        os.unlink(path)
    os.ftruncate(fd, size)
    return fd
