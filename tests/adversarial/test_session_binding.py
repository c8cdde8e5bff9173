"""A session is bound to its key, not to anything that travels in clear, over 127.0.0.1.

- Takeover: a peer without the key that connects under what it saw of a worker's session
  on the wire (the routing id / session id) gets none of the head's messages, and the
  real worker's session goes on without a loss. A captured message of that session,
  replayed from the peer's own connection, is dropped and does not move the session.
- Cross-port replay: HELLOs captured on their way to one listener, replayed to another
  listener with the same key, open no session there (nothing is accepted, so nothing is
  read or unpickled), and the refusal is counted and logged.
Every attacker here is a raw pyzmq socket in this process, closed by the test."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import zmq

from skprocessing.errors import TransportError
from skprocessing.transports.zmq import ZmqTransport

KEY = b"session-binding-test-key-0f3c9a51e7"
URL = "tcp://127.0.0.1?heartbeat=0.2&dead_after=1.5"


def _until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def keyed():
    transport = ZmqTransport(URL, key=KEY)
    listener = transport.listen()
    client = transport.connect(listener.address, timeout=5)
    server = listener.accept(timeout=5)
    context = zmq.Context()
    yield transport, listener, client, server, context
    client.close(), server.close(), listener.close(), transport.close()
    context.destroy(linger=0)


def _raw(context: zmq.Context, kind: int, identity: bytes | None = None) -> zmq.Socket:
    sock = context.socket(kind)
    sock.linger = 0
    if identity:
        sock.setsockopt(zmq.ROUTING_ID, identity)
    return sock


def _echo(a, b, tag: bytes, count: int) -> None:
    for i in range(count):
        a.send([tag + b" %d" % i])
        assert b.recv(timeout=10) == [tag + b" %d" % i]


@pytest.mark.timeout(60)
def test_a_peer_claiming_a_workers_session_id_gets_nothing_and_the_worker_keeps_working(keyed):
    transport, listener, client, server, context = keyed
    _echo(client, server, b"before", 5)
    seen_on_the_wire = client._link.session  # what a peer sniffing the link reads in clear
    attacker = _raw(context, zmq.DEALER, seen_on_the_wire)
    attacker.connect(listener.address)
    # Its (unsigned) word, under that id, proves its connection is up and identified.
    dropped = listener.stats.get("dropped", 0)
    attacker.send_multipart([seen_on_the_wire + bytes(32), b"forged"])
    assert _until(lambda: listener.stats.get("dropped", 0) > dropped)
    _echo(server, client, b"to the worker", 50)
    _echo(client, server, b"from the worker", 50)
    assert not attacker.poll(0), "the attacker received a message meant for the worker"
    assert not client.closed and not server.closed


@pytest.mark.timeout(60)
def test_hellos_replayed_to_another_listener_open_no_session(keyed, caplog):
    transport, listener, client, server, context = keyed
    # A man in the middle: a plain ROUTER where the worker thinks the head is, which
    # records the worker's HELLOs (the worker retries until its connect times out).
    sniffer = _raw(context, zmq.ROUTER)
    port = sniffer.bind_to_random_port("tcp://127.0.0.1")
    failed: list[BaseException] = []

    def victim() -> None:
        try:
            transport.connect(f"tcp://127.0.0.1:{port}", timeout=1.0)
        except TransportError as exc:
            failed.append(exc)
    thread = threading.Thread(target=victim)
    thread.start()
    assert sniffer.poll(10_000), "no HELLO reached the sniffer"
    captured = sniffer.recv_multipart()
    thread.join(10)
    assert failed, "the victim's connect should have timed out (nobody answered)"
    routing_id, frames = captured[0], captured[1:]
    # Replayed exactly as captured (routing id included, unless ZeroMQ made it up).
    replayer = _raw(context, zmq.DEALER, routing_id if routing_id[:1] != b"\0" else None)
    replayer.connect(listener.address)
    caplog.set_level(logging.WARNING, logger="skprocessing.transports.zmq")
    replayer.send_multipart(frames)
    assert listener.accept(timeout=1.5 + 2.0) is None, "a replayed HELLO opened a session"
    assert _until(lambda: listener.stats.get("handshake not completed", 0) == 1)
    assert any("not completed" in r.getMessage() for r in caplog.records)
    _echo(client, server, b"unaffected", 5)
    late = transport.connect(listener.address, timeout=5)  # real peers still join
    accepted = listener.accept(timeout=5)
    _echo(late, accepted, b"late", 5)
    late.close(), accepted.close()


@pytest.mark.timeout(60)
def test_a_captured_message_replayed_from_another_connection_moves_nothing(keyed):
    from tests.transports._raw import RawPeer
    transport, listener, client, server, context = keyed
    peer = RawPeer(listener.address, KEY)  # a real session, whose frames we can capture
    peer.hello()
    channel = listener.accept(timeout=5)
    captured = peer.message([b"once"])
    peer.send(captured)
    assert channel.recv(timeout=5) == [b"once"]
    replayer = _raw(context, zmq.DEALER)
    replayer.connect(listener.address)
    replayer.send_multipart(captured)  # fresh connection, the session's own signed frames
    assert _until(lambda: listener.stats.get("replayed DATA", 0) == 1)
    channel.send([b"for the peer"])
    assert peer.sock.poll(5000), "the session's messages went elsewhere"
    assert peer.sock.recv_multipart()[-1] == b"for the peer"
    assert not replayer.poll(0)
    assert channel.recv(timeout=0.2) is None  # the replay was not delivered again
    channel.close()
    peer.close()
