"""ZeroMQ transport details: URLs and options, the registry, inproc, fork safety, cleanup."""

from __future__ import annotations

import gc
import os
import stat
import time

import pytest

from skprocessing.errors import TransportError
from skprocessing.transports import available_transports, get_transport
from skprocessing.transports.zmq import ZmqTransport
from skprocessing.transports.zmq.reactor import get_reactor
from tests.conftest import run_script


def test_schemes_are_registered():
    assert {"tcp", "ipc", "inproc", "zmq"} <= set(available_transports())
    for url in ("tcp://127.0.0.1", "ipc://", "inproc://", "zmq://"):
        assert isinstance(get_transport(url), ZmqTransport)


def test_url_options_and_their_errors():
    t = ZmqTransport("tcp://127.0.0.1:5555?heartbeat=0.5&dead_after=2&hwm=10&linger=0.1&connect_timeout=3")
    assert t.address == "tcp://127.0.0.1:5555"
    assert (t.liveness.heartbeat, t.liveness.dead_after, t.connect_timeout) == (0.5, 2.0, 3.0)
    assert ZmqTransport("tcp://127.0.0.1", heartbeat=0.3).liveness.heartbeat == 0.3  # keyword wins
    for url in ("tcp://127.0.0.1", "tcp://127.0.0.1:0", "tcp://127.0.0.1:*", "ipc://", "inproc://", "zmq://"):
        assert ZmqTransport(url).address is None
    with pytest.raises(ValueError, match="unknown option"):
        ZmqTransport("tcp://127.0.0.1?hearbeat=1")
    with pytest.raises(ValueError, match="dead_after"):
        ZmqTransport("tcp://127.0.0.1?heartbeat=5&dead_after=1")


def test_listen_uses_the_url_address_and_reports_a_busy_one():
    probe = ZmqTransport("tcp://127.0.0.1").listen()
    port = probe.address.rsplit(":", 1)[1]
    with pytest.raises(TransportError, match="cannot listen"):
        ZmqTransport(f"tcp://127.0.0.1:{port}").listen()
    probe.close()
    fixed = ZmqTransport(f"tcp://127.0.0.1:{port}").listen()
    assert fixed.address == f"tcp://127.0.0.1:{port}"
    fixed.close()


def test_fresh_ipc_listeners_live_in_a_private_directory():
    listener = ZmqTransport("ipc://").listen()
    directory = os.path.dirname(listener.address[len("ipc://"):])
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    listener.close()
    assert not os.path.exists(directory)


def test_inproc_listen_and_connect():
    t = ZmqTransport("inproc://")
    listener = t.listen()
    assert listener.address.startswith("inproc://")
    client = t.connect(listener.address, timeout=5)
    server = listener.accept(timeout=5)
    client.send([b"in", b"proc"])
    assert server.recv(timeout=5) == [b"in", b"proc"]
    client.close(), server.close(), listener.close()


def test_dropped_listener_and_channels_release_their_socket():
    t = ZmqTransport("tcp://127.0.0.1")
    reactor = get_reactor()
    before = set(reactor._ports)
    listener = t.listen()
    client = t.connect(listener.address, timeout=5)
    server = listener.accept(timeout=5)
    ours = set(reactor._ports) - before
    assert len(ours) == 2  # the listener's ROUTER and the client's DEALER
    del listener, client, server
    gc.collect()
    deadline = time.monotonic() + 5
    while ours & set(reactor._ports) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not ours & set(reactor._ports)


@pytest.mark.timeout(60)
def test_a_forked_child_gets_its_own_context():
    result = run_script("""
        import os
        from skprocessing.transports.zmq import ZmqTransport
        t = ZmqTransport("inproc://")
        listener = t.listen()  # the parent now has a reactor thread and a context
        pid = os.fork()
        if pid == 0:
            t2 = ZmqTransport("inproc://")
            l2 = t2.listen()
            c = t2.connect(l2.address, timeout=5)
            s = l2.accept(timeout=5)
            c.send([b"child ok"])
            ok = s.recv(timeout=5) == [b"child ok"]
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print("CHILD", os.waitstatus_to_exitcode(status))
    """, timeout=60)
    assert "CHILD 0" in result.stdout, result.stderr


def test_many_peers_on_one_listener():
    import threading
    t = ZmqTransport("tcp://127.0.0.1")
    listener = t.listen()
    clients: list = [None] * 50

    def dial(i: int) -> None:
        clients[i] = t.connect(listener.address, timeout=20)
    threads = [threading.Thread(target=dial, args=(i,)) for i in range(50)]
    for th in threads:
        th.start()
    servers = [listener.accept(timeout=20) for _ in range(50)]
    for th in threads:
        th.join(20)
    assert all(servers) and all(clients)
    for i, client in enumerate(clients):
        client.send([str(i).encode()])
    for server in servers:  # each server channel answers its own client
        server.send(server.recv(timeout=10))
    assert [int(c.recv(timeout=10)[0]) for c in clients] == list(range(50))
    for ch in [*clients, *servers]:
        ch.close()
    listener.close()


def test_with_key_keeps_every_other_option():
    from skprocessing.transports.zmq.transport import ZmqTransport
    original = ZmqTransport("tcp://127.0.0.1:0", curve=True, dead_after=30, heartbeat=2, hwm=50)
    keyed = original.with_key("k" * 32)
    assert keyed.curve is True
    assert (keyed.liveness.heartbeat, keyed.liveness.dead_after) == (2.0, 30.0)
    assert keyed._options["hwm"] == 50
    assert keyed._key != original._key
