"""Module-level entry points that the transport tests start in child processes."""

from __future__ import annotations

import os
import time

from skprocessing.testing._children import dial_and_echo, hang  # noqa: F401  (started by tests here)


def busy(channel, seconds: float) -> None:
    """Hold the GIL-bound main thread in pure Python work, then answer."""
    channel.send([b"started"])
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += sum(range(1000))
    channel.send([b"done", str(n).encode()])
    channel.recv(timeout=30)


def dial_url_and_echo(url: str, address: str) -> None:
    """Connect the way a pool worker does: a transport rebuilt from its URL alone."""
    from skprocessing.transports import get_transport
    dial_and_echo(get_transport(url), address)


from skprocessing.transports.base import Capability  # noqa: E402
from skprocessing.transports.local import LocalTransport  # noqa: E402


class RenamedLocal(LocalTransport):
    """The local transport under another name: the core must treat it exactly the same."""

    name = "renamed-local"


class NoSharedMemoryLocal(LocalTransport):
    """The local transport without `SAME_HOST_MEMORY`: stop and current_run as messages."""

    name = "no-shared-memory-local"
    capabilities = LocalTransport.capabilities - {Capability.SAME_HOST_MEMORY}

    def shared_int(self):
        raise AssertionError("the core used shared memory it was not offered")
