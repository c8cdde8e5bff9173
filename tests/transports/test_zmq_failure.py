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


def _accept_agent(listener, timeout: float = 30.0):
    """The next channel whose first message is an agent's HELLO (its workers connect too)."""
    from skprocessing.core.pool._messages import AGENT, HELLO
    from skprocessing.serializers.codec import Codec
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        channel = listener.accept(timeout=max(0.1, deadline - time.monotonic()))
        if channel is None:
            return None
        frames = channel.recv(timeout=10)
        kind, body = Codec().decode(frames)
        if kind == HELLO and body[0] == AGENT:
            return channel
        channel.close()  # one of its workers: not what this test watches
    return None


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
        channel = _accept_agent(listener)
        assert channel is not None, "the agent never joined"
        time.sleep(3 * DEAD_AFTER)  # idle, but heartbeats keep the session alive
        while channel.poll(0):  # DIED reports of the workers closed above, if any
            channel.recv(timeout=0)
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
        first = _accept_agent(listener)
        first.close()
        second = _accept_agent(listener)
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


@pytest.mark.timeout(60)
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
    assert handle.wait(10) is not None
    mine.close()


def test_an_unreachable_peer_surfaces_at_once_not_after_the_heartbeat_limit():
    from ._raw import RawPeer
    transport = ZmqTransport("tcp://127.0.0.1?heartbeat=1&dead_after=30", key=KEY)
    listener = transport.listen()
    peer = RawPeer(listener.address, KEY.encode())
    peer.hello()
    channel = listener.accept(timeout=5)
    peer.close()  # gone without a BYE; the heartbeat would take 30 s to notice
    began = time.monotonic()
    with pytest.raises(ChannelClosed, match="unreachable"):
        while time.monotonic() - began < 10:
            channel.send([b"anyone?"])  # ROUTER_MANDATORY: EHOSTUNREACH once the route is gone
            time.sleep(0.01)
    assert time.monotonic() - began < 5
    listener.close()


@pytest.mark.timeout(60)
def test_a_stopped_peer_on_this_host_blocks_the_sender_and_is_dead_only_once_killed(assert_reaped):
    # A slow process is not a dead one: a peer on this host is judged by its process
    # being alive, not by silence (heartbeat.py); its death is seen within two heartbeats.
    import threading
    transport = ZmqTransport(f"tcp://127.0.0.1?heartbeat=0.2&dead_after=1.5&hwm=8")
    mine, theirs = transport.pipe()
    handle = transport.start(_entries.hang, theirs)
    assert_reaped(handle.pid)
    theirs.close()
    assert mine.recv(timeout=20)[0] == b"ready"
    os.kill(handle.pid, signal.SIGSTOP)
    sent, outcome = [], []
    blob = bytes(1 << 20)

    def flood() -> None:
        try:
            for i in range(1000):
                mine.send([blob])
                sent.append(i)
        except ChannelClosed as exc:
            outcome.append(exc)
    sender = threading.Thread(target=flood, daemon=True)
    sender.start()
    try:
        sender.join(2 * 1.5 + 1)  # twice dead_after: stopped, still alive, still waited for
        assert sender.is_alive() and not outcome, outcome
        assert 0 < len(sent) < 200, f"{len(sent)} MiB queued for a stopped peer: no backpressure"
        handle.kill()
        sender.join(20)
        assert outcome, "the sender was never released"
        assert "exited" in str(outcome[0]) or "unreachable" in str(outcome[0]), outcome[0]
    finally:
        if handle.wait(0) is None:
            os.kill(handle.pid, signal.SIGCONT)
        handle.kill()
        # Reaped before the fixture looks: /proc/<pid>/stat of a process caught in the
        # middle of its exit raises ProcessLookupError, which the check does not expect.
        handle.wait(10)
    mine.close()


@pytest.mark.timeout(60)
def test_agent_joins_over_curve():
    transport = ZmqTransport("tcp://127.0.0.1?curve=1", key=KEY)
    listener = transport.listen()
    agent = subprocess.Popen([sys.executable, "-m", "skprocessing", "worker", listener.address,
                              "--curve", "--quiet"], env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        channel = listener.accept(timeout=30)
        assert channel is not None, "the agent did not join over CurveZMQ"
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(10) == 0
    finally:
        agent.kill()
        agent.wait(10)
        listener.close()
