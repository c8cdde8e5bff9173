"""The same Pool over every transport that is installed: the scheduler speaks only the
transport interface, so the ZeroMQ backend must run it unchanged."""

from __future__ import annotations

import os

import pytest

from skprocessing import ProcessDiedError
from skprocessing.core.pool import Pool
from tests.conftest import wait_gone

pytestmark = pytest.mark.timeout(120)


def _transports():
    specs = ["local"]
    try:
        import skprocessing.transports.zmq  # noqa: F401
        specs.append("tcp://127.0.0.1")
    except ImportError:
        pass
    return specs


def exit_on_two(x):
    if x == 2:
        os._exit(3)
    return x


@pytest.mark.parametrize("spec", _transports())
def test_map_faults_and_close_over_each_transport(spec):
    factor = 5
    with Pool(2, transport=spec) as pool:
        assert pool.map(lambda x: x * factor, range(1000)) == [x * factor for x in range(1000)]
        assert list(pool.imap(abs, iter(range(-5, 0)))) == [5, 4, 3, 2, 1]
        with pytest.raises(ProcessDiedError, match="item 2"):
            pool.map(exit_on_two, range(4), chunksize=1)
        assert pool.star().map(pow, [(2, 5)]) == [32]
        pids = pool.worker_pids
    for pid in pids:
        assert wait_gone(pid)


# -- the transport a pool uses, and who closes it ----------------------------------------------

def _zmq_specs():
    return [s for s in ("zmq://", "tcp://127.0.0.1") if _has_zmq()]


def _has_zmq() -> bool:
    try:
        import skprocessing.transports.zmq  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.mark.parametrize("end", ["close", "terminate"])
@pytest.mark.parametrize("spec", _zmq_specs())
def test_a_pool_closes_the_transport_it_built(spec, end):
    pool = Pool(1, transport=spec, key="pool-transport-test-key" if spec.startswith("tcp") else None)
    transport = pool.transport
    assert transport.url.startswith(spec.rstrip("/"))
    assert pool.map(abs, [-1, -2]) == [1, 2]
    hub = transport._hub_dir  # the pipe hub's private ipc directory, made for the pool's own pipe
    assert hub and os.path.isdir(hub)
    getattr(pool, end)()
    assert not os.path.exists(hub)  # closed with the pool, not at exit
    assert transport._hub is None


@pytest.mark.parametrize("spec", _zmq_specs())
def test_a_transport_passed_in_is_the_callers_and_stays_open(spec):
    from skprocessing.transports import get_transport
    transport = get_transport(spec)
    try:
        with Pool(1, transport=transport) as pool:
            assert pool.transport is transport
            assert pool.map(abs, [-3]) == [3]
            hub = transport._hub_dir
        assert hub and os.path.isdir(hub)
        with Pool(1, transport=transport) as again:  # still usable by the next pool
            assert again.map(abs, [-4]) == [4]
    finally:
        transport.close()
    assert not os.path.exists(hub)


def test_the_default_transport_is_shared_and_not_the_pools_to_close():
    from skprocessing.transports import get_transport
    with Pool(1) as pool:
        assert pool.transport is get_transport()
    with pytest.raises(AttributeError):
        pool.transport = get_transport()  # read-only


@pytest.mark.skipif(not _has_zmq(), reason="needs pyzmq")
def test_a_share_started_on_a_pool_outlives_the_pool():
    # The Share serves on a copy of the pool's transport, so closing the pool (and the
    # transport it built) leaves the Share's own pipes and ports alone.
    import time
    from skprocessing.core.share import Share
    pool = Pool(1, transport="tcp://127.0.0.1?heartbeat=0.2&dead_after=1.0")
    share = Share(transport=pool)
    try:
        share.counter = 1
        pool.close()
        time.sleep(2.0)  # past dead_after: a coordinator that lost its owner would be gone
        share.counter += 1
        assert share.counter == 2
    finally:
        assert share.stop() is True
