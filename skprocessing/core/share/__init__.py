"""Share: one consistent shared state across processes, served by a coordinator process.

    share.py         the public `Share` (owner: start/stop; everyone: attributes)
    proxies.py       proxies for shared objects; `_values.py` marked numbers and strings
    coordinator.py   the coordinator process's loop (ordering, pipelining, sessions)
    _barrier.py      the coordinator's read barrier over a network transport (ZeroMQ)
    _handler.py      request -> store operation -> answer;  _store.py the objects
    _client.py       one process's client;  _protocol.py the wire format
    _connection.py   the client's connection (batched writes, reader thread, write windows,
                     the race between a listener's reachable addresses)
"""

from ._protocol import ShareError
from .proxies import Proxy
from .share import Share

__all__ = ["Share", "ShareError", "Proxy"]
