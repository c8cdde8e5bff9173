"""The worst possible object: every supported kind nested together, with cycles and shared
references, through the default serializer (and through a real child process)."""

from __future__ import annotations

import collections
import contextvars
import io
import logging
import queue
import re
import sqlite3
import threading
import weakref

import pytest

from skprocessing import Skprocess
from skprocessing.serializers import get_serializer
from skprocessing.serializers.cerial import (DbReconnector, MatchReconnector, ThreadReconnector,
                                             deserialize, reconnect_all, serialize)

from .catalogue import ENTRIES, Pair, Record


class Holder:
    __slots__ = ("inner", "__dict__", "__weakref__")


def worst(tmp_path) -> Holder:
    obj = Holder()
    shared = {"shared": [1, 2, 3]}
    lock = threading.RLock()
    db = sqlite3.connect(":memory:")
    db.execute("create table t (x)")
    db.execute("insert into t values (1)")
    obj.inner = obj  # a slot that points back at the object
    obj.me = obj
    obj.catalogue = {entry.name: entry.make() for entry in ENTRIES}
    obj.a, obj.b = shared, shared
    obj.cycle = [obj, shared]
    obj.cycle.append(obj.cycle)
    obj.lock, obj.condition = lock, threading.Condition(lock)
    obj.queue = queue.Queue()
    obj.queue.put(obj)  # a queue holding its owner
    obj.logger = logging.getLogger("skprocessing.tests.worst")
    obj.memory_db, obj.cursor = db, db.cursor()
    obj.file_db = sqlite3.connect(str(tmp_path / "w.db"))
    obj.file = open(tmp_path / "w.txt", "w+")
    obj.thread = threading.Thread(target=lambda: None, name="worst-thread")
    obj.method = obj.__class__.__init__
    obj.closure = (lambda me: (lambda: me))(obj)
    obj.ref = weakref.ref(obj)
    obj.match = re.search("o+", "foooo")
    obj.gen = (x for x in [obj, 1])
    obj.var = contextvars.ContextVar("worst", default=obj)
    obj.deque = collections.deque([obj])
    obj.misc = (Pair(obj, shared), Record("r", [1]), io.StringIO("s"))
    return obj


def check(restored: Holder) -> None:
    assert restored.me is restored and restored.inner is restored
    assert restored.a is restored.b is restored.cycle[1]
    assert restored.cycle[0] is restored and restored.cycle[2] is restored.cycle
    assert restored.condition._lock is restored.lock
    assert restored.queue.get_nowait() is restored
    assert restored.memory_db.execute("select x from t").fetchall() == [(1,)]
    assert restored.cursor.connection is restored.memory_db
    assert restored.closure() is restored and restored.ref() is restored
    assert next(restored.gen) is restored
    assert restored.deque[0] is restored and restored.misc[0].left is restored
    assert restored.var.get() is restored
    assert restored.catalogue["lambda"](2) == 6
    for entry in ENTRIES:
        if entry.name not in ("generator",):
            entry.check(entry.make(), restored.catalogue[entry.name])


def test_the_worst_object_round_trips_through_cerial(tmp_path):
    obj = worst(tmp_path)
    restored = deserialize(serialize(obj))
    check(restored)
    assert isinstance(restored.file_db, DbReconnector)
    assert isinstance(restored.thread, ThreadReconnector)
    assert isinstance(restored.match, MatchReconnector)
    reconnect_all(restored)
    assert isinstance(restored.file_db, sqlite3.Connection)
    assert isinstance(restored.thread, threading.Thread)
    assert restored.match.group() == "oooo"
    restored.file.close()
    obj.file.close()


def test_the_worst_object_through_the_plugin_frames(tmp_path):
    serializer = get_serializer()  # the default
    assert serializer.name == "cerial"
    obj = worst(tmp_path)
    check(serializer.loads([bytes(f) for f in serializer.dumps(obj)]))
    obj.file.close()


class Carrier(Skprocess):
    def __init__(self, payload):
        self.process_config.runs = 1
        self.payload = payload

    def __run__(self):
        pass

    def __result__(self):
        check(self.payload)
        return "checked in the child"


@pytest.mark.timeout(60)
def test_the_worst_object_survives_a_trip_to_a_real_child(tmp_path):
    obj = worst(tmp_path)
    assert Carrier(obj).run() == "checked in the child"
    obj.file.close()
