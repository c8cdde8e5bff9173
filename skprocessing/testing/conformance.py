"""The transport conformance suite: what the core relies on from every backend.

Run it against your backend from its own tests: define a `transport` fixture that yields
a fresh instance (closed after the test), optionally `death_notice_seconds` (how long a
killed peer may take to show as `ChannelClosed`; default 5), and import the tests:

    # test_my_transport.py
    import pytest
    from skprocessing.testing.conformance import *  # noqa: F401,F403

    @pytest.fixture
    def transport():
        t = MyTransport()
        yield t
        t.close()

Every test that starts a process has a timeout (pytest-timeout's mark) and checks that
no process it started is left running. Needs pytest (and pytest-timeout for the marks).
"""

from __future__ import annotations

import os
import select
import threading
import time

import pytest

from ..errors import ChannelClosed, TransportError
from ..transports.base import Capability
from . import _children as _entries
from ._reaping import wait_gone


@pytest.fixture
def death_notice_seconds() -> float:
    """How long a killed peer may take to show as `ChannelClosed` (override per backend)."""
    return 5.0


@pytest.fixture
def assert_reaped():
    """Collects pids during a test and checks at the end that none of them still runs."""
    pids: list[int] = []
    yield pids.append
    leftover = [pid for pid in pids if pid is not None and not wait_gone(pid, 10.0)]
    assert not leftover, f"processes still running after the test: {leftover}"


def _connected(transport):
    listener = transport.listen()
    client = transport.connect(listener.address, timeout=5)
    server = listener.accept(timeout=5)
    assert server is not None
    return listener, client, server


# -- pipes ---------------------------------------------------------------------------------

def test_pipe_carries_frames_both_ways(transport):
    a, b = transport.pipe()
    a.send([b"one", bytearray(b"two"), memoryview(b"three"), b""])
    assert [bytes(f) for f in b.recv(timeout=5)] == [b"one", b"two", b"three", b""]
    b.send([b"back"])
    assert [bytes(f) for f in a.recv(timeout=5)] == [b"back"]
    a.close(), b.close()


def test_recv_times_out_with_none_and_poll_reports(transport):
    a, b = transport.pipe()
    began = time.monotonic()
    assert b.recv(timeout=0.2) is None
    assert 0.15 < time.monotonic() - began < 2.0
    assert b.poll(0) is False
    a.send([b"x"])
    assert b.poll(5) is True
    assert b.recv(timeout=5) == [b"x"]
    a.close(), b.close()


def test_order_is_kept_over_many_messages(transport):
    a, b = transport.pipe()
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.extend(int(b.recv(timeout=10)[0]) for _ in range(5000)))
    reader.start()
    for i in range(5000):
        a.send([str(i).encode()])
    reader.join(30)
    assert got == list(range(5000))
    a.close(), b.close()


def test_large_frames_arrive_intact(transport):
    a, b = transport.pipe()
    big = os.urandom(8 << 20)
    sender = threading.Thread(target=a.send, args=([b"head", big, b"tail"],))
    sender.start()
    frames = b.recv(timeout=20)
    sender.join(20)
    assert [bytes(f) for f in frames] == [b"head", big, b"tail"]
    a.close(), b.close()


def test_close_drains_then_raises_channel_closed(transport):
    a, b = transport.pipe()
    a.send([b"last words"])
    a.close()
    assert a.closed
    assert b.recv(timeout=5) == [b"last words"]
    with pytest.raises(ChannelClosed):
        b.recv(timeout=5)
    with pytest.raises(ChannelClosed):
        a.send([b"after close"])
    b.close()


def test_closed_channel_is_an_eof_error(transport):
    a, b = transport.pipe()
    b.close()
    with pytest.raises(EOFError):
        a.recv(timeout=5)
    a.close()


# -- listeners -------------------------------------------------------------------------------

def test_listener_accepts_and_channels_talk(transport):
    listener, client, server = _connected(transport)
    client.send([b"ping"])
    assert server.recv(timeout=5) == [b"ping"]
    server.send([b"pong"])
    assert client.recv(timeout=5) == [b"pong"]
    client.close(), server.close(), listener.close()


def test_accept_times_out_with_none(transport):
    listener = transport.listen()
    began = time.monotonic()
    assert listener.accept(timeout=0.2) is None
    assert time.monotonic() - began < 2.0
    listener.close()


def test_several_clients_are_separate_channels(transport):
    listener = transport.listen()
    clients = [transport.connect(listener.address, timeout=5) for _ in range(4)]
    servers = [listener.accept(timeout=5) for _ in clients]
    assert all(servers) and len(set(map(id, servers))) == 4
    for i, client in enumerate(clients):
        client.send([str(i).encode()])
    got = sorted(int(s.recv(timeout=5)[0]) for s in servers)
    assert got == [0, 1, 2, 3]
    for s in servers:  # each answer goes back to its own client only
        s.send([b"for you"])
    assert all(c.recv(timeout=5) == [b"for you"] for c in clients)
    for ch in [*clients, *servers]:
        ch.close()
    listener.close()


def test_closing_the_listener_keeps_accepted_channels(transport):
    listener, client, server = _connected(transport)
    listener.close()
    client.send([b"still here"])
    assert server.recv(timeout=5) == [b"still here"]
    client.close(), server.close()


def test_peer_close_is_seen_on_a_listener_channel(transport):
    listener, client, server = _connected(transport)
    client.close()
    with pytest.raises(ChannelClosed):
        server.recv(timeout=5)
    server.close(), listener.close()


# -- wait / fileno ------------------------------------------------------------------------------

def test_wait_returns_ready_channels_or_empty_on_timeout(transport):
    (a1, b1), (a2, b2) = transport.pipe(), transport.pipe()
    assert transport.wait([b1, b2], timeout=0.1) == []
    a2.send([b"two"])
    assert transport.wait([b1, b2], timeout=5) == [b2]
    assert b2.recv(timeout=1) == [b"two"]
    assert transport.wait([b1, b2], timeout=0.05) == []
    a1.close()
    assert transport.wait([b1, b2], timeout=5) == [b1]  # a close is "ready" too
    for ch in (a2, b1, b2):
        ch.close()


def test_fileno_is_selectable(transport):
    if Capability.SELECTABLE_FDS not in transport.capabilities:
        pytest.skip("a backend without selectable fds offers no fileno()")
    a, b = transport.pipe()
    assert select.select([b.fileno()], [], [], 0.05)[0] == []
    a.send([b"wake"])
    assert select.select([b.fileno()], [], [], 5)[0] == [b.fileno()]
    b.recv(timeout=1)
    a.close(), b.close()


# -- processes -----------------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_start_child_echoes_over_a_pipe_end(transport, assert_reaped):
    mine, theirs = transport.pipe()
    handle = transport.start(_entries.echo, theirs)
    assert_reaped(handle.pid)
    theirs.close()  # the parent's copy; the child keeps its own
    for i in range(50):
        mine.send([b"n", str(i).encode()])
        assert mine.recv(timeout=10) == [b"n", str(i).encode()]
    mine.close()
    assert handle.wait(10) == 0


@pytest.mark.timeout(60)
def test_messages_sent_just_before_exit_arrive(transport, assert_reaped):
    mine, theirs = transport.pipe()
    handle = transport.start(_entries.send_then_exit, theirs, 200)
    assert_reaped(handle.pid)
    theirs.close()
    got = [int(mine.recv(timeout=10)[0]) for _ in range(200)]
    assert got == list(range(200))
    assert handle.wait(10) == 0
    with pytest.raises(ChannelClosed):
        mine.recv(timeout=10)
    mine.close()


@pytest.mark.timeout(60)
def test_child_connects_to_a_listener(transport, assert_reaped):
    listener = transport.listen()
    handle = transport.start(_entries.dial_and_echo, transport, listener.address)
    assert_reaped(handle.pid)
    channel = listener.accept(timeout=20)
    assert channel is not None
    hello, pid = channel.recv(timeout=10)
    assert hello == b"hello"
    if handle.pid is not None:  # (a backend whose processes are threads has no pids)
        assert pid == str(handle.pid).encode()
    channel.send([b"echo me"])
    assert channel.recv(timeout=10) == [b"echo me"]
    channel.close(), listener.close()
    assert handle.wait(10) is not None


@pytest.mark.timeout(60)
def test_shared_ints_are_shared_with_a_child(transport, assert_reaped):
    if Capability.SAME_HOST_MEMORY not in transport.capabilities:
        pytest.skip("a backend without same-host memory offers no shared_int()")
    done, counter = transport.shared_int(), transport.shared_int()
    assert (done.value, counter.value) == (0, 0)
    handle = transport.start(_entries.set_cells, done, counter)
    assert_reaped(handle.pid)
    assert handle.wait(20) == 0  # the child wrote both before it ended
    assert (done.value, counter.value) == (1, 42)


@pytest.mark.timeout(60)
def test_killed_peer_surfaces_as_channel_closed(transport, assert_reaped, death_notice_seconds):
    mine, theirs = transport.pipe()
    handle = transport.start(_entries.hang, theirs)
    assert_reaped(handle.pid)
    theirs.close()
    assert mine.recv(timeout=20)[0] == b"ready"
    handle.kill()
    began = time.monotonic()
    with pytest.raises(ChannelClosed):
        while mine.recv(timeout=30) is not None:
            pass
    assert time.monotonic() - began < death_notice_seconds
    mine.close()


def test_connect_to_nothing_fails_in_time(transport):
    listener = transport.listen()
    address = listener.address
    listener.close()
    began = time.monotonic()
    with pytest.raises(TransportError):
        transport.connect(address, timeout=0.5)
    assert time.monotonic() - began < 3.0


def test_dropping_a_channel_closes_it(transport):
    import gc
    a, b = transport.pipe()
    a.send([b"first"])
    assert b.recv(timeout=5) == [b"first"]
    del a
    gc.collect()
    with pytest.raises(ChannelClosed):
        b.recv(timeout=5)
    b.close()


def test_wait_includes_a_listener_with_a_pending_peer(transport):
    listener = transport.listen()
    a, b = transport.pipe()
    assert transport.wait([listener, b], timeout=0.05) == []
    client = transport.connect(listener.address, timeout=5)
    assert transport.wait([listener, b], timeout=5) == [listener]
    server = listener.accept(timeout=1)
    assert server is not None
    for ch in (client, server, a, b):
        ch.close()
    listener.close()


def test_concurrent_senders_keep_each_threads_order(transport):
    a, b = transport.pipe()

    def sender(tag: bytes) -> None:
        for i in range(500):
            a.send([tag, str(i).encode()])
    threads = [threading.Thread(target=sender, args=(bytes([65 + t]),)) for t in range(4)]
    for t in threads:
        t.start()
    seen: dict[bytes, list[int]] = {}
    for _ in range(2000):
        tag, number = b.recv(timeout=10)
        seen.setdefault(bytes(tag), []).append(int(number))
    for t in threads:
        t.join(10)
    assert sorted(seen) == [b"A", b"B", b"C", b"D"]
    assert all(numbers == list(range(500)) for numbers in seen.values())
    a.close(), b.close()
