"""A sqlite3 connection made with the default check_same_thread=True serializes from a
thread that did not create it (a Pool serializes its items on its scheduler thread)."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from skprocessing import deserialize, serialize
from skprocessing.serializers.cerial import DbReconnector


def on_another_thread(call):
    box = {}

    def run():
        try:
            box["value"] = call()
        except BaseException as exc:  # handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_a_file_connection_travels_as_a_placeholder_for_its_file(tmp_path):
    path = str(tmp_path / "rows.db")
    connection = sqlite3.connect(path)
    connection.execute("create table t (v)")
    connection.commit()
    placeholder = deserialize(on_another_thread(lambda: serialize(connection)))
    assert isinstance(placeholder, DbReconnector) and placeholder.details["database"] == path
    assert placeholder.reconnect().execute("select count(*) from t").fetchone() == (0,)


def test_an_in_memory_connection_travels_with_its_contents():
    connection = sqlite3.connect(":memory:")
    connection.execute("create table t (v)")
    connection.executemany("insert into t values (?)", [(1,), (2,)])
    connection.commit()
    rebuilt = deserialize(on_another_thread(lambda: serialize(connection)))
    assert rebuilt.execute("select v from t").fetchall() == [(1,), (2,)]
    empty = sqlite3.connect(":memory:")
    assert deserialize(on_another_thread(lambda: serialize(empty))).execute(
        "select count(*) from sqlite_master").fetchone() == (0,)


def test_a_closed_connection_still_says_it_is_closed():
    connection = sqlite3.connect(":memory:")
    connection.close()
    with pytest.raises(Exception, match="closed"):
        on_another_thread(lambda: serialize(connection))
