"""A port other hosts reach is guarded by its key alone, so a key anyone could guess
(" ", "a", a short word, one character repeated) is refused for a non-loopback bind, with
the reason and how to make a good one; on loopback any key still works. The binds are
refused before any socket is opened, so nothing listens beyond loopback here."""

from __future__ import annotations

import pytest

from skprocessing import Pool
from skprocessing.errors import TransportRefused
from skprocessing.transports.zmq import ZmqTransport
from skprocessing.transports.zmq.security import check_reach, generate_key

WEAK = ["a", "secret", b"fifteen-bytes!!", "x" * 40, "abababababababababab"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("key", WEAK, ids=["a", "word", "15 bytes", "one char", "pattern"])
@pytest.mark.parametrize("address", ["tcp://0.0.0.0:0", "tcp://*:0"])
def test_a_weak_key_is_refused_for_a_bind_beyond_loopback(key, address):
    with pytest.raises(TransportRefused) as info:
        ZmqTransport(address, key=key).listen()
    text = str(info.value)
    assert "refusing to bind" in text and "guess" in text
    assert "secrets.token_hex(32)" in text  # and how to make a good one
    assert ("bytes long" in text) or ("different characters" in text)


@pytest.mark.timeout(60)
def test_a_pool_with_a_weak_key_beyond_loopback_is_refused_before_it_starts():
    with pytest.raises(TransportRefused, match="refusing to bind"):
        Pool(1, transport="tcp://0.0.0.0:0", key="a")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("key", ["a", " x ", "short"])
def test_loopback_accepts_any_key(key):
    transport = ZmqTransport("tcp://127.0.0.1", key=key)
    listener = transport.listen()
    client = transport.connect(listener.address, timeout=5)
    server = listener.accept(timeout=5)
    client.send([b"hi"])
    assert server.recv(timeout=5) == [b"hi"]
    client.close(), server.close(), listener.close(), transport.close()


def test_a_generated_key_may_guard_every_interface():
    check_reach("tcp://0.0.0.0:0", generate_key(), "bind")  # no error (and no socket opened)
    check_reach("tcp://0.0.0.0:0", b"a long pass phrase of many words", "bind")
