"""ZeroMQ transport failure detection: dead peers, dead heads, busy peers, the worker agent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from skprocessing.errors import ChannelClosed
from skprocessing.transports.zmq import ZmqTransport
from skprocessing.transports.zmq.heartbeat import Liveness

from . import _entries
from .conftest import DEAD_AFTER, HEARTBEAT

KEY = "agent-test-key-0123456789"
LIMIT = DEAD_AFTER + 1.5


def _env() -> dict[str, str]:
    return dict(os.environ, SKPROCESSING_KEY=KEY, PYTHONUNBUFFERED="1")


def _closed_within(channel, limit: float) -> float:
    began = time.monotonic()
    with pytest.raises(ChannelClosed):
        while True:
            channel.recv(timeout=limit + 5)
            assert time.monotonic() - began < limit + 5
    return time.monotonic() - began


def test_default_detection_is_at_most_five_seconds():
    liveness = ZmqTransport("tcp://127.0.0.1").liveness
    assert liveness.dead_after + liveness.tick <= 5.0
    with pytest.raises(ValueError):
        Liveness(heartbeat=2, dead_after=1)


@pytest.mark.timeout(60)
def test_agent_joins_and_its_death_is_detected():
    transport = ZmqTransport(f"tcp://127.0.0.1?heartbeat={HEARTBEAT}&dead_after={DEAD_AFTER}", key=KEY)
    listener = transport.listen()
    agent = subprocess.Popen(
        [sys.executable, "-m", "skprocessing", "worker", listener.address, "--workers", "2",
         "--heartbeat", str(HEARTBEAT), "--dead-after", str(DEAD_AFTER)],
        env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        channel = listener.accept(timeout=30)
        assert channel is not None, "the agent never joined"
        time.sleep(3 * DEAD_AFTER)  # idle, but heartbeats keep the session alive
        assert channel.poll(0) is False
        agent.kill()
        assert _closed_within(channel, LIMIT) < LIMIT
        assert "joined the head" in agent.communicate(timeout=10)[1]
    finally:
        agent.kill()
        agent.wait(10)
        listener.close()


@pytest.mark.timeout(60)
def test_agent_reconnects_when_the_head_drops_it():
    transport = ZmqTransport(f"tcp://127.0.0.1?heartbeat={HEARTBEAT}&dead_after={DEAD_AFTER}", key=KEY)
    listener = transport.listen()
    agent = subprocess.Popen(
        [sys.executable, "-m", "skprocessing", "worker", listener.address,
         "--heartbeat", str(HEARTBEAT), "--dead-after", str(DEAD_AFTER)],
        env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        first = listener.accept(timeout=30)
        first.close()
        second = listener.accept(timeout=30)
        assert second is not None, "the agent did not come back"
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(10) == 0
        log = agent.communicate(timeout=10)[1]
        assert "lost the head" in log and "session 2" in log
        with pytest.raises(ChannelClosed):
            second.recv(timeout=LIMIT + 2)  # a clean exit says BYE
    finally:
        agent.kill()
        agent.wait(10)
        listener.close()


def test_agent_without_a_head_gives_up_with_a_message():
    result = subprocess.run([sys.executable, "-m", "skprocessing", "worker", "tcp://127.0.0.1:9",
                             "--give-up", "1"], env=_env(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "giving up" in result.stderr


@pytest.mark.timeout(60)
def test_a_dead_head_is_detected_by_the_connecting_side():
    head = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from skprocessing.transports.zmq import ZmqTransport
        t = ZmqTransport("tcp://127.0.0.1?heartbeat={HEARTBEAT}&dead_after={DEAD_AFTER}")
        listener = t.listen()
        print(listener.address, flush=True)
        channel = listener.accept(timeout=30)
        time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        address = head.stdout.readline().strip()
        transport = ZmqTransport(f"tcp://127.0.0.1?heartbeat={HEARTBEAT}&dead_after={DEAD_AFTER}",
                                 key=KEY)
        channel = transport.connect(address, timeout=10)
        head.kill()
        assert _closed_within(channel, LIMIT) < LIMIT
    finally:
        head.kill()
        head.wait(10)


@pytest.mark.timeout(60)
def test_a_busy_peer_is_not_declared_dead(zmq_transport, assert_reaped):
    mine, theirs = zmq_transport.pipe()
    handle = zmq_transport.start(_entries.busy, theirs, 4 * DEAD_AFTER)
    assert_reaped(handle.pid)
    theirs.close()
    assert mine.recv(timeout=20) == [b"started"]
    assert mine.recv(timeout=4 * DEAD_AFTER + 10)[0] == b"done"
    mine.send([b"bye"])
    assert handle.join(10)
    mine.close()
