"""Bad input gets a clear error, never a crash: unserializable parts (named by path),
objects raising in `__reduce__`, truncated or tampered bytes, unknown serializers."""

from __future__ import annotations

import socket
import threading

import pytest

from skprocessing.errors import DeserializationError, SerializationError
from skprocessing.serializers import Codec, get_serializer
from skprocessing.serializers.cerial import deserialize, serialize
from tests.conftest import run_script


class Refuses:
    def __reduce__(self):
        raise RuntimeError("no pickling today")


class Conn:
    def __init__(self):
        self._sock = Refuses()


class Job:
    def __init__(self):
        self.state = {"conn": Conn(), "ok": 1}


def test_the_error_names_the_path_and_the_type(serializer):
    with pytest.raises(SerializationError) as info:
        serializer.dumps(Job())
    error = info.value
    assert error.path == "Job -> state['conn'] -> _sock", error
    assert error.type_name.endswith("Refuses")
    assert "Job -> state['conn'] -> _sock" in str(error) and "Refuses" in str(error)


def test_cerial_serialize_names_the_path_and_verbose_prints_the_walk(capsys):
    with pytest.raises(SerializationError, match=r"Job -> state\['conn'\] -> _sock"):
        serialize(Job(), verbose=True)
    assert "state['conn']: fails" in capsys.readouterr().err
    with pytest.raises(SerializationError, match="Traceback"):
        serialize(Job(), debug=True)


def test_a_closure_variable_is_named():
    bad = Refuses()

    def uses_it():
        return bad
    with pytest.raises(SerializationError, match=r"dict\['fn'\] -> <closure bad>"):
        serialize({"fn": uses_it})


def test_an_object_raising_in_reduce_is_a_serialization_error(serializer):
    with pytest.raises(SerializationError, match="no pickling today|plain data only"):
        serializer.dumps([1, Refuses()])


def test_cerial_refuses_an_endless_generator_clearly(monkeypatch):
    from skprocessing.serializers.cerial import _python
    monkeypatch.setattr(_python, "GENERATOR_LIMIT", 100)

    def endless():
        while True:
            yield 1
    with pytest.raises(SerializationError, match="endless"):
        serialize(endless())


@pytest.mark.parametrize("data", [b"", b"\x80", b"not a pickle", b"\x80\x05\x95garbage"])
def test_garbage_bytes_are_a_deserialization_error(data):
    with pytest.raises(DeserializationError):
        deserialize(data)


def test_every_truncation_is_a_deserialization_error(serializer):
    frames = serializer.dumps({"a": [1, 2.5, "three", (4,)], "b": b"x" * 100})
    head = bytes(frames[0])
    for cut in range(len(head)):
        with pytest.raises(DeserializationError):
            serializer.loads([head[:cut], *frames[1:]])


def test_an_unknown_serializer_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown serializer 'nope'.*cerial"):
        get_serializer("nope")


def test_a_receiver_refuses_a_serializer_it_was_not_told_to_accept():
    sender = Codec("pickle")
    frames = sender.encode(1, {"x": 1})
    with pytest.raises(DeserializationError, match="refusing a message serialized with 'pickle'"):
        Codec("msgpack").decode(frames)
    assert Codec("msgpack", accept=["pickle"]).decode(frames) == (1, {"x": 1})
    assert Codec().decode(Codec().encode(2, "default")) == (2, "default")


def test_live_sockets_and_threads_refused_by_plain_pickle_are_named():
    sock = socket.socket()
    try:
        with pytest.raises(SerializationError, match=r"dict\['s'\].*socket"):
            get_serializer("pickle").dumps({"s": sock, "t": threading.Lock()})
    finally:
        sock.close()


@pytest.mark.timeout(60)
def test_tampered_and_truncated_bytes_never_crash_the_receiving_process():
    # In a process of its own, so a crash would show as an exit code, not kill pytest.
    result = run_script("""
        import random, sys, threading
        from skprocessing.errors import DeserializationError
        from skprocessing.serializers import Codec, get_serializer
        random.seed(1234)
        payload = {"ints": list(range(50)), "text": "tamper me" * 5, "t": (1.5, None),
                   "lock": threading.Lock(), "fn": lambda x: x + 1, "big": b"z" * 70000}
        refused = loaded = 0
        for name in ("cerial", "cloudpickle", "pickle", "msgpack"):
            codec = Codec(name)
            obj = payload if name == "cerial" else {"ints": payload["ints"], "t": payload["t"]}
            frames = [bytes(f) for f in codec.encode(1, obj)]
            body = frames[1]
            for trial in range(400):
                data = bytearray(body)
                if trial % 2:
                    data = data[:random.randrange(len(data))]
                else:
                    for _ in range(random.randint(1, 4)):
                        data[random.randrange(len(data))] = random.randrange(256)
                try:
                    codec.decode([frames[0], bytes(data), *frames[2:]])
                    loaded += 1
                except DeserializationError:
                    refused += 1
        print(refused, loaded)
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    refused, loaded = map(int, result.stdout.split())
    assert refused > 0 and refused + loaded == 1600


def _explode():
    raise RuntimeError("boom while loading")


class CrashesOnLoad:
    def __reduce__(self):
        return _explode, ()


def test_an_object_that_fails_while_loading_is_a_deserialization_error(serializer):
    try:
        frames = serializer.dumps({"x": CrashesOnLoad()})
    except SerializationError:
        return  # msgpack refuses it up front
    with pytest.raises(DeserializationError, match="boom while loading"):
        serializer.loads([bytes(f) for f in frames])
