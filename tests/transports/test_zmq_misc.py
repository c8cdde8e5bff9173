"""ZeroMQ transport details: URLs and options, the registry, inproc, fork safety, cleanup."""

from __future__ import annotations

import gc
import os
import stat
import time

import pytest

from skprocessing.core._exit import at_process_exit, process_entry
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


def test_reachable_addresses_of_a_wildcard_listener_are_this_hosts_loopback_last():
    from skprocessing.transports.local import LocalTransport
    listener = ZmqTransport("tcp://0.0.0.0:0", key="reach-test-key-4f1e0b").listen()
    try:
        port = listener.address.rsplit(":", 1)[1]
        found = listener.reachable_addresses()
        assert found[-1] == f"tcp://127.0.0.1:{port}"
        assert all(a.startswith("tcp://") and a.endswith(f":{port}") for a in found)
        assert not any(a.startswith(("tcp://0.0.0.0", "tcp://127.")) for a in found[:-1])
        assert len(set(found)) == len(found)
        # Every address listed answers (here: this host's own interfaces).
        for address in found:
            client = ZmqTransport("tcp://127.0.0.1", key="reach-test-key-4f1e0b").connect(address, timeout=5)
            client.send([b"hi"])
            assert listener.accept(timeout=5).recv(timeout=5) == [b"hi"]
            client.close()
    finally:
        listener.close()
    for listener in (ZmqTransport("tcp://127.0.0.1").listen(), ZmqTransport("ipc://").listen(),
                     LocalTransport().listen()):
        assert listener.reachable_addresses() == (listener.address,)
        listener.close()


def _take_commands(sock) -> None:
    import zmq
    for _ in range(5):
        sock.get(zmq.EVENTS)  # processes the socket's pending commands; reads nothing
        time.sleep(0.05)


@process_entry  # the core's entries run the exit hooks the core registered
def _hooks_then_return(channel) -> None:

    def first() -> None:
        channel.send([b"first"])

    def second() -> None:
        channel.send([b"second"])
    at_process_exit(first)
    at_process_exit(second)
    at_process_exit(first)  # again: keeps its first place, runs once


@pytest.mark.timeout(60)
@pytest.mark.parametrize("url", ["local", "tcp://127.0.0.1"])
def test_exit_hooks_run_in_a_started_child_last_registered_first(url, assert_reaped):
    # The hooks send through the transport after the entry returned: they run before
    # the child's transport is torn down, and before os._exit.
    transport = get_transport(url)
    mine, theirs = transport.pipe()
    handle = transport.start(_hooks_then_return, theirs)
    assert_reaped(handle.pid)
    theirs.close()
    assert [bytes(mine.recv(timeout=20)[0]) for _ in range(2)] == [b"second", b"first"]
    assert handle.wait(20) == 0
    mine.close()


def _atexit_then_return(network_url, address) -> None:
    import atexit
    channel = get_transport(network_url).connect(address, timeout=20)
    atexit.register(channel.send, [b"from atexit"])  # runs after the entry returned


@pytest.mark.timeout(60)
@pytest.mark.parametrize("url", ["local", "tcp://127.0.0.1"])
def test_a_started_child_runs_its_atexit_handlers_and_delivers_what_they_send(url, assert_reaped,
                                                                               tmp_path):
    # A child of either backend ends as an interpreter does: what an atexit handler sends
    # over ZeroMQ (queued on its reactor thread) still arrives, whichever backend started it.
    key_file = tmp_path / "key"
    key_file.write_text("atexit-test-key")
    network_url = f"tcp://127.0.0.1?key_file={key_file}"  # the child's key too
    listener = get_transport(network_url).listen()
    handle = get_transport(url).start(_atexit_then_return, network_url, listener.address)
    assert_reaped(handle.pid)
    channel = listener.accept(timeout=20)
    assert channel is not None
    assert bytes(channel.recv(timeout=20)[0]) == b"from atexit"
    assert handle.wait(20) == 0
    channel.close()
    listener.close()


@pytest.mark.timeout(60)
def test_an_unreachable_peer_s_last_messages_are_delivered_before_its_channel_closes():
    # A peer that sent and vanished: the send that finds it gone (EHOSTUNREACH) must not
    # cost the messages still queued in our socket.
    import threading
    from skprocessing.errors import ChannelClosed
    from ._raw import RawPeer
    key = "unreachable-test-key"
    listener = ZmqTransport("tcp://127.0.0.1?heartbeat=1&dead_after=30", key=key).listen()
    peer = RawPeer(listener.address, key.encode())
    peer.hello()
    channel = listener.accept(timeout=5)
    gate = threading.Event()
    reactor = get_reactor()
    reactor.post(gate.wait, 30)  # our reactor reads nothing until the gate opens
    try:
        for i in range(50):
            peer.send(peer.message([str(i).encode()]))
        peer.sock.close(linger=5000)  # gone without a BYE, once its messages are out
        peer.context.term()
        # Then, still reading nothing: let ZeroMQ take the route down (its socket acts on
        # the disconnect in steps, each when our thread calls into it), and send.
        reactor.post(_take_commands, listener._port.sock)
        channel.send([b"anyone?"])  # EHOSTUNREACH, with the 50 messages still queued
    finally:
        gate.set()
    got = []
    deadline = time.monotonic() + 20  # a guard for the loop, not a measurement
    with pytest.raises(ChannelClosed, match="unreachable"):
        while time.monotonic() < deadline:
            frames = channel.recv(timeout=0.05)
            if frames is None:
                channel.send([b"anyone?"])
            else:
                got.append(frames[0])
    assert got == [str(i).encode() for i in range(50)]
    listener.close()


def test_closing_a_listener_ends_the_sessions_nobody_accepted_and_frees_its_port():
    from skprocessing.errors import ChannelClosed
    t = ZmqTransport("tcp://127.0.0.1")
    listener = t.listen()
    address = listener.address
    client = t.connect(address, timeout=5)  # handshake done; never accepted
    listener.close()
    with pytest.raises(ChannelClosed):
        client.recv(timeout=10)  # the BYE of the session nobody took
    again = ZmqTransport(address).listen()  # the port is free again
    assert again.address == address
    again.close()
    client.close()


@pytest.mark.timeout(60)
def test_private_directories_of_a_killed_process_are_removed_by_the_next_one(tmp_path):
    import subprocess
    import sys
    from skprocessing.transports.zmq.private_dirs import private_dir, remove_dir
    make = ("import sys, time; from skprocessing.transports.zmq.private_dirs import private_dir; "
            f"print(private_dir('ipc', {str(tmp_path)!r}), flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", make], stdout=subprocess.PIPE, text=True)
    left = child.stdout.readline().strip()
    mine = None
    try:
        assert os.path.isdir(left) and os.stat(left).st_mode & 0o777 == 0o700
        mine = private_dir("ipc", str(tmp_path))  # its maker is alive: kept
        assert os.path.isdir(left)
    finally:
        child.kill()
        child.wait(10)
        if mine:
            remove_dir(mine)
    from skprocessing.transports.zmq import private_dirs
    private_dirs._swept.clear()  # as a fresh process would: it has not swept yet
    fresh = private_dir("ipc", str(tmp_path))
    try:
        assert not os.path.exists(left)  # SIGKILL ran no exit handler; the next maker swept
    finally:
        remove_dir(fresh)
