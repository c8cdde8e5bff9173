"""Module-level entry points the conformance suite starts in child processes (a backend's
`start()` must be able to import them)."""

from __future__ import annotations

import os
import time

from ..errors import ChannelClosed


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
