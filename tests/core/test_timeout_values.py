"""Every time limit a user can give takes the same values: a number of seconds, None, or
math.inf (no limit); nan is refused naming the parameter. (Before, `timeout=inf` broke a
pool for good and `nan` silently disabled the limit.)"""

from __future__ import annotations

import math

import pytest

from skprocessing import Pipe, Pool, Share, Skprocess
from skprocessing._seconds import seconds

pytestmark = pytest.mark.timeout(90)


class Echo(Skprocess):
    def __init__(self):
        self.process_config.runs = 1

    def __run__(self):
        self.tell(self.listen(timeout=30))


def test_the_one_check():
    assert seconds("t", 2) == 2.0 and seconds("t", None) is None and seconds("t", math.inf) is None
    assert seconds("t", 0, zero=True) == 0.0
    for bad, error in ((math.nan, ValueError), (-1, ValueError), (-math.inf, ValueError),
                       (0, ValueError), ("5", TypeError), (True, TypeError)):
        with pytest.raises(error, match="^t "):
            seconds("t", bad)


@pytest.fixture(scope="module")
def pool():
    with Pool(2) as shared:
        yield shared


def test_pool_per_item_timeout(pool):
    with pytest.raises(ValueError, match=r"timeout \(per item\) is nan"):
        Pool(1, timeout=math.nan)
    with pytest.raises(ValueError, match=r"timeout \(per item\) is nan"):
        pool.map(abs, [1], timeout=math.nan)
    # inf: no limit, and the pool keeps working afterwards (it used to crash the scheduler)
    assert pool.map(abs, [-1, -2], timeout=math.inf) == [1, 2]
    assert list(pool.imap(abs, [-3], timeout=math.inf)) == [3]
    assert pool.map(abs, [-4]) == [4]
    with Pool(1, timeout=math.inf) as unlimited:
        assert unlimited.map(abs, [-5]) == [5]


def test_call_timeout_modifier(pool):
    with pytest.raises(ValueError, match=r"\.timeout\(\) is nan"):
        pool.map.timeout(math.nan)
    with pytest.raises(ValueError, match=r"\.timeout\(\) must be 0 or more"):
        pool.map.timeout(-1)
    assert pool.map.timeout(math.inf)(abs, [-1]) == [1]
    assert pool.map.timeout(math.inf).background()(abs, [-2]).result(timeout=60) == [2]


def test_pool_close_timeout():
    local = Pool(1)
    with pytest.raises(ValueError, match=r"Pool.close\(timeout\) is nan"):
        local.close(math.nan)
    local.close(math.inf)  # waits as long as it takes: here, no time at all
    assert local.state.value == "closed"


def test_skprocess_section_timeouts_and_join_in():
    process = Echo()
    with pytest.raises(ValueError, match=r"timeouts.run is nan"):
        process.process_config.timeouts.run = math.nan
    with pytest.raises(ValueError, match=r"join_in is nan"):
        process.process_config.join_in = math.nan
    process.process_config.timeouts.run = math.inf
    process.process_config.join_in = math.inf
    assert process.process_config.timeouts.run is None and process.process_config.join_in is None


def test_skprocess_wait_listen_result_timeouts():
    process = Echo()
    process.start()
    try:
        with pytest.raises(ValueError, match=r"Echo.wait\(timeout\) is nan"):
            process.wait(math.nan)
        with pytest.raises(ValueError, match=r"Echo.listen\(timeout\) is nan"):
            process.listen(math.nan)
        with pytest.raises(ValueError, match=r"\.timeout\(\) is nan"):
            process.result.timeout(math.nan)
        process.tell("ping")
        assert process.listen(timeout=math.inf) == "ping"
        assert process.wait(math.inf) is True
        assert process.result.timeout(math.inf)() is None
    finally:
        if process.is_alive:
            process.kill()


def test_skprocess_start_on_pool_timeout(pool):
    with pytest.raises(ValueError, match=r"Echo.start\(timeout\) is nan"):
        Echo().start(on=pool, timeout=math.nan)


def test_share_stop_timeout():
    share = Share()
    share.value = 1
    with pytest.raises(ValueError, match=r"Share.stop\(timeout\) is nan"):
        share.stop(math.nan)
    assert share.stop(math.inf) is True
    assert share.value == 1  # kept here, as for any stop


def test_pipe_timeouts():
    anchor, point = Pipe.pair(one_way=False)
    with pytest.raises(ValueError, match=r"Pipe.recv\(timeout\) is nan"):
        anchor.recv(math.nan)
    with pytest.raises(ValueError, match=r"Pipe.poll\(timeout\) is nan"):
        anchor.poll(math.nan)
    anchor.send("x")
    assert point.recv(timeout=math.inf) == "x"
