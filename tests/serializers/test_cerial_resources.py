"""cerial's live resources: each comes back as an equivalent object or a Reconnector."""

from __future__ import annotations

import contextvars
import io
import logging
import mmap
import queue
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import weakref

import pytest

from skprocessing.serializers.cerial import (CursorReconnector, DbReconnector, FileReconnector,
                                             MatchReconnector, SocketReconnector,
                                             SubprocessReconnector, ThreadReconnector,
                                             deserialize, reconnect_all, serialize)


def trip(obj):
    return deserialize(serialize(obj))


def test_synchronization_primitives_come_back_fresh_with_their_state():
    lock = threading.Lock()
    with lock:  # serialized while held: arrives unlocked, or the receiver would deadlock
        restored = trip({"lock": lock, "cond": threading.Condition(lock),
                         "event": threading.Event(), "bounded": threading.BoundedSemaphore(3),
                         "barrier": threading.Barrier(2)})
    assert restored["cond"]._lock is restored["lock"]  # shared lock stays shared
    assert not restored["event"].is_set()
    assert restored["lock"].acquire(blocking=False)
    assert isinstance(restored["bounded"], threading.BoundedSemaphore)
    assert restored["barrier"].parties == 2


def test_thread_local_keeps_this_threads_values():
    local = threading.local()
    local.user = "ada"
    assert trip(local).user == "ada"


@pytest.mark.parametrize("cls", [queue.Queue, queue.LifoQueue, queue.PriorityQueue])
def test_queues_keep_their_items_in_order(cls):
    q = cls()
    for item in (3, 1, 2):
        q.put(item)
    restored = trip(q)
    expected = [q.get_nowait() for _ in range(3)]
    assert type(restored) is cls
    assert [restored.get_nowait() for _ in range(3)] == expected


def test_simple_queue_keeps_its_items_and_the_original_keeps_them_too():
    q = queue.SimpleQueue()
    q.put("a"), q.put("b")
    restored = trip(q)
    assert [restored.get_nowait(), restored.get_nowait()] == ["a", "b"]
    assert [q.get_nowait(), q.get_nowait()] == ["a", "b"]


def test_threads_become_reconnectors_and_start_on_request():
    seen = []
    thread = threading.Thread(target=seen.append, args=("ran",), name="worker", daemon=True)
    restored = trip(thread)
    assert isinstance(restored, ThreadReconnector) and restored.name == "worker"
    copy_of_seen = restored.target.__self__  # the target travelled by value, with its list
    holder = {"t": restored}
    reconnect_all(holder, start_threads=True)
    holder["t"].join(5)
    assert isinstance(holder["t"], threading.Thread) and holder["t"].daemon
    assert copy_of_seen == ["ran"] and seen == []


def test_loggers_keep_name_and_level():
    logger = logging.getLogger("skprocessing.tests.level")
    logger.setLevel(logging.ERROR)
    restored = trip(logger)
    assert restored is logger and restored.level == logging.ERROR
    root = logging.getLogger()
    level = root.level
    try:
        root.setLevel(logging.DEBUG)
        data = serialize(root)
        root.setLevel(logging.CRITICAL)
        assert deserialize(data) is root and root.level == logging.DEBUG
    finally:
        root.setLevel(level)


def test_files_reopen_at_their_position_without_truncating(tmp_path):
    path = tmp_path / "data.txt"
    with open(path, "w") as writer:
        writer.write("hello world")
        restored = trip(writer)  # flushed first: the copy sees what was written
        assert restored.mode == "r+" and restored.tell() == 11
        restored.close()
    with open(path, "rb") as reader:
        reader.seek(6)
        again = trip(reader)
        assert again.read() == b"world"
        again.close()


def test_a_file_that_cannot_be_reopened_becomes_a_file_reconnector(tmp_path):
    path = tmp_path / "gone.txt"
    with open(path, "w") as handle:
        data = serialize(handle)
    path.unlink()
    restored = deserialize(data)
    assert isinstance(restored, FileReconnector) and "No such file" in restored.reconnect_error
    assert trip(sys.stdout) is sys.stdout


def test_string_and_bytes_io_keep_contents_and_position():
    buffer = io.BytesIO(b"abcdef")
    buffer.seek(2)
    restored = trip(buffer)
    assert restored.read() == b"cdef"


def test_regex_match_reconnects_to_the_same_match():
    match = re.compile(r"(\d+)-(\d+)").search("tel 12-34 x")
    restored = trip(match)
    assert isinstance(restored, MatchReconnector) and restored.matched_groups == ("12", "34")
    assert restored.group(2) == "34"  # reconnects on first use
    assert restored.reconnect().span() == match.span()
    later = list(re.finditer(r"a", "banana"))[2]
    assert trip(later).reconnect().span() == later.span()


def test_socket_reconnects_to_its_peer():
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    try:
        restored = trip(client)
        assert isinstance(restored, SocketReconnector)
        assert restored.peer == server.getsockname()
        fresh = restored.reconnect()
        assert fresh.getpeername() == server.getsockname()
        fresh.close()
    finally:
        client.close()
        server.close()


def test_placeholders_that_need_no_secret_reconnect_on_first_use(tmp_path):
    path = str(tmp_path / "lazy.db")
    restored = trip(sqlite3.connect(path))
    assert isinstance(restored, DbReconnector)
    assert restored.execute("select 2").fetchone() == (2,)
    assert isinstance(reconnect_all([restored])[0], sqlite3.Connection)
    password_protected = DbReconnector("pymysql", "pymysql.connections", "Connection", {})
    with pytest.raises(AttributeError, match="call reconnect"):
        password_protected.cursor


def test_sqlite_file_connection_and_cursor(tmp_path):
    path = str(tmp_path / "x.db")
    db = sqlite3.connect(path)
    db.execute("create table t (x)")
    db.commit()
    restored = trip({"db": db, "cursor": db.cursor()})
    assert isinstance(restored["db"], DbReconnector)
    assert isinstance(restored["cursor"], CursorReconnector)
    reconnect_all(restored)
    assert restored["cursor"].connection is restored["db"]  # one connection, shared
    restored["db"].execute("insert into t values (7)")
    restored["db"].commit()
    assert db.execute("select x from t").fetchall() == [(7,)]


def test_in_memory_sqlite_keeps_its_contents_and_its_cursor():
    db = sqlite3.connect(":memory:")
    db.execute("create table t (x)")
    db.execute("insert into t values ('kept')")
    restored = trip({"db": db, "cursor": db.cursor()})
    assert restored["db"].execute("select x from t").fetchall() == [("kept",)]
    assert restored["cursor"].connection is restored["db"]


def test_popen_becomes_a_subprocess_reconnector():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    restored = trip(process)
    assert isinstance(restored, SubprocessReconnector)
    assert restored.snapshot.returncode == 0 and restored.snapshot.pid == process.pid
    again = restored.reconnect()
    assert again.wait(30) == 0


def test_generators_carry_their_remaining_values():
    def countdown(n):
        while n:
            yield n
            n -= 1
    gen = countdown(4)
    next(gen)
    assert list(trip(gen)) == [3, 2, 1]


def test_mmap_keeps_bytes_and_position():
    memory = mmap.mmap(-1, 16)
    memory.write(b"mapped")
    restored = trip(memory)
    assert restored[:6] == b"mapped" and restored.tell() == 6


def test_weakrefs_follow_their_referent_when_it_travels():
    class Node:
        pass
    node = Node()
    restored = trip({"node": node, "ref": weakref.ref(node)})
    assert restored["ref"]() is restored["node"]
    dead = Node()
    ref = weakref.ref(dead)
    del dead
    assert trip(ref)() is None
    cache = weakref.WeakValueDictionary({"n": node})
    both = trip((node, cache))
    assert both[1]["n"] is both[0]


def test_contextvars_keep_name_default_and_value():
    var = contextvars.ContextVar("request_id", default="none")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "abc")
    restored = ctx.run(trip, var)  # the value is set in the context that deserializes
    assert restored.name == "request_id" and ctx.run(restored.get) == "abc"
    assert contextvars.Context().run(restored.get) == "none"


def test_verbose_names_what_the_live_resource_reducers_handled(capsys):
    restored = deserialize(serialize({"lock": threading.Lock(), "n": 1}, verbose=True),
                           verbose=True)
    assert restored["n"] == 1
    assert "_thread.lock via _reduce_lock" in capsys.readouterr().err
