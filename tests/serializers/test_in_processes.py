"""The serializer chosen per Skprocess, by name, object or environment variable, carries
the object to a real child and the result back; the header names it on every message."""

from __future__ import annotations

import threading

import pytest

from skprocessing import SerializationError, Skprocess
from skprocessing.serializers import get_serializer
from tests.conftest import run_script

pytestmark = pytest.mark.timeout(60)


class Echo(Skprocess):
    def __init__(self, payload):
        self.process_config.runs = 1
        self.payload = payload

    def __run__(self):
        pass

    def __result__(self):
        return self.payload


@pytest.mark.parametrize("choice", ["cerial", "cloudpickle", "pickle", "msgpack",
                                    get_serializer("pickle")])
def test_each_serializer_carries_a_process_there_and_back(choice):
    process = Echo({"n": 1, "t": (1, 2)})
    if getattr(choice, "name", choice) == "msgpack":
        with pytest.raises(SerializationError, match="plain data only"):
            process.start(serializer=choice)  # an Skprocess is not plain data
        return
    process.start(serializer=choice)
    assert process.result() == {"n": 1, "t": (1, 2)}


def test_the_default_carries_live_resources_and_pickle_names_what_it_cannot():
    lock = threading.Lock()
    process = Echo({"lock": lock, "fn": lambda x: x * 2})
    process.start()
    result = process.result()
    assert result["fn"](21) == 42 and result["lock"].acquire(timeout=1)
    with pytest.raises(SerializationError, match=r"Echo -> payload\['lock'\]"):
        Echo({"lock": lock}).start(serializer="pickle")


def test_the_environment_variable_chooses_the_serializer_in_a_fresh_program():
    result = run_script("""
        import os
        os.environ["SKPROCESSING_SERIALIZER"] = "cloudpickle"
        from skprocessing import Skprocess
        from skprocessing.serializers import Codec
        class Echo(Skprocess):
            def __init__(self):
                self.process_config.runs = 1
            def __run__(self):
                pass
            def __result__(self):
                return Codec().serializer.name
        print(Echo().run())
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "cloudpickle"
