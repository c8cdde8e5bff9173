"""Database clients matched by dotted type name (never imported), secrets kept out of the
bytes, and `reconnect_all` with credentials by type and attribute."""

from __future__ import annotations

import sqlite3
import sys

import pytest

from skprocessing.serializers.cerial import (DbReconnector, Reconnector, deserialize,
                                             reconnect_all, register_reducer, serialize)
from skprocessing.serializers.cerial import _db

SECRET = "hunter2-very-secret"


def _fake(module: str, name: str, **attrs):
    """A class that looks like a client library's connection type, by dotted name only."""
    cls = type(name, (), {"__module__": module, "__qualname__": name})
    obj = cls()
    obj.__dict__.update(attrs)
    return obj


class _Pool:
    connection_kwargs = {"host": "cache", "port": 6379, "db": 2, "password": SECRET}


def test_client_libraries_are_never_imported_to_check():
    serialize({"x": 1, "conn": sqlite3.connect(":memory:")})
    for name in ("psycopg2", "psycopg", "pymysql", "redis", "pymongo", "sqlalchemy", "duckdb"):
        assert name not in sys.modules


def test_pymysql_by_dotted_name_without_the_password():
    conn = _fake("pymysql.connections", "Connection", host="db.local", port=3306,
                 user="app", db=b"shop", password=SECRET)
    data = serialize({"conn": conn})
    assert SECRET.encode() not in data
    restored = deserialize(data)["conn"]
    assert isinstance(restored, DbReconnector) and restored.kind == "pymysql"
    assert restored.details == {"host": "db.local", "port": 3306, "user": "app",
                                "database": "shop"}
    assert "pymysql.Connection" in restored.auth_keys


def test_redis_by_dotted_name_without_the_password():
    client = _fake("redis.client", "Redis", connection_pool=_Pool())
    data = serialize(client)
    assert SECRET.encode() not in data
    restored = deserialize(data)
    assert restored.details == {"host": "cache", "port": 6379, "db": 2, "username": None}


class _RecordingReconnector(Reconnector):
    auth_keys = ("fake.Service",)
    calls: list = []

    def _connect(self, auth):
        type(self).calls.append(auth)
        if auth == "wrong":
            raise PermissionError("bad password")
        return ("live", auth)


class Service:
    def __init__(self):
        self.main = _RecordingReconnector()
        self.analytics = _RecordingReconnector()
        self.again = self.main  # shared: reconnected once, stays shared
        self.nested = [{"deep": (1, self.analytics)}]


def test_reconnect_all_uses_attribute_then_default_credentials():
    _RecordingReconnector.calls = []
    service = deserialize(serialize(Service()))
    reconnect_all(service, **{"fake.Service": {"*": "default-pw", "analytics": "other-pw"}})
    assert service.main == ("live", "default-pw") and service.again is service.main
    assert service.analytics == ("live", "other-pw")
    assert service.nested[0]["deep"] == (1, service.analytics)  # the tuple was rebuilt in place
    assert sorted(_RecordingReconnector.calls) == ["default-pw", "other-pw"]


def test_a_failing_reconnect_leaves_the_placeholder_saying_why():
    service = deserialize(serialize(Service()))
    reconnect_all(service, **{"fake.Service": {"*": "wrong"}})
    assert isinstance(service.main, _RecordingReconnector)
    assert service.main.reconnect_error == "PermissionError: bad password"
    assert "reconnect failed" in repr(service.main)


def test_sqlite_placeholder_reconnects_with_no_auth(tmp_path):
    path = str(tmp_path / "r.db")
    restored = deserialize(serialize([sqlite3.connect(path)]))
    assert reconnect_all(restored)[0].execute("select 1").fetchone() == (1,)
    assert isinstance(reconnect_all(deserialize(serialize(sqlite3.connect(path)))),
                      sqlite3.Connection)


def test_dbreconnector_never_keeps_secret_details():
    reconnector = DbReconnector("psycopg2", "psycopg2.extensions", "connection",
                                {"host": "h", "password": SECRET, "token": SECRET})
    assert SECRET.encode() not in serialize(reconnector)


def test_register_reducer_by_dotted_name_and_hooks():
    class Special:
        def __init__(self, value):
            self.value = value
    Special.__module__, Special.__qualname__ = "somelib.things", "Special"
    register_reducer("somelib.things.Special", lambda obj: (int, (obj.value,)))
    assert deserialize(serialize([Special(7)])) == [7]
    with pytest.raises(TypeError):
        register_reducer(42, lambda obj: None)


class Hooked:
    def __init__(self, value):
        self.value = value
        self.cache = object()  # would pickle, but __serialize__ leaves it out

    def __serialize__(self):
        return {"value": self.value}

    @classmethod
    def __deserialize__(cls, state):
        return cls(state["value"] * 2)


def test_serialize_and_deserialize_hooks():
    restored = deserialize(serialize({"h": Hooked(21)}))["h"]
    assert isinstance(restored, Hooked) and restored.value == 42


def test_the_known_auth_keys():
    assert set(_db._FRIENDLY.values()) >= {"psycopg2.Connection", "redis.Redis",
                                           "sqlite3.Connection", "sqlalchemy.Engine"}


class _Resettable(__import__("queue").Queue):
    """A Queue subclass that says how to pickle itself: its own way wins over the table."""

    def __reduce__(self):
        return (_Resettable, ())


def test_a_subclass_with_its_own_reduce_is_taken_at_its_word():
    q = _Resettable()
    q.put(1)
    restored = deserialize(serialize(q))
    assert type(restored) is _Resettable and restored.empty()


@pytest.mark.parametrize("dotted", sorted(_db._CLIENTS))
def test_every_client_type_becomes_a_db_reconnector_by_name(dotted):
    module, _, name = dotted.rpartition(".")
    restored = deserialize(serialize({"c": _fake(module, name, password=SECRET)}))["c"]
    assert isinstance(restored, DbReconnector) and restored.kind == _db._CLIENTS[dotted][0]
    assert restored.module == module and restored.class_name == name


def test_psycopg2_details_come_from_the_dsn_parameters():
    conn = _fake("psycopg2.extensions", "connection")
    conn.get_dsn_parameters = lambda: {"host": "pg", "port": "5432", "user": "u",
                                       "dbname": "d", "password": SECRET}
    data = serialize(conn)
    assert SECRET.encode() not in data
    assert deserialize(data).details == {"host": "pg", "port": "5432", "user": "u",
                                         "dbname": "d"}
