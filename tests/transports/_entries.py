"""Module-level entry points that the transport tests start in child processes."""

from __future__ import annotations

import os
import time

from skprocessing.errors import ChannelClosed


def echo(channel) -> None:
    """Send back every message until the other end closes."""
    while True:
        try:
            frames = channel.recv(timeout=60)
        except ChannelClosed:
            return
        if frames is None:
            return
        channel.send(frames)


def send_then_exit(channel, count: int) -> None:
    """Send `count` numbered messages and return at once (the last must still arrive)."""
    for i in range(count):
        channel.send([str(i).encode(), os.urandom(64)])


def dial_and_echo(transport, address: str) -> None:
    channel = transport.connect(address, timeout=10)
    channel.send([b"hello", str(os.getpid()).encode()])
    echo(channel)


def set_cells(done, counter) -> None:
    counter.value = 42
    done.value = 1


def hang(channel) -> None:
    """Say ready, then never answer (the test kills this process)."""
    channel.send([b"ready", str(os.getpid()).encode()])
    time.sleep(600)


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
