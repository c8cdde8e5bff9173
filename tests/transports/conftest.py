"""Fixtures for the transport conformance suite: every test runs over every backend."""

from __future__ import annotations

import pytest

from skprocessing.transports.local import LocalTransport
from skprocessing.transports.memory import MemoryTransport
from skprocessing.transports.zmq import ZmqTransport

# Short heartbeats so that a lost peer is noticed quickly in tests.
HEARTBEAT, DEAD_AFTER = 0.2, 1.0
_LIVENESS = f"heartbeat={HEARTBEAT}&dead_after={DEAD_AFTER}"

TRANSPORTS = {
    "local": lambda: LocalTransport(),
    "memory": lambda: MemoryTransport(),
    "zmq-tcp": lambda: ZmqTransport(f"tcp://127.0.0.1?{_LIVENESS}"),
    "zmq-ipc": lambda: ZmqTransport(f"ipc://?{_LIVENESS}"),
}


def detection_limit(transport) -> float:
    """How long a dead peer may take to show as ChannelClosed on this transport."""
    return DEAD_AFTER + 1.5 if isinstance(transport, ZmqTransport) else 2.0


@pytest.fixture(params=list(TRANSPORTS))
def transport(request):
    t = TRANSPORTS[request.param]()
    yield t
    t.close()


@pytest.fixture
def zmq_transport():
    t = ZmqTransport(f"tcp://127.0.0.1?{_LIVENESS}")
    yield t
    t.close()
