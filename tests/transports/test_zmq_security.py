"""ZeroMQ transport security: signing, replay protection, the bind policy, keys, CurveZMQ."""

from __future__ import annotations

import logging
import os
import pickle
import time

import pytest
import zmq

from skprocessing import Skprocess
from skprocessing.errors import ChannelClosed, TransportError
from skprocessing.transports import get_transport
from skprocessing.transports.zmq import ZmqTransport
from skprocessing.transports.zmq.protocol import BYE, DATA, NO_SESSION, pack_envelope
from skprocessing.transports.zmq.security import KEY_ENV, Signer, SessionGuard, is_loopback, load_key

from tests.conftest import wait_gone

from ._raw import RawPeer

KEY = b"0123456789abcdef" * 4


class _Boom:
    """Creates a file when unpickled: proof that a payload was deserialized."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def keyed():
    transport = ZmqTransport("tcp://127.0.0.1?heartbeat=0.2&dead_after=2", key=KEY)
    listener = transport.listen()
    client = transport.connect(listener.address, timeout=5)
    server = listener.accept(timeout=5)
    yield transport, listener, client, server
    client.close(), server.close(), listener.close(), transport.close()


def _echo_ok(client, server, text: bytes) -> bool:
    client.send([text])
    got = server.recv(timeout=5)
    server.send(got)
    return client.recv(timeout=5) == [text]


def test_bad_messages_are_dropped_counted_logged_and_traffic_goes_on(keyed, tmp_path, caplog):
    transport, listener, client, server = keyed
    caplog.set_level(logging.WARNING, logger="skprocessing.transports.zmq")
    marker = str(tmp_path / "unpickled")
    evil = pickle.dumps(_Boom(marker))

    # 1. unsigned, from a socket that never did a handshake (short ZeroMQ identity)
    stranger = zmq.Context.instance().socket(zmq.DEALER)
    stranger.linger = 0
    stranger.connect(listener.address)
    stranger.send_multipart([b"", evil])
    # 2. unsigned and forged (wrong key), from a socket that looks like a session
    forger = RawPeer(listener.address, b"not the key")
    forger.send([b"\0" * 32, pack_envelope(DATA, 1, [evil]), evil])
    forger.send(forger.message([evil]))
    # 3. a real session (it knows the key): tampered and replayed messages
    peer = RawPeer(listener.address, KEY)
    peer.hello()
    legit_channel = listener.accept(timeout=5)
    first = peer.message([b"legit 1"])
    peer.send(first)
    assert legit_channel.recv(timeout=5) == [b"legit 1"]
    tampered = peer.message([b"legit 2"])
    tampered[2] = b"evil! 2"
    peer.send(tampered)
    peer.send(first)  # replayed
    peer.send(peer.message([b"legit 3"], seq=peer.seq))  # the session goes on

    assert legit_channel.recv(timeout=5) == [b"legit 3"]
    assert _echo_ok(client, server, b"still fine")
    assert _until(lambda: listener.stats.get("dropped", 0) >= 5)
    stats = listener.stats
    assert stats["unknown sender"] == 1
    assert stats["oversized handshake"] == 2  # a sender with no session: not even hashed
    assert stats["bad signature"] == 1
    assert stats["replayed DATA"] == 1
    assert not os.path.exists(marker), "a payload was unpickled"
    assert listener.accept(timeout=0.1) is None  # no phantom peers
    lines = [r.getMessage() for r in caplog.records]
    assert sum("dropped a message from 127.0.0.1" in line for line in lines) >= 5
    assert any("bad signature" in line for line in lines)
    assert any("replayed DATA" in line for line in lines)
    stranger.close(0), forger.close(), peer.close()
    legit_channel.close()


def test_replayed_handshake_is_refused(keyed, caplog):
    transport, listener, client, server = keyed
    peer = RawPeer(listener.address, KEY)
    hello = peer.hello()
    channel = listener.accept(timeout=5)
    peer.send(peer.message([], kind=BYE))
    with pytest.raises(ChannelClosed):
        channel.recv(timeout=5)
    peer.close()
    replayer = RawPeer(listener.address, b"unknown", routing_id=peer.session)
    replayer.send(hello)
    assert _until(lambda: listener.stats.get("handshake replayed", 0) == 1)
    assert listener.accept(timeout=0.2) is None
    assert _echo_ok(client, server, b"unaffected")
    replayer.close()


def test_sequence_gap_closes_the_channel_with_a_reason(keyed):
    transport, listener, client, server = keyed
    peer = RawPeer(listener.address, KEY)
    peer.hello()
    channel = listener.accept(timeout=5)
    peer.send(peer.message([b"one"], seq=2))  # (seq 1: the handshake's answer)
    peer.send(peer.message([b"three"], seq=4))
    assert channel.recv(timeout=5) == [b"one"]
    with pytest.raises(ChannelClosed, match="lost"):
        channel.recv(timeout=5)
    peer.close()


def test_wrong_key_cannot_connect(keyed):
    transport, listener, client, server = keyed
    other = ZmqTransport("tcp://127.0.0.1", key=b"another key")
    with pytest.raises(TransportError, match="same key"):
        other.connect(listener.address, timeout=0.5)
    assert _until(lambda: listener.stats.get("bad signature", 0) == 1)
    assert listener.accept(timeout=0.1) is None


def test_binding_beyond_loopback_without_a_key_is_refused(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    transport = ZmqTransport("tcp://0.0.0.0:0")
    with pytest.raises(TransportError) as info:
        transport.listen()
    text = str(info.value)
    assert "without a key" in text and "secrets.token_hex" in text and KEY_ENV in text
    assert "--key-file" in text
    with pytest.raises(TransportError, match="without a key"):
        transport.listen("tcp://*:0")
    with pytest.raises(TransportError, match="without a key"):
        transport.connect("tcp://192.0.2.1:5555", timeout=0.1)  # refused before any packet


def test_loopback_without_a_key_is_allowed(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    transport = get_transport("tcp://127.0.0.1")
    listener = transport.listen()
    channel = transport.connect(listener.address, timeout=5)
    assert listener.accept(timeout=5) is not None
    channel.close(), listener.close(), transport.close()


def test_is_loopback():
    assert is_loopback("tcp://127.0.0.1:5")
    assert is_loopback("tcp://127.8.0.1:5")
    assert is_loopback("tcp://[::1]:5")
    assert is_loopback("tcp://localhost:5")
    assert is_loopback("ipc:///tmp/x") and is_loopback("inproc://x")
    assert not is_loopback("tcp://0.0.0.0:5")
    assert not is_loopback("tcp://*:5")
    assert not is_loopback("tcp://10.1.2.3:5")


def test_key_sources_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "from-env")
    path = tmp_path / "k"
    path.write_text("  from-file\n")
    assert load_key(b"explicit", str(path)) == b"explicit"
    assert load_key(None, str(path)) == b"from-file"
    assert load_key() == b"from-env"
    monkeypatch.delenv(KEY_ENV)
    assert load_key() is None
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(TransportError, match="empty"):
        load_key(None, str(tmp_path / "empty"))
    with pytest.raises(TransportError, match="cannot read"):
        load_key(None, str(tmp_path / "missing"))


def test_key_file_url_option(tmp_path):
    (tmp_path / "k").write_text(KEY.decode())
    transport = ZmqTransport(f"tcp://127.0.0.1?key_file={tmp_path / 'k'}")
    assert transport._key == KEY


def test_signer_covers_every_frame_and_the_session():
    signer = Signer(KEY)
    prefix = b"a" * 16 + NO_SESSION
    sig = signer.sign(prefix, b"env", [b"x", b"y"])
    assert signer.verify(sig, prefix, b"env", [b"x", b"y"])
    assert not signer.verify(sig, prefix, b"env", [b"x", b"z"])
    assert not signer.verify(sig, prefix, b"enV", [b"x", b"y"])
    assert not signer.verify(sig, b"b" * 16 + NO_SESSION, b"env", [b"x", b"y"])
    assert not Signer(b"other").verify(sig, prefix, b"env", [b"x", b"y"])


def test_session_guard_refuses_old_and_repeated_handshakes():
    guard = SessionGuard(window=60)
    now = time.time()
    assert guard.admit(b"s1", now, now) is None
    assert "replayed" in guard.admit(b"s1", now, now)
    assert "stale" in guard.admit(b"s2", now - 120, now)


@pytest.mark.skipif(not zmq.has("curve"), reason="libzmq without CurveZMQ")
def test_curve_encrypts_and_needs_curve_on_both_sides():
    secure = ZmqTransport("tcp://127.0.0.1?curve=1", key=KEY)
    listener = secure.listen()
    client = secure.connect(listener.address, timeout=5)
    server = listener.accept(timeout=5)
    assert _echo_ok(client, server, b"encrypted")
    plain = ZmqTransport("tcp://127.0.0.1", key=KEY)
    with pytest.raises(TransportError):
        plain.connect(listener.address, timeout=0.5)
    client.close(), server.close(), listener.close()
    keyless = ZmqTransport("tcp://127.0.0.1?curve=1")  # checked on use (so with_key() works)
    with pytest.raises(TransportError, match="needs a key"):
        keyless.listen()
    with pytest.raises(TransportError, match="needs a key"):
        keyless.connect(listener.address)


def test_channel_ends_do_not_pickle_outside_start():
    transport = ZmqTransport("tcp://127.0.0.1")
    a, b = transport.pipe()
    with pytest.raises(TypeError, match="Transport.start"):
        pickle.dumps(b)
    with pytest.raises(TypeError):
        pickle.dumps(a)
    with pytest.raises(TypeError, match="key"):
        pickle.dumps(ZmqTransport("tcp://127.0.0.1", key=KEY))
    a.close(), b.close(), transport.close()


@pytest.mark.timeout(60)
def test_unkeyed_loopback_is_private_to_this_process_tree(monkeypatch, assert_reaped):
    from tests.conftest import run_script

    from . import _entries
    monkeypatch.delenv(KEY_ENV, raising=False)
    transport = ZmqTransport("tcp://127.0.0.1")
    listener = transport.listen()
    outsider = run_script(f"""
        from skprocessing.errors import TransportError
        from skprocessing.transports.zmq import ZmqTransport
        try:
            ZmqTransport("tcp://127.0.0.1").connect("{listener.address}", timeout=1)
            print("JOINED")
        except TransportError:
            print("REFUSED")
    """)
    assert outsider.stdout.strip() == "REFUSED", outsider.stderr
    assert listener.stats["bad signature"] == 1
    handle = transport.start(_entries.dial_url_and_echo, "tcp://127.0.0.1", listener.address)
    assert_reaped(handle.pid)
    channel = listener.accept(timeout=20)
    assert channel is not None and channel.recv(timeout=10)[0] == b"hello"
    channel.close(), listener.close()
    assert handle.wait(10) is not None


# -- the same-host bulk path (transports/zmq/bulk.py) -------------------------------------------

from skprocessing.transports.zmq import bulk  # noqa: E402

BIG = 2 << 20  # above bulk.BULK_MIN


class _BulkPeer(RawPeer):
    """A raw peer that knows the key and keeps the WELCOME's bulk offer."""

    @property
    def offer(self) -> dict | None:
        return self.welcome.get("b")

    def bulk_message(self, name: str, size: int, reuse: bool = False, key: bytes | None = None) -> list[bytes]:
        self.seq += 1
        payload = [b"header", name.encode()]
        envelope = pack_envelope(DATA, self.seq, payload, {"b": [[1, size, reuse]]})
        signer = self.signer if key is None else Signer(key)
        return [self.session + signer.sign(self.prefix, envelope, payload), envelope, *payload]


def _own_name(peer: _BulkPeer, n: int = 1) -> str:
    return f"{bulk.sender_prefix(peer.welcome['s'])}{n:016x}"  # the session the head chose


def _write(directory: str, name: str, data: bytes, mode: int = 0o600) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with open(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # whatever the umask says
    return path


def test_large_frames_between_processes_of_one_user_travel_in_private_files(keyed):
    transport, listener, client, server = keyed
    data = os.urandom(BIG)
    for _ in range(3):  # the second and third reuse the first's file
        client.send([b"small", data])
        small, got = server.recv(timeout=10)
        assert small == b"small" and bytes(got) == data
    directory = bulk.shared_dir().path
    assert os.stat(directory).st_mode & 0o777 == 0o700
    mine = [n for n in os.listdir(directory) if n != "id"]
    assert mine and all(n.endswith(".free") for n in mine)  # read, kept for the next frame
    assert all(os.stat(os.path.join(directory, n)).st_mode & 0o777 == 0o600 for n in mine)
    client.close()
    with pytest.raises(ChannelClosed):
        server.recv(timeout=5)
    assert _until(lambda: not set(mine) & set(os.listdir(directory)))  # gone with the session


@pytest.mark.parametrize("case", ["another session's file", "named after its routing id",
                                  "symlink", "readable by others", "wrong size", "missing",
                                  "bad name"])
def test_forged_bulk_references_close_the_channel_and_nothing_is_loaded(keyed, tmp_path, case):
    transport, listener, client, server = keyed
    peer = _BulkPeer(listener.address, KEY)
    peer.hello()
    channel = listener.accept(timeout=5)
    directory = peer.offer["d"]
    data = pickle.dumps(_Boom(str(tmp_path / "unpickled")))
    name, size = _own_name(peer), len(data)
    if case == "another session's file":
        name = "ab" * 8 + "0" * 16  # a name of some other session
        _write(directory, name, data)
    elif case == "named after its routing id":  # chosen by the peer: it could pose as another
        name = f"{bulk.sender_prefix(peer.session)}{1:016x}"
        _write(directory, name, data)
    elif case == "symlink":
        target = tmp_path / "elsewhere"
        target.write_bytes(data)
        os.symlink(target, os.path.join(directory, name))
    elif case == "readable by others":
        _write(directory, name, data, 0o644)
    elif case == "wrong size":
        _write(directory, name, data)
        size += 1
    elif case == "bad name":
        name = "../" + name[3:]
    peer.send(peer.bulk_message(name, size))
    with pytest.raises(ChannelClosed, match="could not be delivered"):
        channel.recv(timeout=5)
    assert not os.path.exists(tmp_path / "unpickled")
    assert _echo_ok(client, server, b"others unaffected")
    peer.close()
    for leftover in os.listdir(directory):
        if leftover.startswith(("abab", bulk.sender_prefix(peer.session))):
            os.unlink(os.path.join(directory, leftover))


def test_an_unsigned_bulk_reference_is_dropped_before_its_file_is_touched(keyed):
    transport, listener, client, server = keyed
    peer = _BulkPeer(listener.address, KEY)
    peer.hello()
    channel = listener.accept(timeout=5)
    name = _own_name(peer)
    path = _write(peer.offer["d"], name, b"x" * 100)
    peer.send(peer.bulk_message(name, 100, key=b"not the key"))
    assert _until(lambda: listener.stats.get("bad signature", 0) == 1)
    assert os.path.exists(path)  # neither read nor removed
    peer.seq -= 1  # the dropped message took no number
    peer.send(peer.bulk_message(name, 100))  # the same, signed: delivered
    assert channel.recv(timeout=5) == [b"header", b"x" * 100]
    assert not os.path.exists(path)
    peer.close()


def test_a_bulk_offer_is_taken_only_for_a_private_directory_of_this_user(tmp_path, monkeypatch):
    good = bulk.BulkDir()
    session = os.urandom(16)
    assert bulk.BulkWriter.accept(good.offer(), session) is not None
    assert bulk.BulkWriter.accept(dict(good.offer(), n=os.urandom(16)), session) is None  # not the same dir
    assert bulk.BulkWriter.accept({"d": str(tmp_path / "absent"), "n": good.nonce}, session) is None
    os.chmod(good.path, 0o755)
    assert bulk.BulkWriter.accept(good.offer(), session) is None  # others could read it
    os.chmod(good.path, 0o700)
    link = tmp_path / "link"
    os.symlink(good.path, link)
    assert bulk.BulkWriter.accept({"d": str(link), "n": good.nonce}, session) is None
    monkeypatch.setenv("SKPROCESSING_ZMQ_SHM", "0")
    assert bulk.BulkWriter.accept(good.offer(), session) is None  # turned off
    from skprocessing.transports.zmq.listener import remove_dir
    remove_dir(good.path)


class _BigTeller(Skprocess):
    def __init__(self):
        self.process_config.runs = 1

    def __run__(self):
        for i in range(5):
            self.tell(bytes([i]) * BIG)


@pytest.mark.timeout(60)
def test_large_messages_wait_in_their_files_until_read_after_the_sender_is_gone():
    teller = _BigTeller()
    teller.start(transport="zmq://")
    assert wait_gone(teller._sk.handle.pid, 30)
    time.sleep(0.5)  # the sender's session has ended here: its unread files must stay
    got = [teller.listen(10) for _ in range(5)]
    assert [(len(m), m[:1]) for m in got] == [(BIG, bytes([i])) for i in range(5)]
    assert teller.result.timeout(30)() is None
