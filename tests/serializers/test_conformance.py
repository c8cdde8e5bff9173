"""Every serializer over the same catalogue: each round-trips what it declares it supports
and refuses the rest cleanly."""

from __future__ import annotations

import pytest

from skprocessing.errors import SerializationError

from .catalogue import ENTRIES
from .conftest import SUPPORTS, round_trip


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e.kind}:{e.name}")
def test_catalogue(serializer, entry):
    original = entry.make()
    if entry.kind not in SUPPORTS[serializer.name]:
        try:
            restored = round_trip(serializer, original)
        except SerializationError as exc:
            assert exc.path and exc.type_name  # refused, naming what
            return
        pytest.skip(f"{serializer.name} does not declare {entry.kind!r} "
                    f"(it happened to round-trip: {type(restored).__name__})")
    entry.check(original, round_trip(serializer, original))


def test_the_same_object_twice_stays_one_object(serializer):
    if "stdlib" not in SUPPORTS[serializer.name]:
        pytest.skip("msgpack has no object identity")
    shared = [1, 2]
    restored = round_trip(serializer, {"a": shared, "b": shared})
    assert restored["a"] is restored["b"]


def test_frames_are_byte_buffers(serializer):
    frames = serializer.dumps({"x": [1, 2, 3]})
    assert frames and all(isinstance(f, (bytes, bytearray, memoryview)) for f in frames)
