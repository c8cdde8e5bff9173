"""Share in the owning process: proxies, values, lifecycle, errors. Each test runs a real
coordinator process (started by `Share()`), stopped and checked reaped at the end."""

from __future__ import annotations

import json
import logging
import pickle
import threading

import pytest

from skprocessing import SerializationError, StateError, Sktimer
from skprocessing.core.share import Share, ShareError

pytestmark = pytest.mark.timeout(60)


class Model:
    """A user class living in the coordinator."""

    def __init__(self):
        self.fitted = 0
        self.weights = [0.0]
        self.cfg = Config()

    def fit(self, n):
        self.fitted += n
        return {"fitted": self.fitted}

    def fail(self):
        raise ValueError("bad input to fail()")

    @property
    def size(self):
        return len(self.weights)


class Config:
    def __init__(self):
        self.retries = 1


@pytest.fixture
def share(assert_reaped):
    s = Share()
    assert_reaped(s._sk_owner.handle.pid)
    yield s
    assert s.stop()


def test_values_read_back_as_plain_types(share):
    share.counter = 0
    share.name = "x"
    share.ratio = 0.5
    share.nothing = None
    share.pair = (1, 2)
    assert share.counter == 0 and isinstance(share.counter, int)
    assert share.name == "x" and share.ratio == 0.5 and share.pair == (1, 2)
    assert share.nothing is None
    assert json.dumps([share.counter, share.name]) == '[0, "x"]'
    assert type(pickle.loads(pickle.dumps(share.counter))) is int


def test_augmented_assignment_on_numbers_and_strings(share):
    share.counter = 10
    share.name = "a"
    share.counter += 5
    share.counter -= 1
    share.counter *= 2
    share.name += "b"
    assert share.counter == 28
    assert share.name == "ab"
    value = share.counter
    value += 1  # a local copy: the shared value does not change
    assert value == 29 and share.counter == 28


def test_augmented_assignment_on_nested_and_items(share):
    share.d = {"k": 1}
    share.m = Model()
    share.d["k"] += 2
    share.m.cfg.retries += 4
    share.m.weights[0] += 1.5
    assert share.d["k"] == 3
    assert share.m.cfg.retries == 5
    assert share.m.weights == [1.5]


def test_nested_attribute_and_item_assignment(share):
    share.m = Model()
    share.m.cfg.retries = 3
    share.d = {}
    share.d["a"] = [1]
    share.d["a"].append(2)
    del share.d["a"][0]
    assert share.m.cfg.retries == 3
    assert share.d == {"a": [2]}
    with pytest.raises(KeyError):
        del share.d["missing"]
    with pytest.raises(IndexError):
        share.d["a"][5] = 1


def test_containers_len_in_iteration(share):
    share.items = [3, 1, 2]
    share.d = {f"k{i}": i for i in range(1000)}
    assert len(share.items) == 3 and 1 in share.items and 9 not in share.items
    assert sorted(share.items) == [1, 2, 3]
    assert list(reversed(share.items)) == [2, 1, 3]
    assert share.items[1:] == [1, 2]
    assert len(share.d) == 1000 and "k999" in share.d
    assert sum(1 for _ in share.d) == 1000
    assert share.d.get("k5") == 5 and share.d["k7"] == 7
    assert sorted(share.d.keys())[:2] == ["k0", "k1"]
    assert share.items + [4] == [3, 1, 2, 4]
    assert repr(share.items) == "[3, 1, 2]" and f"{share.d['k3']:03d}" == "003"


def test_method_calls_return_real_values(share):
    share.items = [1, 2, 3]
    share.stats = {"a": 1}
    share.m = Model()
    assert share.items.pop() == 3
    assert share.items.index(2) == 1
    share.stats.update(b=2, c=3)
    assert share.stats.setdefault("a", 0) == 1
    assert share.m.fit(3) == {"fitted": 3}
    assert share.m.fit(2) == {"fitted": 5}
    assert share.m.fitted == 5 and share.m.size == 1
    assert share.items.copy() == [1, 2]
    assert share.stats == {"a": 1, "b": 2, "c": 3}


def test_in_place_operators_on_proxies(share):
    share.items = [1]
    share.items += [2, 3]
    share.tags = {"a"}
    share.tags |= {"b"}
    assert share.items == [1, 2, 3]
    assert share.tags == {"a", "b"}


def test_method_exception_comes_back_with_traceback(share):
    share.m = Model()
    with pytest.raises(ValueError, match="bad input") as info:
        share.m.fail()
    assert "in fail" in info.value.remote_traceback
    assert share.m.fit(1) == {"fitted": 1}  # the coordinator goes on


def test_unserializable_value_fails_in_the_caller_naming_its_path(share):
    share.x = 1
    bad = Config()
    bad.retries = _Unpicklable()
    with pytest.raises(SerializationError) as info:
        share.cfg = bad
    assert "share.cfg" in str(info.value) and "retries" in info.value.path
    share.d = {}
    with pytest.raises(SerializationError, match=r"share\.d\['k'\]"):
        share.d["k"] = _Unpicklable()
    assert share.x == 1 and "cfg" not in share


def test_missing_names_raise_attribute_error(share):
    with pytest.raises(AttributeError, match="nope"):
        share.nope
    assert getattr(share, "nope", "default") == "default"
    share.m = Model()
    with pytest.raises(AttributeError):
        share.m.nope
    with pytest.raises(AttributeError, match="reserved"):
        share.stop = 1


def test_aliasing_and_deletion(share):
    share.a = [1]
    share.b = share.a  # one object, as in plain Python
    share.b.append(2)
    assert share.a == [1, 2]
    del share.a
    assert "a" not in share and share.b == [1, 2]
    share.clear()
    assert "b" not in share


def test_shared_timer_and_logger(share):
    share.timer = Sktimer()
    share.log = logging.getLogger("skprocessing.tests.share")
    with share.timer:
        pass
    share.timer.add_time(0.25)
    share.timer.start()
    share.timer.stop()
    share.log.info("hello %s", "there")
    assert share.timer.num_times == 3
    assert share.timer.max == pytest.approx(0.25)
    assert share.log.name == "skprocessing.tests.share"


def test_stopped_share_queues_changes_until_start(assert_reaped):
    share = Share(auto_start=False)
    assert not share.is_running
    share.counter = 1
    share.items = [1]
    share.counter += 1
    share.items.append(2)
    assert share.counter == 2  # reads work while stopped, from the queued state
    share.start()
    assert_reaped(share._sk_owner.handle.pid)
    assert share.is_running and share.counter == 2 and share.items == [1, 2]
    assert share.stop()
    share.counter += 10  # queued again
    with share:
        assert_reaped(share._sk_owner.handle.pid)
        assert share.counter == 12
    assert not share.is_running and not share.has_error


def test_stopped_share_cannot_travel_before_it_ever_started():
    share = Share(auto_start=False)
    with pytest.raises(StateError, match="started"):
        pickle.dumps(share)


def test_proxies_and_shares_pickle_by_address(share):
    share.items = [1]
    copy = pickle.loads(pickle.dumps(share))
    assert copy.items == [1]
    items = pickle.loads(pickle.dumps(share.items))
    assert isinstance(items, list) and items == [1]  # a stand-in for the same list
    items.append(2)
    assert share.items == [1, 2]
    with pytest.raises(StateError):
        copy.stop()  # only the owner controls the coordinator


def test_killed_coordinator_fails_every_call_quickly(assert_reaped):
    share = Share()
    share.items = []
    handle = share._sk_owner.handle
    assert_reaped(handle.pid)
    handle.kill()
    handle.wait(5)
    with pytest.raises(ShareError, match="gone|reach"):
        share.items.append(1)
        share.items.copy()
    with pytest.raises(ShareError):
        share.x = 1
        share.x
    assert share.has_error
    with pytest.warns(RuntimeWarning, match="objects are lost"):
        share.stop()


def test_threads_in_one_process_share_one_connection(share):
    share.counter = 0

    def work():
        for _ in range(500):
            share.counter += 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert share.counter == 2000


class _Unpicklable:
    def __reduce__(self):
        raise TypeError("this object refuses to be pickled")


def test_failed_pipelined_update_is_reported_with_the_next_answer(share):
    share.name = "text"
    share.name += 1  # sent without waiting: str + int fails in the coordinator
    with pytest.raises(ShareError, match=r"share\.name.*TypeError"):
        share.name
    assert share.name == "text"  # reported once; the state is unchanged


class Database:
    """Holds a live resource: the serializer turns it into a reconnector on the way."""

    def __init__(self):
        import sqlite3
        self.conn = sqlite3.connect(":memory:")

    def answer(self):
        return self.conn.execute("select 41 + 1").fetchone()[0]


def test_reconnect_all_restores_live_resources(share):
    share.db = Database()
    reconnected = share.reconnect_all()
    # as suitkaise documents: live objects of this process (here, with a live connection)
    assert list(reconnected) == ["db"] and type(reconnected["db"]) is Database
    assert reconnected["db"].answer() == 42
    assert share.db.answer() == 42


def test_objects_of_a_never_started_share_cannot_travel():
    share = Share(auto_start=False)
    share.items = [1]
    with pytest.raises(StateError, match="started"):
        pickle.dumps(share.items)


def test_values_from_another_share_are_copied(share, assert_reaped):
    other = Share()
    assert_reaped(other._sk_owner.handle.pid)
    other.items = [1, 2]
    share.items = other.items
    share.items.append(3)
    assert share.items == [1, 2, 3] and other.items == [1, 2]
    assert other.stop()


def test_in_place_update_of_a_missing_name_is_reported(share):
    share.counter += 1  # pipelined: the coordinator finds no share.counter
    share.names = []  # also pipelined: nothing to report yet
    with pytest.raises(ShareError, match=r"share\.counter.*AttributeError"):
        assert "names" in share  # the next answered call reports it
    assert "counter" not in share and share.names == []
