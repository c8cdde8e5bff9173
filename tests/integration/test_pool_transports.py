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
