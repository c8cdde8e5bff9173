"""Input from peers without the key, over 127.0.0.1: it may cost the head some CPU, but it
cannot stall the reactor, end a live session, make the head buffer a huge frame, or reach
anything above the transport. Bounded in time and memory; every attacker stops by itself."""

from __future__ import annotations

import threading
import time

import pytest

from skprocessing import Pool
from skprocessing.errors import ChannelClosed
from skprocessing.transports.zmq import ZmqTransport
from skprocessing.transports.zmq.protocol import MAX_WIRE_FRAME, WIRE_FRAME

from ._attack import announce_huge_frame, closed_by_peer, frame_flood

KEY = b"adversarial-test-key-0123456789abcdef"
FLOOD = 1_000_000  # empty frames in one message (2 MB on the wire; seconds of reading)


def _wait_sent(attacker) -> None:
    assert attacker.stdout.readline().strip() == "sent"


@pytest.mark.timeout(90)
def test_a_frame_flood_does_not_stall_a_keyed_listener_or_end_its_sessions():
    transport = ZmqTransport("tcp://127.0.0.1?heartbeat=0.2&dead_after=1.5", key=KEY)
    listener = transport.listen()
    client = transport.connect(listener.address, timeout=5)
    server = listener.accept(timeout=5)
    attacker = frame_flood(listener.address, FLOOD)
    try:
        _wait_sent(attacker)
        # Echo for as long as the flood takes to discard, and a while after: the session
        # lives (dead_after is 1.5 s, the discarding takes seconds).
        deadline = time.monotonic() + 60
        echoed = 0
        while time.monotonic() < deadline:
            client.send([b"ping %d" % echoed])
            assert server.recv(timeout=30) == [b"ping %d" % echoed]
            echoed += 1
            if listener.stats.get("oversized handshake") and echoed > 50:
                break
            time.sleep(0.01)
        assert listener.stats.get("oversized handshake") == 1
        for i in range(20):  # and after it
            server.send([b"after %d" % i])
            assert client.recv(timeout=10) == [b"after %d" % i]
    finally:
        attacker.stdin.close()
        attacker.wait(10)
        client.close(), server.close(), listener.close(), transport.close()


@pytest.mark.timeout(120)
def test_a_frame_flood_at_a_keyed_pool_leaves_the_pool_working():
    with Pool(2, transport="tcp://127.0.0.1?heartbeat=0.25&dead_after=2", key=KEY) as pool:
        assert pool.map(abs, range(-5, 5)) == [abs(i) for i in range(-5, 5)]
        attacker = frame_flood(pool.address, FLOOD)
        try:
            _wait_sent(attacker)
            for _ in range(3):
                assert pool.map(abs, range(-100, 100)) == [abs(i) for i in range(-100, 100)]
                time.sleep(1)
        finally:
            attacker.stdin.close()
            attacker.wait(10)


@pytest.mark.timeout(60)
def test_a_peer_announcing_a_frame_beyond_the_limit_is_disconnected_before_it_is_buffered():
    transport = ZmqTransport("tcp://127.0.0.1", key=KEY)
    listener = transport.listen()
    client = transport.connect(listener.address, timeout=5)
    server = listener.accept(timeout=5)
    peers = [announce_huge_frame(listener.address, 500_000_000, 1 << 16) for _ in range(10)]
    try:
        assert all(closed_by_peer(sock, 10) for sock in peers)
        within = announce_huge_frame(listener.address, MAX_WIRE_FRAME // 2, 1 << 16)
        assert not closed_by_peer(within, 1)  # (so it was the size that did it)
        within.close()
        client.send([b"still here"])
        assert server.recv(timeout=5) == [b"still here"]
    finally:
        for sock in peers:
            sock.close()
        client.close(), server.close(), listener.close(), transport.close()


@pytest.mark.timeout(60)
def test_frames_larger_than_a_wire_frame_travel_in_pieces_and_arrive_whole():
    transport = ZmqTransport("tcp://127.0.0.1", key=KEY)
    listener = transport.listen()
    client = transport.connect(listener.address, timeout=5)
    server = listener.accept(timeout=5)
    try:
        big = bytes(range(256)) * ((2 * WIRE_FRAME + 12345) // 256)
        small = b"small"
        server.send([small, big, small, memoryview(big)[: WIRE_FRAME + 1]])
        got = client.recv(timeout=30)
        assert [bytes(f) for f in got] == [small, big, small, big[: WIRE_FRAME + 1]]
    finally:
        client.close(), server.close(), listener.close(), transport.close()


@pytest.mark.timeout(30)
def test_a_message_of_too_many_frames_is_refused_by_the_sender_with_a_reason():
    from skprocessing.errors import TransportError
    from skprocessing.transports.zmq.protocol import MAX_FRAMES
    transport = ZmqTransport("tcp://127.0.0.1", key=KEY)
    listener = transport.listen()
    client = transport.connect(listener.address, timeout=5)
    server = listener.accept(timeout=5)
    try:
        with pytest.raises(TransportError, match="frames"):
            client.send([b""] * (MAX_FRAMES + 1))
        client.send([b"next"])  # the channel goes on
        assert server.recv(timeout=5) == [b"next"]
    finally:
        client.close(), server.close(), listener.close(), transport.close()
