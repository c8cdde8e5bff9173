"""Choosing transports and serializers by name, object and environment; child stdio."""

from __future__ import annotations

import os

import pytest

from skprocessing import Skprocess, get_serializer, get_transport, register_transport
from skprocessing.transports.local import LocalTransport

pytestmark = pytest.mark.timeout(60)


class Where(Skprocess):
    def __init__(self):
        self.process_config.runs = 1

    def __run__(self):
        print("hello from the child", flush=True)

    def __result__(self):
        return os.getcwd(), os.getpid()


class CountingTransport(LocalTransport):
    """A user's transport: the local one, counting the processes it starts."""

    started = 0

    def start(self, entry, *args):
        CountingTransport.started += 1
        return super().start(entry, *args)


def test_a_registered_transport_is_chosen_by_url():
    register_transport("counting", lambda url: CountingTransport(url))
    before = CountingTransport.started
    process = Where()
    process.start(transport="counting://")
    cwd, pid = process.result()
    assert CountingTransport.started == before + 1
    assert pid != os.getpid()


def test_unknown_transport_and_serializer_names_list_the_known_ones():
    with pytest.raises(ValueError, match="known schemes: .*local"):
        get_transport("carrier-pigeon://coop")
    with pytest.raises(ValueError, match="known: .*pickle"):
        get_serializer("no-such-format")


def test_transport_from_environment(monkeypatch):
    register_transport("counting", lambda url: CountingTransport(url))
    monkeypatch.setenv("SKPROCESSING_TRANSPORT", "counting://")
    assert isinstance(get_transport(), CountingTransport)


def test_serializer_per_process_and_from_environment(monkeypatch):
    process = Where()
    process.start(serializer="pickle")
    assert process._sk.codec.serializer.name == "pickle"
    process.result()
    monkeypatch.setenv("SKPROCESSING_SERIALIZER", "pickle")
    assert get_serializer().name == "pickle"


def test_user_serializer_travels_to_the_child():
    import pickle

    calls = []

    class Tagged:
        name = "tagged"

        def dumps(self, obj):
            calls.append("dumps")
            return b"T" + pickle.dumps(obj)

        def loads(self, data):
            assert bytes(data[:1]) == b"T", "not our format"
            return pickle.loads(data[1:])

    from skprocessing import register_serializer
    register_serializer(Tagged)
    process = Where()
    process.start(serializer="tagged")
    cwd, _ = process.result()
    assert cwd == os.getcwd() and calls == ["dumps"]


def test_child_runs_in_the_parents_current_directory_and_prints_to_its_stdout(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cwd, _ = Where().run()
    assert cwd == str(tmp_path)
    assert "hello from the child" in capfd.readouterr().out


def test_registering_local_replaces_the_default_backend():
    from skprocessing.transports import _schemes
    saved = _schemes["local"]
    try:
        register_transport("local", lambda url: CountingTransport(url))
        assert isinstance(get_transport(), CountingTransport)
        assert isinstance(get_transport("local://"), CountingTransport)
    finally:
        register_transport("local", saved)
    assert type(get_transport()) is LocalTransport
