"""The plugins and the registry: msgpack's plain-data rule, pickle's out-of-band frames,
registration by functions or class, choice by name, object and environment variable."""

from __future__ import annotations

import json
import pickle
import tracemalloc

import pytest

from skprocessing.errors import DeserializationError, SerializationError
from skprocessing.serializers import (Codec, Serializer, available_serializers, get_serializer,
                                      is_builtin, register_serializer)
from skprocessing.serializers.msgpack import MsgpackSerializer
from skprocessing.serializers.registry import DEFAULT, ENV_VAR


def test_the_default_is_cerial_and_every_builtin_is_listed():
    assert DEFAULT == "cerial" and get_serializer().name == "cerial"
    for name in ("cerial", "cloudpickle", "pickle", "msgpack"):
        assert name in available_serializers() and is_builtin(name)


def test_the_environment_variable_picks_the_default(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "msgpack")
    assert get_serializer().name == "msgpack"
    assert Codec().serializer.name == "msgpack"


def test_msgpack_keeps_tuples_unless_told_otherwise():
    data = {"t": (1, (2, 3)), (4, 5): "tuple key"}
    keep = MsgpackSerializer()
    assert keep.loads(keep.dumps(data)) == data
    as_list = MsgpackSerializer(tuples="list")
    assert as_list.loads(as_list.dumps((1, 2))) == [1, 2]
    with pytest.raises(SerializationError, match="plain data only"):
        MsgpackSerializer(tuples="error").dumps([(1, 2)])


@pytest.mark.parametrize("value", [{1, 2}, object(), 2**70, lambda: 1, pickle.PickleBuffer(b"")])
def test_msgpack_refuses_anything_but_plain_data(value):
    with pytest.raises(SerializationError):
        MsgpackSerializer().dumps({"k": [value]})


def test_msgpack_names_the_part_it_refused():
    with pytest.raises(SerializationError) as info:
        MsgpackSerializer().dumps({"ok": 1, "bad": [1, {2}]})
    assert info.value.path == "dict['bad'][1]" and info.value.type_name == "builtins.set"


@pytest.mark.parametrize("name", ["pickle", "cloudpickle", "cerial"])
def test_a_100_mb_payload_is_not_copied_into_the_pickle(name):
    serializer = get_serializer(name)
    payload = bytes(100 * 1024 * 1024)
    tracemalloc.start()
    try:
        frames = serializer.dumps(("envelope", payload, {"meta": 1}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024, f"{peak:,} bytes allocated to serialize"
    assert len(frames) == 2 and len(frames[0]) < 1024
    assert memoryview(frames[1]).obj is payload  # the buffer itself, not a copy
    restored = serializer.loads([bytes(frames[0]), payload])
    assert restored[1] is payload and restored[2] == {"meta": 1}


def test_large_bytearray_and_memoryview_keep_their_types():
    serializer = get_serializer("pickle")
    for value in (bytearray(100_000), memoryview(bytes(100_000))):
        frames = serializer.dumps([value])
        assert len(frames) == 2
        assert type(serializer.loads([bytes(f) for f in frames])[0]) is type(value)


def test_register_two_functions():
    serializer = register_serializer("json-test", lambda o: json.dumps(o).encode(), json.loads)
    assert get_serializer("json-test") is serializer
    assert serializer.loads(serializer.dumps({"a": [1]})) == {"a": [1]}
    with pytest.raises(SerializationError):
        serializer.dumps({"a": object()})
    with pytest.raises(DeserializationError):
        serializer.loads([b"{not json"])


def test_register_a_class_and_use_it_by_object_and_by_name():
    class Reversed:
        name = "reversed-test"

        def dumps(self, obj):
            return pickle.dumps(obj)[::-1]

        def loads(self, data):
            return pickle.loads(bytes(data)[::-1])

    serializer = register_serializer(Reversed)
    codec = Codec(serializer)
    assert codec.decode(codec.encode(3, [1, "x"])) == (3, [1, "x"])
    assert Codec("reversed-test").serializer is serializer
    # a process that never registered it gets it by value through the codec token
    name, blob = codec.token()
    assert name == "reversed-test" and blob is not None
    assert Codec.from_token((name, blob)).decode(codec.encode(1, "ok")) == (1, "ok")


def test_a_serializer_subclass_must_implement_both_methods():
    class Half(Serializer):
        name = "half"

        def dumps(self, obj):
            return [b""]
    with pytest.raises(TypeError):
        Half()
