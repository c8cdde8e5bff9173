"""suitkaise 0.4.14's cucumber pages on reconnection (quick-start.md "Live resources become
Reconnector objects", how-to-use.md "reconnect_all() and Reconnectors", how-it-works.md
"Reconnectors"), as written there; the one import change is
`from suitkaise import cucumber` -> `import skprocessing as cucumber` (the placeholder
classes live in `skprocessing.serializers.cerial`)."""

from __future__ import annotations

import multiprocessing
import re
import socket
import sqlite3
import subprocess
import sys
import threading

import pytest

import skprocessing as cucumber
from skprocessing import Share, Skprocess, autoreconnect
from skprocessing.serializers.cerial import (DbReconnector, MatchReconnector, PipeReconnector,
                                             Reconnector, SocketReconnector, SubprocessReconnector,
                                             ThreadReconnector)

pytestmark = pytest.mark.timeout(60)


# == quick-start.md ============================================================================

def test_live_resources_reconnect():
    conn = sqlite3.connect(":memory:")
    conn.execute("create table t (v)")
    conn.execute("insert into t values (7)")
    data = cucumber.serialize(conn)
    restored = cucumber.deserialize(data)
    # suitkaise gives a Reconnector here; an in-memory database has nowhere to reconnect
    # to, so ours lands live, with its contents. reconnect_all() leaves it as it is.
    restored = cucumber.reconnect_all(restored)
    assert isinstance(restored, sqlite3.Connection)
    assert restored.execute("select v from t").fetchall() == [(7,)]


def test_a_file_database_comes_back_as_a_reconnector(tmp_path):
    path = str(tmp_path / "x.db")
    conn = sqlite3.connect(path)
    restored = cucumber.deserialize(cucumber.serialize(conn))
    assert isinstance(restored, DbReconnector)  # a Reconnector, not a live connection yet
    live = cucumber.reconnect_all(restored)  # now it's a live sqlite3 connection again
    assert isinstance(live, sqlite3.Connection)
    # Reconnectors that don't require authentication lazily reconnect on first access:
    lazy = cucumber.deserialize(cucumber.serialize(conn))
    assert lazy.execute("select 1").fetchone() == (1,)


def test_connections_that_require_passwords():
    # No PostgreSQL here (nor psycopg2): the placeholder is what serializing a psycopg2
    # connection gives; reconnecting fails and, as documented, reconnect_all() swallows it.
    restored = {"db": DbReconnector("psycopg2", "psycopg2.extensions", "connection",
                                    {"host": "127.0.0.1", "port": 9, "dbname": "x",
                                     "password": "never stored"})}
    assert "password" not in restored["db"].details  # secrets are not kept
    cucumber.reconnect_all(restored, **{
        "psycopg2.Connection": {"*": "my_password"}
    })
    assert isinstance(restored["db"], DbReconnector) and restored["db"].reconnect_error


# == how-to-use.md: **auth ==================================================================

class Recording(Reconnector):
    """A placeholder of the user's own that records the credentials it was given."""

    def __init__(self, key):
        self.auth_keys = (key,)

    def _connect(self, auth):
        return ("live", self.auth_keys[0], auth)


class Holder:
    def __init__(self):
        self.main_db = Recording("psycopg2.Connection")
        self.analytics_db = Recording("psycopg2.Connection")
        self.cache = Recording("redis.Redis")
        self.worker = threading.Thread(target=lambda: None)


def test_auth_defaults_and_attribute_overrides():
    auth = {
        "psycopg2.Connection": {
            "*": "default_psycopg2_password",
            "analytics_db": "analytics_password"  # used for obj.analytics_db specifically
        },
        "redis.Redis": {
            "*": "default_redis_password"
        }
    }
    data = cucumber.serialize(Holder())
    restored = cucumber.deserialize(data)
    assert isinstance(restored.worker, ThreadReconnector)
    restored = cucumber.reconnect_all(restored, start_threads=True, **auth)
    assert restored.main_db == ("live", "psycopg2.Connection", "default_psycopg2_password")
    assert restored.analytics_db == ("live", "psycopg2.Connection", "analytics_password")
    assert restored.cache == ("live", "redis.Redis", "default_redis_password")
    assert isinstance(restored.worker, threading.Thread) and restored.worker.ident is not None
    restored.worker.join(10)


def test_a_dict_key_counts_as_the_attribute_name_and_no_auth_still_reconnects():
    restored = {"analytics_db": Recording("psycopg2.Connection"), "other": Recording("x.Y")}
    cucumber.reconnect_all(restored, **{"psycopg2.Connection": {"*": "d", "analytics_db": "a"}})
    assert restored["analytics_db"] == ("live", "psycopg2.Connection", "a")
    assert restored["other"] == ("live", "x.Y", None)  # reconnect() called with no credentials


# == how-it-works.md: each Reconnector ========================================================

def test_socket_reconnector():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(10)
    client = socket.create_connection(server.getsockname(), timeout=5)
    first, _ = server.accept()
    try:
        placeholder = cucumber.deserialize(cucumber.serialize(client))
        assert isinstance(placeholder, SocketReconnector)
        assert (placeholder.family, placeholder.type) == (socket.AF_INET, socket.SOCK_STREAM)
        assert placeholder.peer == server.getsockname() and placeholder.timeout == 5
        fresh = placeholder.reconnect()  # a fresh socket, connected to the same peer
        try:
            accepted, _ = server.accept()
            accepted.settimeout(10)
            fresh.sendall(b"hi")
            assert accepted.recv(2) == b"hi"
            accepted.close()
        finally:
            fresh.close()
    finally:
        first.close()
        client.close()
        server.close()


def test_thread_reconnector():
    seen = []
    thread = threading.Thread(target=seen.append, args=("ran",), name="runner", daemon=True)
    placeholder = cucumber.deserialize(cucumber.serialize(thread))
    assert isinstance(placeholder, ThreadReconnector)
    assert (placeholder.name, placeholder.daemon, placeholder.args) == ("runner", True, ("ran",))
    unstarted = placeholder.reconnect()
    assert isinstance(unstarted, threading.Thread) and unstarted.ident is None  # not started
    again = cucumber.deserialize(cucumber.serialize(thread))
    started = again.reconnect(start=True)
    started.join(10)
    assert started.name == "runner" and started.daemon


def test_pipe_reconnector():
    a, b = multiprocessing.Pipe()
    placeholder = cucumber.deserialize(cucumber.serialize(a))
    assert isinstance(placeholder, PipeReconnector)
    assert placeholder.duplex and not placeholder.has_endpoint
    end = placeholder.reconnect()  # one end of a new pipe
    other = placeholder.peer()  # the other end of it
    end.send({"x": 1})
    assert other.recv() == {"x": 1}
    one, two = placeholder.pair()  # both ends of a new pipe, ready for use
    two.send("back")
    assert one.recv() == "back"
    for conn in (a, b, end, other, one, two):
        conn.close()
    reader, writer = multiprocessing.Pipe(duplex=False)
    read_end = cucumber.deserialize(cucumber.serialize(reader))
    write_end = cucumber.deserialize(cucumber.serialize(writer))
    assert (read_end.has_endpoint, read_end.endpoint, write_end.endpoint) == (True, "read", "write")
    new_reader = read_end.reconnect()
    read_end.peer().send("one way")
    assert new_reader.recv() == "one way" and not new_reader.writable
    new_writer = write_end.reconnect()
    new_writer.send("the other way")
    assert write_end.peer().recv() == "the other way"
    reader.close()
    writer.close()


def test_a_pipe_end_never_travels_by_descriptor():
    # Sent into another process, an end is a placeholder there (its descriptor would mean
    # nothing, or another file), never a Connection on a wrong descriptor.
    a, b = multiprocessing.Pipe()

    class Probe(Skprocess):
        def __init__(self, conn):
            self.conn = conn
            self.process_config.runs = 1

        def __run__(self):
            pass

        def __result__(self):
            return type(self.conn).__name__

    assert Probe(a).run() == "PipeReconnector"
    a.close()
    b.close()


def test_subprocess_reconnector():
    process = subprocess.Popen([sys.executable, "-c", "print('hi')"], stdout=subprocess.PIPE)
    process.communicate(timeout=30)
    placeholder = cucumber.deserialize(cucumber.serialize(process))
    assert isinstance(placeholder, SubprocessReconnector)
    # Metadata without starting a process:
    assert placeholder.snapshot.pid == process.pid and placeholder.snapshot.returncode == 0
    new = placeholder.reconnect(stdout=subprocess.PIPE)  # a new process, same args
    out, _ = new.communicate(timeout=30)
    assert out.strip() == b"hi" and new.pid != process.pid


def test_match_reconnector():
    match = re.compile(r"(?P<first>\w+) (\w+)").search("say hello world", 1)
    placeholder = cucumber.deserialize(cucumber.serialize(match))
    assert isinstance(placeholder, MatchReconnector)
    assert placeholder.matched_span == match.span() and placeholder.string == "say hello world"
    again = placeholder.reconnect()
    assert isinstance(again, re.Match)
    assert (again.span(), again.groups(), again.groupdict()) == (match.span(), match.groups(),
                                                                   match.groupdict())
    lazy = cucumber.deserialize(cucumber.serialize(match))
    assert lazy.group("first") == match.group("first") == "ay"  # no auth: reconnects on first use


# == the three levels of control ===============================================================

@autoreconnect(start_threads=True, **{"psycopg2.Connection": {"*": "pw"}})
class MyProcess(Skprocess):
    def __init__(self):
        self.db = Recording("psycopg2.Connection")
        self.process_config.runs = 1

    def __run__(self):
        pass

    def __result__(self):
        return self.db


def test_three_levels_of_control():
    holder = cucumber.deserialize(cucumber.serialize(Holder()))
    assert holder.main_db.reconnect("by hand") == ("live", "psycopg2.Connection", "by hand")  # 1
    cucumber.reconnect_all(holder, **{"psycopg2.Connection": {"*": "all"}})  # 2
    assert holder.analytics_db == ("live", "psycopg2.Connection", "all")
    assert MyProcess().run() == ("live", "psycopg2.Connection", "pw")  # 3


def test_share_reconnect_all_returns_live_objects(tmp_path):
    with Share() as share:
        share.db = sqlite3.connect(str(tmp_path / "s.db"))
        share.pipe_end = multiprocessing.Pipe()[0]
        reconnected = share.reconnect_all()
        assert isinstance(reconnected["db"], sqlite3.Connection)
        assert type(reconnected["pipe_end"]).__name__ == "Connection"
