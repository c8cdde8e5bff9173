"""Pipe: anchor/point pairs, locking, serializers, and real subprocesses on the other end."""

from __future__ import annotations

import pickle

import pytest

from skprocessing import ChannelClosed, SerializationError, Skprocess
from skprocessing.core.pipe import Pipe, PipeEndpointError
from skprocessing.serializers import get_serializer


class Echo(Skprocess):
    """Receives on its point until None, answering each object doubled."""

    def __init__(self, point):
        self.process_config.runs = 1
        self.point = point

    def __run__(self):
        while True:
            obj = self.point.recv()
            if obj is None:
                break
            self.point.send(obj * 2)

    def __result__(self):
        return "done"


class Collect(Skprocess):
    """Receives objects on a one-way point until None; returns them."""

    def __init__(self, point):
        self.process_config.runs = 1
        self.point = point
        self.got = []

    def __run__(self):
        while (obj := self.point.recv()) is not None:
            self.got.append(obj)

    def __result__(self):
        return self.got


def test_pair_in_one_process():
    anchor, point = Pipe.pair()
    anchor.send({"a": [1, 2]})
    assert point.recv() == {"a": [1, 2]}
    point.send((1, "x"))
    assert anchor.recv() == (1, "x")
    assert not anchor.poll(0)
    anchor.close()
    with pytest.raises(EOFError):
        point.recv()


def test_anchor_is_always_locked():
    anchor, point = Pipe.pair()
    assert anchor.locked and not point.locked
    with pytest.raises(PipeEndpointError, match="always locked"):
        anchor.unlock()
    with pytest.raises(PipeEndpointError, match="anchor cannot be serialized"):
        pickle.dumps(anchor)
    with pytest.raises(SerializationError, match="anchor cannot be serialized"):
        get_serializer().dumps(anchor)  # the default serializer says why, with the path


def test_locked_or_connected_point_cannot_be_serialized():
    anchor, point = Pipe.pair()
    point.lock()
    with pytest.raises(PipeEndpointError, match="locked"):
        pickle.dumps(point)
    point.unlock()
    copy = pickle.loads(pickle.dumps(point))
    copy.send(1)
    assert anchor.recv() == 1
    copy.send(2)
    with pytest.raises(PipeEndpointError, match="already connected"):
        pickle.dumps(copy)
    assert anchor.recv() == 2


def test_one_way_pipe_directions():
    anchor, point = Pipe.pair(one_way=True)
    anchor.send("hello")
    assert point.recv() == "hello"
    with pytest.raises(PipeEndpointError, match="only receives"):
        point.send(1)
    with pytest.raises(PipeEndpointError, match="only sends"):
        anchor.recv()


def test_recv_timeout():
    anchor, point = Pipe.pair()
    point.send(0)
    assert anchor.recv() == 0
    with pytest.raises(TimeoutError):
        anchor.recv(timeout=0.05)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("serializer", [None, "pickle", "cerial"])
def test_echo_with_a_subprocess(serializer, assert_reaped):
    anchor, point = Pipe.pair(serializer=serializer)
    process = Echo(point)
    process.start()
    assert_reaped(process._sk.handle.pid)
    for value in (1, "ab", [1, 2], 2.5):
        anchor.send(value)
        assert anchor.recv() == value * 2
    anchor.send(None)
    assert process.result() == "done"


@pytest.mark.timeout(60)
def test_sends_before_the_point_connects_are_delivered(assert_reaped):
    anchor, point = Pipe.pair(one_way=True)
    for i in range(100):
        anchor.send(i)  # the subprocess does not exist yet
    process = Collect(point)
    process.start()
    assert_reaped(process._sk.handle.pid)
    anchor.send(None)
    assert process.result() == list(range(100))


@pytest.mark.timeout(60)
def test_a_dead_peer_is_seen_as_end_of_file(assert_reaped):
    anchor, point = Pipe.pair()
    process = Echo(point)
    process.start()
    assert_reaped(process._sk.handle.pid)
    anchor.send(1)
    assert anchor.recv() == 2
    process.kill()
    with pytest.raises((EOFError, ChannelClosed)):
        anchor.recv(timeout=10)
