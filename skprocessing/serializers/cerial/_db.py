"""Database connections: `sqlite3` and the client libraries matched by dotted type name.

A connection never travels: a `DbReconnector` does, with the details needed to connect
again (host, port, user, database, path) and never the password, which `reconnect(auth)`
or `reconnect_all(**auth)` supplies. An in-memory sqlite database has nowhere to
reconnect to, so it travels with its contents and lands as a live connection.

Client libraries (psycopg2, psycopg, pymysql, redis, pymongo, sqlalchemy, duckdb) are
registered by dotted name, so none of them is imported unless an object of theirs is
serialized or a placeholder of theirs reconnected.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from . import _sqlite_handle
from ._table import register_reducer
from .reconnectors import Reconnector

__all__ = ["DbReconnector", "CursorReconnector"]

_SECRET_KEYS = frozenset({"password", "passwd", "pwd", "secret", "token", "sslpassword"})


class DbReconnector(Reconnector):
    """A database connection: `kind` (`"sqlite3"`, `"psycopg2"`, ...), its original
    `module`/`class_name`, and `details` without secrets. `reconnect(auth)` connects
    again, passing `auth` as the password (a dict of keyword arguments is also accepted).
    """

    def __init__(self, kind: str, module: str, class_name: str, details: dict[str, Any]):
        self.kind, self.module, self.class_name = kind, module, class_name
        self.details = {k: v for k, v in details.items() if k not in _SECRET_KEYS}

    @property
    def auth_keys(self) -> tuple[str, ...]:  # type: ignore[override]
        return (_FRIENDLY[self.kind], f"{self.module}.{self.class_name}")

    def _connect(self, auth: Any) -> Any:
        return _CONNECT[self.kind](self.details, auth)

    def _lazy_now(self) -> bool:
        # A password-protected server waits for an explicit reconnect(auth).
        return self.__dict__.get("kind") in _NO_AUTH


class CursorReconnector(Reconnector):
    """A `sqlite3.Cursor` whose connection is a placeholder: reconnecting makes a cursor on
    that connection's live object (reconnecting it first if nobody has)."""

    auth_keys = ("sqlite3.Connection",)
    _lazy = True

    def __init__(self, connection: Any):
        self.connection = connection

    def _connect(self, auth: Any) -> Any:
        connection = self.connection
        if isinstance(connection, Reconnector):
            connection = connection._live or connection.reconnect(auth)
        return connection.cursor()


def _kwargs(details: dict[str, Any], auth: Any, password_key: str = "password") -> dict:
    kwargs = {k: v for k, v in details.items() if v is not None}
    if isinstance(auth, dict):
        kwargs.update(auth)
    elif auth is not None:
        kwargs[password_key] = auth
    return kwargs


# -- sqlite3 ---------------------------------------------------------------------------------

def _sqlite_path(connection: Any) -> str:
    try:
        rows = connection.execute("PRAGMA database_list").fetchall()
    except Exception as exc:
        if not _sqlite_handle.owned_elsewhere(exc):
            raise
        return _sqlite_handle.file_name(connection)  # a Pool serializes on its own thread
    for _, name, path in rows:
        if name == "main":
            return path
    return ""


def _memory_contents(connection: Any) -> bytes:
    try:
        return connection.serialize()
    except Exception as exc:
        if _sqlite_handle.owned_elsewhere(exc):
            return _sqlite_handle.contents(connection)
        # sqlite cannot serialize a database that never had a page written: an empty one.
        if connection.execute("select count(*) from sqlite_master").fetchone()[0]:
            raise
        return b""


def rebuild_sqlite_memory(data: bytes, isolation_level: str | None) -> Any:
    import sqlite3
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    if data:
        connection.deserialize(data)
    connection.isolation_level = isolation_level
    return connection


def _reduce_sqlite(connection: Any) -> Any:
    path = _sqlite_path(connection)
    if not path:  # in memory (or a temporary database): carry the contents
        return rebuild_sqlite_memory, (_memory_contents(connection), connection.isolation_level)
    details = {"database": path, "isolation_level": connection.isolation_level}
    return DbReconnector, ("sqlite3", "sqlite3", "Connection", details)


def rebuild_cursor(connection: Any) -> Any:
    if isinstance(connection, Reconnector):
        return CursorReconnector(connection)
    return connection.cursor()


def _reduce_cursor(cursor: Any) -> Any:
    return rebuild_cursor, (cursor.connection,)


def _connect_sqlite(details: dict[str, Any], auth: Any) -> Any:
    import sqlite3
    return sqlite3.connect(details["database"], isolation_level=details.get("isolation_level"),
                           check_same_thread=False)


# -- client libraries, by dotted name ---------------------------------------------------------

def _attrs(obj: Any, *names: str) -> dict[str, Any]:
    return {name: getattr(obj, name, None) for name in names}


def _psycopg2_details(conn: Any) -> dict[str, Any]:
    params = dict(conn.get_dsn_parameters())
    return {"host": params.get("host"), "port": params.get("port"),
            "user": params.get("user"), "dbname": params.get("dbname")}


def _psycopg_details(conn: Any) -> dict[str, Any]:
    params = dict(conn.info.get_parameters())
    return {"host": params.get("host"), "port": params.get("port"),
            "user": params.get("user"), "dbname": params.get("dbname")}


def _pymysql_details(conn: Any) -> dict[str, Any]:
    db = getattr(conn, "db", None)
    details = _attrs(conn, "host", "port", "user")
    details["database"] = db.decode() if isinstance(db, bytes) else db
    if isinstance(details["user"], bytes):
        details["user"] = details["user"].decode()
    return details


def _redis_details(client: Any) -> dict[str, Any]:
    kwargs = dict(client.connection_pool.connection_kwargs)
    return {k: kwargs.get(k) for k in ("host", "port", "db", "username")}


def _pymongo_details(client: Any) -> dict[str, Any]:
    seeds = getattr(client, "_MongoClient__seeds", None) or getattr(client, "_seeds", None)
    host, port = next(iter(seeds)) if seeds else (None, None)
    options = getattr(client, "_MongoClient__options", None)
    username = getattr(getattr(options, "credentials", None), "username", None)
    return {"host": host, "port": port, "username": username}


def _sqlalchemy_details(engine: Any) -> dict[str, Any]:
    return {"url": engine.url.set(password=None).render_as_string(hide_password=False)}


def _duckdb_details(conn: Any) -> dict[str, Any]:
    rows = conn.execute("PRAGMA database_list").fetchall()  # (seq, name, file)
    return {"database": (rows[0][2] if rows else None) or ":memory:"}


def _connect_with(module: str, call: str, password_key: str = "password") -> Callable:
    def connect(details: dict[str, Any], auth: Any) -> Any:
        target = importlib.import_module(module)
        for part in call.split("."):
            target = getattr(target, part)
        return target(**_kwargs(details, auth, password_key))
    return connect


def _connect_sqlalchemy(details: dict[str, Any], auth: Any) -> Any:
    sqlalchemy = importlib.import_module("sqlalchemy")
    url = sqlalchemy.engine.make_url(details["url"])
    if auth is not None:
        url = url.set(password=auth)
    return sqlalchemy.create_engine(url)


_NO_AUTH = frozenset({"sqlite3", "duckdb"})
_FRIENDLY = {"sqlite3": "sqlite3.Connection", "psycopg2": "psycopg2.Connection",
             "psycopg": "psycopg.Connection", "pymysql": "pymysql.Connection",
             "redis": "redis.Redis", "pymongo": "pymongo.MongoClient",
             "sqlalchemy": "sqlalchemy.Engine", "duckdb": "duckdb.Connection"}
_CONNECT: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "sqlite3": _connect_sqlite,
    "psycopg2": _connect_with("psycopg2", "connect"),
    "psycopg": _connect_with("psycopg", "connect"),
    "pymysql": _connect_with("pymysql", "connect"),
    "redis": _connect_with("redis", "Redis"),
    "pymongo": _connect_with("pymongo", "MongoClient"),
    "sqlalchemy": _connect_sqlalchemy,
    "duckdb": lambda details, auth: importlib.import_module("duckdb").connect(details["database"]),
}
# dotted type name -> (kind, details extractor)
_CLIENTS: dict[str, tuple[str, Callable[[Any], dict[str, Any]]]] = {
    "psycopg2.extensions.connection": ("psycopg2", _psycopg2_details),
    "psycopg.Connection": ("psycopg", _psycopg_details),
    "psycopg.connection.Connection": ("psycopg", _psycopg_details),
    "pymysql.connections.Connection": ("pymysql", _pymysql_details),
    "redis.client.Redis": ("redis", _redis_details),
    "redis.client.StrictRedis": ("redis", _redis_details),
    "pymongo.mongo_client.MongoClient": ("pymongo", _pymongo_details),
    "sqlalchemy.engine.base.Engine": ("sqlalchemy", _sqlalchemy_details),
    "duckdb.DuckDBPyConnection": ("duckdb", _duckdb_details),
    "duckdb.duckdb.DuckDBPyConnection": ("duckdb", _duckdb_details),
}


def _client_reducer(kind: str, extract: Callable[[Any], dict[str, Any]]) -> Callable:
    def reduce_client(conn: Any) -> Any:
        cls = type(conn)
        try:
            details = extract(conn)
        except Exception:  # a half-closed client: reconnect needs auth to say everything
            details = {}
        return DbReconnector, (kind, cls.__module__, cls.__qualname__, details)
    reduce_client.__name__ = f"reduce_{kind}"
    return reduce_client


register_reducer("sqlite3.Connection", _reduce_sqlite)
register_reducer("sqlite3.Cursor", _reduce_cursor)
for _name, (_kind, _extract) in _CLIENTS.items():
    register_reducer(_name, _client_reducer(_kind, _extract))
