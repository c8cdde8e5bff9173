"""cerial: the default serializer. Anything cloudpickle handles, plus live resources.

    from skprocessing.serializers import cerial
    data = cerial.serialize(job)          # bytes; SerializationError names the failing part
    job2 = cerial.deserialize(data)       # DeserializationError for bad bytes
    cerial.reconnect_all(job2, **{"psycopg2.Connection": {"*": password}})

Built on cloudpickle's Pickler with a table of reducers (`_table.py`) for locks, events,
threads, queues, files, sockets, database connections, loggers, regex matches,
subprocesses, generators, mmaps, weak references and context variables (`_sync.py`,
`_io.py`, `_db.py`, `_python.py`). Resources that need the outside world come back as
`Reconnector` placeholders (`reconnectors.py`); `reconnect_all` (`_reconnect.py`) turns
them into live ones. As a plugin (`CerialSerializer`, name "cerial") it makes protocol-5
frames with large buffers out of band, like the `pickle` plugin.
"""

from __future__ import annotations

from ...errors import DeserializationError, SerializationError
from ..pickle import PickleSerializer
from . import _db, _io, _python, _sync  # noqa: F401  (each registers its reducers)
from ._db import CursorReconnector, DbReconnector
from ._pickler import CerialPickler, deserialize, dumps, serialize
from ._reconnect import reconnect_all
from ._table import register_reducer
from .reconnectors import (FileReconnector, MatchReconnector, PipeReconnector, PopenSnapshot,
                           Reconnector, SocketReconnector, SubprocessReconnector, ThreadReconnector)

__all__ = [
    "serialize", "deserialize", "reconnect_all", "register_reducer", "CerialSerializer",
    "CerialPickler", "SerializationError", "DeserializationError", "Reconnector",
    "ThreadReconnector", "FileReconnector", "SocketReconnector", "PipeReconnector",
    "MatchReconnector", "SubprocessReconnector", "PopenSnapshot", "DbReconnector", "CursorReconnector",
]


class CerialSerializer(PickleSerializer):
    """The `cerial` plugin: frames `[pickle, *out-of-band buffers]` made by cerial's pickler.
    Raises `SerializationError` naming the failing part; `loads` raises
    `DeserializationError` for bad input."""

    name = "cerial"
    _dumps = staticmethod(dumps)
