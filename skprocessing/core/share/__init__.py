"""Share: one consistent shared state across processes, served by a coordinator process.

    share.py         the public `Share` (owner: start/stop; everyone: attributes)
    proxies.py       proxies for shared objects; `_values.py` marked numbers and strings
    coordinator.py   the coordinator process's loop (ordering, pipelining, sessions)
    _handler.py      request -> store operation -> answer;  _store.py the objects
    _client.py       one process's connection;  _protocol.py the wire format
"""

from ._protocol import ShareError
from .proxies import Proxy
from .share import Share

__all__ = ["Share", "ShareError", "Proxy"]
