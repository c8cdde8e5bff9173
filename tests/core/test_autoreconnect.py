"""@autoreconnect on a real Skprocess in a real child: the child writes through a sqlite
connection opened in the parent, and the parent reads the row."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from skprocessing import Skprocess
from skprocessing.core.autoreconnect import autoreconnect
from skprocessing.serializers.cerial import DbReconnector, Reconnector

pytestmark = pytest.mark.timeout(60)


@autoreconnect
class Writer(Skprocess):
    def __init__(self, path: str):
        self.process_config.runs = 1
        self.db = sqlite3.connect(path)
        self.lock = threading.Lock()

    def __run__(self):
        with self.lock:
            self.db.execute("insert into rows values (?)", ("from the child",))
            self.db.commit()

    def __result__(self):
        return type(self.db).__module__, type(self.db).__qualname__


@autoreconnect(**{"sqlite3.Connection": {"*": None}})
class Reporter(Skprocess):
    def __init__(self, path: str):
        self.process_config.runs = 1
        self.db = sqlite3.connect(path)
        self.unreachable = DbReconnector("sqlite3", "sqlite3", "Connection",
                                         {"database": "/nonexistent/dir/x.db"})

    def __run__(self):
        pass

    def __result__(self):
        return isinstance(self.db, sqlite3.Connection), self.unreachable.reconnect_error


class Plain(Skprocess):
    def __init__(self, path: str):
        self.process_config.runs = 1
        self.db = sqlite3.connect(path)

    def __run__(self):
        pass

    def __result__(self):
        return isinstance(self.db, Reconnector)


@pytest.fixture
def database(tmp_path):
    path = str(tmp_path / "rows.db")
    with sqlite3.connect(path) as db:
        db.execute("create table rows (text)")
    return path


def test_the_child_writes_through_a_connection_opened_in_the_parent(database):
    assert Writer(database).run() == ("sqlite3", "Connection")
    with sqlite3.connect(database) as db:
        assert db.execute("select text from rows").fetchall() == [("from the child",)]


def test_a_placeholder_that_cannot_reconnect_stays_and_says_why(database):
    live, reason = Reporter(database).run()
    assert live is True
    assert reason and "unable to open" in reason


def test_without_the_decorator_the_child_gets_the_placeholder(database):
    assert Plain(database).run() is True


def test_the_decorator_only_takes_classes():
    with pytest.raises(TypeError):
        autoreconnect(lambda: None)


def test_secrets_stay_out_of_the_bytes_and_still_reach_the_child(database):
    from skprocessing import serialize

    secret = "s3cr3t-token-7f21"

    @autoreconnect(**{"sqlite3.Connection": {"*": secret}})
    class Local(Skprocess):  # defined in a function: the class itself travels by value
        def __init__(self, path):
            self.process_config.runs = 1
            self.db = sqlite3.connect(path)

        def __run__(self):
            pass

        def __result__(self):
            return isinstance(self.db, sqlite3.Connection)

    process = Local(database)
    assert secret.encode() not in serialize(process)
    assert process.run() is True  # the child reconnected with the settings it was handed
