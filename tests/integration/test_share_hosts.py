"""A Share served over the ZeroMQ transport, on loopback (tcp://127.0.0.1 only).

Writers are real processes: Skprocesses started on the same transport, and fresh Python
interpreters that receive the pickled Share and sign with their own key (as a process on
another host would). See `test_share_hosts_netns.py` for three network namespaces.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from skprocessing import Skprocess
from skprocessing.core.share import Share, ShareError
from tests.conftest import wait_gone

URL = "tcp://127.0.0.1:0"
KEY = "share-hosts-test-key-5d1c"
FAST = "?heartbeat=0.25&dead_after=1.5"  # failures show within ~2 s


class Count(Skprocess):
    """Increments and appends `ops` times; optionally says "done" and waits to be told."""

    def __init__(self, share, ops: int, signal_done: bool = False):
        self.process_config.runs = 1
        self.share, self.ops, self.signal_done = share, ops, signal_done

    def __run__(self):
        share = self.share
        for i in range(self.ops):
            share.counter += 1
            share.items.append(i)
        if self.signal_done:
            self.tell("done")
            self.listen(30)


class Account:
    def __init__(self):
        self.balance = 0

    def deposit(self, amount):
        self.balance += amount
        return self.balance


class Deposit(Skprocess):
    def __init__(self, share):
        self.process_config.runs = 1
        self.share = share
        self.seen = None

    def __run__(self):
        self.seen = [self.share.account.deposit(10) for _ in range(5)]
        self.share.by_pid[os.getpid()] = os.getpid()  # pipelined item assignment
        self.read_back = self.share.by_pid[os.getpid()]  # read-your-writes, no pause

    def __result__(self):
        return self.seen, self.read_back, os.getpid()


@pytest.fixture
def tcp_share():
    share = Share(transport=URL)
    try:
        yield share
    finally:
        share.stop()


@pytest.mark.timeout(90)
def test_exact_counts_from_processes_that_exit(tcp_share, assert_reaped):
    tcp_share.counter, tcp_share.items = 0, []
    workers = [Count(tcp_share, 3000) for _ in range(2)]
    for worker in workers:
        worker.start(transport=URL)
        assert_reaped(worker._sk.handle.pid)
    for worker in workers:
        worker.result()
    # Read at once: pipelined writes of a process that ended are never lost or late.
    assert tcp_share.counter == 6000
    assert len(tcp_share.items) == 6000
    assert sorted(tcp_share.items) == sorted(list(range(3000)) * 2)


@pytest.mark.timeout(90)
def test_writes_before_a_signal_are_seen_by_the_next_reader(tcp_share, assert_reaped):
    tcp_share.counter, tcp_share.items = 0, []
    workers = [Count(tcp_share, 3000, signal_done=True) for _ in range(2)]
    for worker in workers:
        worker.start(transport=URL)
        assert_reaped(worker._sk.handle.pid)
    for worker in workers:
        assert worker.listen(60) == "done"
    # The writers are alive and their "done" came on another connection.
    assert tcp_share.counter == 6000
    assert len(tcp_share.items) == 6000
    for worker in workers:
        worker.tell("bye")
        worker.result()


@pytest.mark.timeout(90)
def test_method_calls_return_real_values_and_reads_see_own_writes(tcp_share, assert_reaped):
    tcp_share.account, tcp_share.by_pid = Account(), {}
    workers = [Deposit(tcp_share) for _ in range(2)]
    for worker in workers:
        worker.start(transport=URL)
        assert_reaped(worker._sk.handle.pid)
    results = [worker.result() for worker in workers]
    for seen, read_back, pid in results:
        assert read_back == pid
        assert seen == sorted(seen) and len(set(seen)) == 5
    every = sorted(v for seen, _, _ in results for v in seen)
    assert every == list(range(10, 101, 10))  # each deposit's own balance, none twice
    assert tcp_share.account.balance == 100


class KeyedCount(Count):
    """A `Count` in a process not started by the Share's transport: it needs the key."""

    def __run__(self):
        os.environ["SKPROCESSING_KEY"] = KEY
        super().__run__()


@pytest.mark.timeout(90)
def test_a_process_on_the_local_transport_loses_no_write_when_it_exits(assert_reaped):
    # Its writes travel in batches; the last one leaves from the launcher's exit hooks
    # (the process is gone before the read, so no read barrier can fetch it earlier).
    share = Share(transport=URL, key=KEY)
    try:
        share.counter, share.items = 0, []
        workers = [KeyedCount(share, 3001) for _ in range(2)]
        for worker in workers:
            worker.start()  # the local transport; the Share is on ZeroMQ
            assert_reaped(worker._sk.handle.pid)
        for worker in workers:
            worker.result()
            assert worker._sk.handle.wait(30) is not None
        assert share.counter == 6002
        assert sorted(share.items) == sorted(list(range(3001)) * 2)
    finally:
        share.stop()


class Mixed(Skprocess):
    """Small writes (batched), large ones (sent alone) and reads, interleaved."""

    def __init__(self, share):
        self.process_config.runs = 1
        self.share = share
        self.lengths = []

    def __run__(self):
        items = self.share.items
        for i in range(1500):
            items.append(i)
            if i % 300 == 150:
                items.append(bytes(40_000))  # too large for a batch
            if i % 500 == 499:
                self.lengths.append(len(items))  # a request: after every write before it

    def __result__(self):
        return self.lengths


@pytest.mark.timeout(60)
def test_batched_and_large_writes_and_reads_keep_their_order(tcp_share, assert_reaped):
    tcp_share.items = []
    worker = Mixed(tcp_share)
    worker.start(transport=URL)
    assert_reaped(worker._sk.handle.pid)
    expected = []
    for i in range(1500):
        expected.append(i)
        if i % 300 == 150:
            expected.append(bytes(40_000))
    assert worker.result() == [expected.index(499) + 1, expected.index(999) + 1,
                               expected.index(1499) + 1]
    assert list(tcp_share.items) == expected


def test_an_unreadable_batch_is_reported_and_changes_nothing(tcp_share):
    from skprocessing.core.share._protocol import BATCH, batch_frames
    tcp_share.counter = 0
    assert tcp_share.counter == 0  # connected
    connection = tcp_share._sk_client._channel
    for bad in ([BATCH, b"not marshal"], batch_frames([[b""]]), batch_frames([b"x"]),
                batch_frames([batch_frames([])])):
        connection.channel.send(bad)  # signed by us: only a bug could send these
    with pytest.raises(ShareError, match="batch"):
        tcp_share.counter
    tcp_share.counter += 1
    assert tcp_share.counter == 1


_CLIENT = textwrap.dedent("""
    import pickle, sys
    share = pickle.loads(sys.stdin.buffer.read())
    for i in range({ops}):
        share.counter += 1
    print("client done", flush=True)
""")


def _client(share_bytes: bytes, ops: int, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _CLIENT.format(ops=ops)], input=share_bytes,
                          capture_output=True, timeout=60, env=env)


@pytest.mark.timeout(120)
def test_wildcard_bind_with_key_reached_by_independent_processes():
    share = Share(transport="tcp://0.0.0.0:0", key=KEY)
    try:
        share.counter = 0
        data = pickle.dumps(share)
        assert KEY.encode() not in data  # the key never travels with the Share
        assert "tcp://127.0.0.1:" in share._sk_client.candidates[-1]
        env = dict(os.environ, SKPROCESSING_KEY=KEY)
        results = [_client(data, 2000, env) for _ in range(2)]
        for result in results:
            assert result.returncode == 0, result.stderr.decode()[-2000:]
        assert share.counter == 4000
    finally:
        share.stop()


@pytest.mark.timeout(60)
def test_advertise_replaces_the_listeners_reachable_addresses():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    share = Share(transport=f"tcp://0.0.0.0:{port}", key=KEY,
                  advertise=f"tcp://127.0.0.1:{port}")
    try:
        assert share._sk_client.candidates == (f"tcp://127.0.0.1:{port}",)
        share.counter = 0
        result = _client(pickle.dumps(share), 300, dict(os.environ, SKPROCESSING_KEY=KEY))
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        assert share.counter == 300
    finally:
        share.stop()


@pytest.mark.timeout(60)
def test_a_process_without_the_key_gets_a_clear_error():
    share = Share(transport="tcp://0.0.0.0:0", key=KEY)
    try:
        share.counter = 0
        env = {k: v for k, v in os.environ.items() if k != "SKPROCESSING_KEY"}
        result = _client(pickle.dumps(share), 1, env)
        assert result.returncode != 0
        err = result.stderr.decode()
        assert "ShareError" in err and "SKPROCESSING_KEY" in err, err[-2000:]
        assert share.counter == 0
    finally:
        share.stop()


class Watch(Skprocess):
    """Reads the share until that fails; returns (error type, seconds since the last good read)."""

    def __init__(self, share):
        self.process_config.runs = 1
        self.share = share

    def __run__(self):
        last_good = time.monotonic()
        self.tell("reading")
        try:
            while True:
                self.share.counter += 1
                self.share.counter
                last_good = time.monotonic()
                time.sleep(0.005)
        except Exception as exc:
            self.outcome = (type(exc).__name__, time.monotonic() - last_good)

    def __result__(self):
        return self.outcome


@pytest.mark.timeout(60)
def test_a_vanished_coordinator_raises_share_error_within_the_heartbeat_limit(assert_reaped):
    url = URL + FAST
    share = Share(transport=url)
    share.counter = 0
    watcher = Watch(share)
    watcher.start(transport=url)
    assert_reaped(watcher._sk.handle.pid)
    assert watcher.listen(30) == "reading"
    time.sleep(0.2)
    pid = share._sk_owner.handle.pid
    os.kill(pid, signal.SIGKILL)  # the coordinator's host "vanishes"
    assert wait_gone(pid, 10)
    began = time.monotonic()
    with pytest.raises(ShareError, match="gone|reach"):
        share.counter  # the owner's own client, too
    assert time.monotonic() - began < 4.0  # dead_after 1.5 s + a tick
    kind, waited = watcher.result()
    assert kind == "ShareError"
    assert waited < 4.0
    assert share.has_error
    with pytest.warns(RuntimeWarning, match="objects are lost"):
        share.stop()


class Appender(Skprocess):
    def __init__(self, share):
        self.process_config.runs = 1
        self.share = share

    def __run__(self):
        i = 0
        while True:
            self.share.items.append(i)
            i += 1


@pytest.mark.timeout(90)
def test_a_client_killed_mid_stream_leaves_the_coordinator_consistent(tcp_share, assert_reaped):
    tcp_share.items = []
    worker = Appender(tcp_share)
    worker.start(transport=URL)
    assert_reaped(worker._sk.handle.pid)
    deadline = time.monotonic() + 20
    while len(tcp_share.items) < 2000 and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.kill()
    items = list(tcp_share.items)
    assert len(items) >= 2000
    assert items == list(range(len(items)))  # a prefix: in order, nothing half-applied
    tcp_share.items.append("after")
    assert tcp_share.items[-1] == "after"


def _bump(args):
    share, n = args
    for _ in range(n):
        share.counter += 1
    return n


@pytest.mark.timeout(120)
def test_share_on_a_zeromq_pool_transport(assert_reaped):
    from skprocessing import Pool
    with Pool(2, transport=URL) as pool:
        share = Share(transport=pool)
        try:
            share.counter = 0
            assert pool.map(_bump, [(share, 500)] * 8) == [500] * 8
            assert share.counter == 4000
        finally:
            share.stop()


def test_a_local_share_used_where_it_cannot_be_reached_says_what_to_do():
    from skprocessing.core.share._client import client_from_token
    share = Share()
    try:
        token = list(share._sk_client.token())
        token[0] = "elsewhere-" + token[0]  # another host's view: not this process's client
        token[1] = f"local://@skprocessing-nowhere-{os.getpid()}"
        token[4] = (token[1],)
        token[5] = "some-other-host"
        client = client_from_token(tuple(token))
        with pytest.raises(ShareError, match="Share\\(transport=pool\\)"):
            client.request(1 | 0x80, (("counter",),), "reading")
    finally:
        share.stop()


@pytest.mark.timeout(120)
def test_a_plain_share_sent_to_a_zeromq_pool_moves_onto_the_pools_transport(assert_reaped):
    from skprocessing import Pool
    with Pool(2, transport=URL) as pool:
        share = Share()  # no transport named: this host only, until it is sent to the pool
        try:
            share.counter = 0
            share.log = ["before"]
            assert share._sk_client.transport_spec is None
            assert pool.map(_bump, [(share, 500)] * 4) == [500] * 4      # in the items
            assert pool.map(lambda n: _bump((share, n)), [100] * 3) == [100] * 3  # in a closure
            assert share.counter == 2300  # nothing assigned before the move was lost
            assert share.log == ["before"]
            assert str(share._sk_client.transport_spec).startswith("tcp://")
        finally:
            share.stop()


@pytest.mark.timeout(120)
def test_a_share_moved_after_local_copies_were_made_says_so_and_a_named_one_stays():
    from skprocessing import Pool
    with Pool(1, transport=URL) as pool:
        share, pinned = Share(), Share(transport="local")
        try:
            share.counter = pinned.counter = 0
            pickle.dumps(share)  # a copy for some other process, on the local transport
            with pytest.warns(RuntimeWarning, match="moved onto that pool's transport"):
                pool.map(_bump, [(share, 10)])
            assert share.counter == 10
            pool.map(_bump, [(pinned, 10)])  # same host: the local transport reaches it
            assert pinned.counter == 10
            assert pinned._sk_client.transport_spec == "local"
        finally:
            share.stop()
            pinned.stop()


class _Setter(Skprocess):
    """Sets share.x to whatever it is told, then says so."""

    def __init__(self, share):
        self.share = share
        self.process_config.runs = None

    def __run__(self):
        value = self.listen(30)
        if value is None:
            self.stop()
            return
        self.share.x = value
        self.tell("set")


@pytest.mark.timeout(120)
def test_a_held_write_leaves_before_any_later_message_of_its_process(tcp_share, assert_reaped):
    """Writes are batched, but a tell sent after a write must not overtake it: the child
    acts on the tell with a write of its own, which must be the one that stays."""
    tcp_share.x = None
    setter = _Setter(tcp_share)
    setter.start(transport=tcp_share._sk_owner.transport)
    assert_reaped(setter._sk.handle.pid)
    overtaken = []
    for i in range(200):
        tcp_share.x = ("parent", i)      # held in a batch for up to LINGER
        setter.tell(("child", i))
        assert setter.listen(20) == "set"
        if tcp_share.x != ("child", i):
            overtaken.append(i)
    setter.tell(None)
    setter.wait(30)
    assert not overtaken


@pytest.mark.timeout(120)
def test_a_share_made_before_the_pool_moves_and_loses_nothing_to_other_threads():
    import threading
    from skprocessing import Pool
    share = Share()  # before the pool: its workers are forked knowing the local client
    share.counter = 0
    try:
        with Pool(2, transport="ipc://") as pool:
            written, stop = [0], threading.Event()

            def writer():
                while not stop.is_set():
                    share.counter += 1
                    written[0] += 1
            thread = threading.Thread(target=writer)
            thread.start()
            try:
                time.sleep(0.2)
                assert pool.map(_bump, [(share, 100)] * 4) == [100] * 4  # the move happens here
                time.sleep(0.2)
            finally:
                stop.set()
                thread.join(30)
            assert share.counter == written[0] + 400
            assert not str(share._sk_client.address).startswith("local")
            assert share._sk_client.address != pool.address  # beside the pool, not on it
            for pid in pool.worker_pids:  # replacements must still reach the pool
                os.kill(pid, signal.SIGKILL)
            assert pool.map(_bump, [(share, 1)] * 4, retries=2) == [1] * 4
            assert share.counter == written[0] + 404
    finally:
        share.stop()


def _set_x(args):
    share, value = args
    share.x = value
    return value


@pytest.mark.timeout(120)
def test_a_held_write_leaves_before_a_pool_task_sent_after_it(assert_reaped):
    """The pool's scheduler thread sends the task; the write made before the call on the
    caller's thread must still be on its way first, or the worker's write is overtaken."""
    from skprocessing import Pool
    with Pool(1, transport=URL) as pool:
        share = Share(transport=pool)
        try:
            share.x = None
            overtaken = []
            for i in range(200):
                share.x = ("parent", i)  # held in a batch for up to LINGER
                assert pool.map(_set_x, [(share, ("worker", i))]) == [("worker", i)]
                if share.x != ("worker", i):
                    overtaken.append(i)
            assert not overtaken
        finally:
            share.stop()


@pytest.mark.timeout(120)
def test_pickling_a_share_bound_for_a_network_pool_changes_nothing(assert_reaped):
    # The move a network pool's task calls for is made after the pickling, never inside
    # it (a chunk is pickled on the scheduler thread): __reduce__ only notes it.
    from skprocessing import Pool
    from skprocessing.core._destination import bound_for
    with Pool(1, transport=URL) as pool:
        share = Share()
        try:
            share.counter = 0
            before = (share._sk_owner.handle.pid, share._sk_client.address)
            with bound_for(pool) as moves:
                pickle.dumps(share)
                pickle.dumps(share)
            assert (share._sk_owner.handle.pid, share._sk_client.address) == before
            assert len(moves) == 1 and share._sk_owner.movable  # noted once, not made
            assert pool.map(_bump, [(share, 10)] * 2) == [10] * 2  # the pool's call moves it
            assert share._sk_owner.handle.pid != before[0]
            assert share.counter == 20
        finally:
            share.stop()
