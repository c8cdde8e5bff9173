"""Serializers under test and the kinds of objects each declares it supports."""

from __future__ import annotations

import pickle

import pytest

from skprocessing.serializers import get_serializer, register_serializer

# A user-registered serializer runs the same suite: two functions, nothing else.
register_serializer("pickle4", lambda obj: pickle.dumps(obj, protocol=4), pickle.loads)

SUPPORTS: dict[str, set[str]] = {
    "cerial": {"plain", "tuple", "stdlib", "by_value", "live"},
    "cloudpickle": {"plain", "tuple", "stdlib", "by_value"},
    "pickle": {"plain", "tuple", "stdlib"},
    "pickle4": {"plain", "tuple", "stdlib"},
    "msgpack": {"plain", "tuple"},
}


@pytest.fixture(params=sorted(SUPPORTS))
def serializer(request):
    return get_serializer(request.param)


def round_trip(serializer, obj):
    frames = serializer.dumps(obj)
    # What a transport delivers: each frame as its own bytes.
    return serializer.loads([bytes(frame) for frame in frames])
