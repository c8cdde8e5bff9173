"""suitkaise 0.4.14's processing/why.md: its examples that use processing (the others
show multiprocessing, multiprocess and concurrent.futures for contrast), as written there;
only the import is ours, sizes shrunk, sqlite3 standing in for PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import pytest

from skprocessing import Pipe, Pool, Share, Skprocess, autoreconnect

pytestmark = pytest.mark.timeout(90)


class Worker(Skprocess):
    def __init__(self, share, item):
        self.share = share
        self.item = item
        # Not in the document: without a limit the item runs until stopped (runs=None, in
        # suitkaise too), so the map would never return.
        self.process_config.runs = 1

    def __run__(self):
        result = self.item * 2
        self.share.results.append(result)       # shared list
        self.share.counter += 1                 # shared counter
        self.share.log.info(f"done: {result}")  # shared logger


def test_put_anything_on_share():
    share = Share()
    try:
        share.counter = 0
        share.results = []
        share.log = logging.getLogger("worker")
        pool = Pool(workers=4)
        try:
            pool.star().map(Worker, [(share, x) for x in range(20)])
        finally:
            pool.close()
        assert share.counter == 20
        assert len(share.results) == 20 and sorted(share.results) == [x * 2 for x in range(20)]
        assert isinstance(share.log.handlers, list)  # still works
        assert share.log.name == "worker"
    finally:
        share.stop()


def test_closures_lambdas_anything():
    def make_multiplier(n):
        return lambda x: x * n

    my_function = make_multiplier(3)
    items = [1, 2, 3]
    pool = Pool(workers=4)
    try:
        results = pool.map(my_function, items)  # closures, lambdas, anything
        assert results == [3, 6, 9]
        assert pool.map(lambda x: x - 1, items) == [0, 1, 2]

        class Local:
            def __init__(self, v):
                self.v = v

        assert [o.v for o in pool.map(Local, items)] == items
    finally:
        pool.close()


@autoreconnect(**{"sqlite3.Connection": {"*": None}})  # "psycopg2.Connection": {"*": "password"}
class DatabaseWorker(Skprocess):
    def __init__(self, db_connection):
        self.db = db_connection
        self.process_config.runs = None
        self.process_config.lives = 3
        self.process_config.timeouts.run = 30.0

    def __prerun__(self):
        msg = self.listen(timeout=0.1)
        self.query = msg if msg else None

    def __run__(self):
        if not self.query:
            return
        cursor = self.db.cursor()
        cursor.execute(self.query['sql'], self.query.get('params'))
        self.results = cursor.fetchall()
        cursor.close()

    def __postrun__(self):
        if self.query:
            if not self.results:
                self.tell({'status': 'error', 'data': None})
            else:
                self.tell({'status': 'ok', 'data': self.results})
        else:
            self.tell({'status': 'no query', 'data': None})

    def __onfinish__(self):
        self.db.close()


def test_database_worker(tmp_path):
    path = str(tmp_path / "mydb.db")
    with sqlite3.connect(path) as setup:
        setup.execute("create table users (id, name)")
        setup.executemany("insert into users values (?, ?)", [(123, "ann"), (789, "cy")])
    db = sqlite3.connect(path)
    worker = DatabaseWorker(db)
    worker.start()
    queries = [
        {'sql': 'SELECT * FROM users WHERE id = ?', 'params': (123,)},  # %s is psycopg2's
        {'sql': 'SELECT * FROM users WHERE id = ?', 'params': (456,)},
        {'sql': 'SELECT * FROM users WHERE id = ?', 'params': (789,)},
    ]
    results = []
    for query in queries:
        worker.tell(query)
        # Not in the document's loop: between queries the worker also says 'no query' on
        # every idle iteration, so the answer to this query is the next other one.
        while (result := worker.listen(timeout=30))['status'] == 'no query':
            pass
        results.append(result)
    worker.stop()
    worker.wait()
    assert results == [{'status': 'ok', 'data': [(123, "ann")]}, {'status': 'error', 'data': None},
                       {'status': 'ok', 'data': [(789, "cy")]}]
    assert f"Avg query time: {worker.__run__.timer.mean:.3f}s"
    assert worker.__run__.timer.num_times >= 3


class ShareCounter(Skprocess):
    def __init__(self, share: Share):
        self.share = share
        self.process_config.runs = 10

    def __run__(self):
        self.share.counter += 1
        self.share.log.info(f"{self.share.counter}")


def test_share_counter_and_logger():
    share = Share()
    try:
        share.counter = 0
        share.log = logging.getLogger("ShareLog")
        pool = Pool(workers=4)
        try:
            pool.map(ShareCounter, [share] * 10)
        finally:
            pool.close()
        assert share.counter == 100  # (10 total workers, 10 runs each)
        # The document then prints `share.log.messages`: a Logger has no such attribute
        # (in suitkaise neither); records go to the logger's handlers.
        with pytest.raises(AttributeError):
            share.log.messages
    finally:
        share.stop()


class Commanded(Skprocess):  # MyProcess in the document
    def __prerun__(self):
        self.command = self.listen(timeout=5.0)  # 1.0 in the document; a loaded machine

    def __run__(self):
        if self.command == "stop":
            self.stop()
        elif self.command == "print":
            print("hello")
        else:
            raise ValueError(f"Unknown command: {self.command}")

    def __postrun__(self):
        self.command = None
        self.tell("command received")


def test_tell_listen_commands(capfd):
    p = Commanded()
    p.start()
    received = 0
    for i in range(10):
        p.tell("print")
        result = p.listen(timeout=10.0)  # 1.0 in the document
        if result != "command received":
            break
        received += 1
    p.tell("stop")
    assert p.wait(timeout=30)
    assert received == 10
    assert capfd.readouterr().out.count("hello") == 10
    assert p.result() is None and p.current_run == 10


class PipeTalker(Skprocess):
    def __init__(self, pipe_point: Pipe.Point):
        self.pipe = pipe_point
        self.process_config.runs = 1

    def __run__(self):
        self.pipe.send("hello")
        result = self.pipe.recv()
        print(result)


def test_pipe_both_ways(capfd):
    anchor, point = Pipe.pair()
    process = PipeTalker(point)
    process.start()
    anchor.send("hello")
    result = anchor.recv()
    assert result == "hello"
    process.wait()
    assert capfd.readouterr().out.strip() == "hello"
    anchor.close()


class OneWay(Skprocess):
    def __init__(self, pipe_point: Pipe.Point):
        self.pipe = pipe_point
        self.process_config.runs = 1

    def __prerun__(self):
        self.data_to_process = self.pipe.recv()

    def __run__(self):
        self.process_data(self.data_to_process)

    def __postrun__(self):
        self.data_to_process = None

    def process_data(self, data):  # not defined in the document
        self.total = sum(data)

    def __result__(self):
        return self.total, self.data_to_process


def test_one_way_pipe():
    anchor, point = Pipe.pair(one_way=True)
    process = OneWay(point)
    process.start()
    anchor.send([1, 2, 3])
    assert process.result() == (6, None)
    anchor.close()


def fn_or_skprocess(x):
    return x + 1


def add(a, b):
    return a + b


def test_pool_methods_and_modifiers():
    # The document writes these on the class (`Pool.map(...)`) as shorthand; they are
    # methods of a pool.
    items = [1, 2, 3]
    with Pool(workers=2) as pool:
        list_in_order = pool.map(fn_or_skprocess, items)
        unordered_list = pool.unordered_map(fn_or_skprocess, items)
        assert list_in_order == [2, 3, 4] and sorted(unordered_list) == [2, 3, 4]
        assert list(pool.imap(fn_or_skprocess, items)) == [2, 3, 4]
        assert sorted(pool.unordered_imap(fn_or_skprocess, items)) == [2, 3, 4]

        async def main():
            coro = pool.map.timeout(20.0).asynced()
            return await coro(fn_or_skprocess, items)

        assert asyncio.run(main()) == [2, 3, 4]
        future = pool.star().map.background()(add, [(1, 2), (3, 4)])
        assert future.result() == [3, 7]
