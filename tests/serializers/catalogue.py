"""One object catalogue for every serializer, grouped by kind.

A serializer declares the kinds it supports (`SUPPORTS` in `conftest.py`); the conformance
suite round-trips every object of those kinds and checks that the rest are refused with a
`SerializationError` (or round-trip anyway), never anything worse.

    plain     None, bool, int, float, str, bytes, list, dict (msgpack's whole world)
    tuple     tuples, nested and as dict keys
    stdlib    what the stdlib pickler carries: sets, datetimes, Decimal, deque, namedtuple,
              dataclass, enum, bytearray, big buffers, re.Pattern, StringIO/BytesIO
    by_value  lambdas, closures, local functions and classes (cloudpickle's addition)
    live      locks, events, queues, loggers, generators, sqlite, ... (cerial's addition)
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import io
import logging
import queue
import re
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, NamedTuple


class Colour(enum.Enum):
    RED = 1
    BLUE = 2


class Pair(NamedTuple):
    left: Any
    right: Any


@dataclasses.dataclass
class Record:
    name: str
    values: list[int]


@dataclasses.dataclass
class Entry:
    kind: str
    name: str
    make: Callable[[], Any]
    check: Callable[[Any, Any], None]


def same(original: Any, restored: Any) -> None:
    assert type(restored) is type(original)
    assert restored == original


def holds(predicate: Callable[[Any, Any], bool]) -> Callable[[Any, Any], None]:
    """A check that asserts `predicate(original, restored)`."""
    def check(original: Any, restored: Any) -> None:
        assert predicate(original, restored)
    return check


def _local_class_instance() -> Any:
    class Local:
        def __init__(self, x):
            self.x = x

        def double(self):
            return self.x * 2
    return Local(21)


def _closure() -> Callable[[int], int]:
    offset = 10

    def add(value):
        return value + offset
    return add


def _calls(*args: Any) -> Callable[[Any, Any], None]:
    def check(original, restored):
        assert restored(*args) == original(*args)
    return check


def _memory_db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("create table t (x)")
    db.executemany("insert into t values (?)", [(1,), (2,)])
    db.commit()
    return db


def _full_queue() -> queue.Queue:
    q: queue.Queue = queue.Queue(maxsize=5)
    for item in ("a", 1, (2, 3)):
        q.put(item)
    return q


def _generator() -> Any:
    gen = (n * n for n in range(5))
    next(gen)
    return gen


def _set_event() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


def _check_lock(original, restored):
    assert type(restored) is type(original)
    assert restored.acquire(timeout=1)
    restored.release()


def _check_queue(original, restored):
    assert type(restored) is type(original) and restored.maxsize == original.maxsize
    assert [restored.get_nowait() for _ in range(3)] == ["a", 1, (2, 3)]


def _check_db(original, restored):
    assert restored.execute("select x from t order by x").fetchall() == [(1,), (2,)]


def _check_logger(original, restored):
    assert restored.name == original.name and restored.level == original.level


def _check_io(original, restored):
    assert type(restored) is type(original)
    assert restored.getvalue() == original.getvalue() and restored.tell() == original.tell()


def _string_io() -> io.StringIO:
    buffer = io.StringIO("hello world")
    buffer.seek(6)
    return buffer


def _leveled_logger() -> logging.Logger:
    logger = logging.getLogger("skprocessing.tests.catalogue")
    logger.setLevel(logging.WARNING)
    return logger


ENTRIES: list[Entry] = [
    Entry("plain", "none", lambda: None, holds(lambda o, r: r is None)),
    Entry("plain", "bools", lambda: [True, False], same),
    Entry("plain", "ints", lambda: [0, -1, 2**62, -(2**63)], same),
    Entry("plain", "floats", lambda: [0.5, -1e300, float("inf")], same),
    Entry("plain", "str", lambda: "héllo, wörld \u2603", same),
    Entry("plain", "bytes", lambda: b"\x00\x01binary\xff", same),
    Entry("plain", "nested", lambda: {"a": [1, {"b": [None, "c"]}], "d": {}}, same),
    Entry("plain", "int-keyed dict", lambda: {1: "one", 2: "two"}, same),
    Entry("plain", "dict[str,int] x1000", lambda: {f"k{i}": i for i in range(1000)}, same),
    Entry("tuple", "tuple", lambda: (1, "two", 3.0), same),
    Entry("tuple", "nested tuples", lambda: [(1, (2, (3,))), {"t": ()}], same),
    Entry("tuple", "tuple keys", lambda: {(1, 2): "a", (3,): "b"}, same),
    Entry("stdlib", "big int", lambda: 2**200, same),
    Entry("stdlib", "sets", lambda: [{1, 2}, frozenset({"a"})], same),
    Entry("stdlib", "datetime", lambda: datetime.datetime(2026, 11, 27, 19, 0), same),
    Entry("stdlib", "decimal", lambda: decimal.Decimal("1.10"), same),
    Entry("stdlib", "deque", lambda: collections.deque([1, 2, 3], maxlen=5), same),
    Entry("stdlib", "namedtuple", lambda: Pair(1, "x"), same),
    Entry("stdlib", "dataclass", lambda: Record("r", [1, 2]), same),
    Entry("stdlib", "enum", lambda: Colour.BLUE, holds(lambda o, r: r is o)),
    Entry("stdlib", "bytearray", lambda: bytearray(b"mutable"), same),
    Entry("stdlib", "large bytes", lambda: bytes(range(256)) * 1024, same),
    Entry("stdlib", "large bytearray", lambda: bytearray(200_000), same),
    Entry("stdlib", "regex pattern", lambda: re.compile(r"a+b", re.I), same),
    Entry("stdlib", "StringIO", _string_io, _check_io),
    Entry("stdlib", "BytesIO", lambda: io.BytesIO(b"bytes"), _check_io),
    Entry("by_value", "lambda", lambda: (lambda x: x * 3), _calls(4)),
    Entry("by_value", "closure", _closure, _calls(5)),
    Entry("by_value", "local class instance", _local_class_instance,
          holds(lambda o, r: r.double() == 42)),
    Entry("live", "lock", threading.Lock, _check_lock),
    Entry("live", "rlock", threading.RLock, _check_lock),
    Entry("live", "event (set)", _set_event, holds(lambda o, r: r.is_set())),
    Entry("live", "semaphore", lambda: threading.Semaphore(2),
          holds(lambda o, r: r._value == 2)),
    Entry("live", "queue with items", _full_queue, _check_queue),
    Entry("live", "logger", _leveled_logger, _check_logger),
    Entry("live", "generator", _generator,
          holds(lambda o, r: list(r) == [1, 4, 9, 16])),
    Entry("live", "in-memory sqlite", _memory_db, _check_db),
    Entry("live", "regex match", lambda: re.search(r"b+", "abbbc"),
          holds(lambda o, r: r.group() == "bbb")),
]
