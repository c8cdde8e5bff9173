"""Read a `sqlite3.Connection` from a thread that does not own it.

A connection made with the default `check_same_thread=True` refuses every call from
another thread, yet a Pool serializes its items on its own scheduler thread. Reading the
database's file name or its contents is safe from any thread at the C level (sqlite is
built serialized-threadsafe), so these two readers call the sqlite library directly on the
connection's handle: CPython's connection object keeps its `sqlite3 *` as the first field
after the object header (true from 3.8 to 3.13, free-threaded builds included, since the
header size is read from `object.__basicsize__`).
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

__all__ = ["owned_elsewhere", "file_name", "contents"]


def owned_elsewhere(error: BaseException) -> bool:
    """True if `error` is sqlite3's refusal of a call from a thread that did not create it,
    and the sqlite library is serialized-threadsafe (so reading it from here is safe)."""
    import sqlite3  # only once a connection is being serialized
    return (isinstance(error, sqlite3.ProgrammingError) and "same thread" in str(error)
            and sqlite3.threadsafety == 3)


@functools.cache
def _library() -> Any:
    import _sqlite3
    library = ctypes.CDLL(_sqlite3.__file__)  # its symbols include the sqlite it links
    library.sqlite3_db_filename.restype = ctypes.c_char_p
    library.sqlite3_db_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    library.sqlite3_serialize.restype = ctypes.c_void_p
    library.sqlite3_serialize.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                          ctypes.POINTER(ctypes.c_int64), ctypes.c_uint]
    library.sqlite3_free.argtypes = [ctypes.c_void_p]
    return library


def _handle(connection: Any) -> int:
    handle = ctypes.c_void_p.from_address(id(connection) + object.__basicsize__).value
    if not handle:
        import sqlite3
        raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
    return handle


def file_name(connection: Any) -> str:
    """The main database's file name ("" for an in-memory or temporary database)."""
    name = _library().sqlite3_db_filename(_handle(connection), b"main")
    return (name or b"").decode()


def contents(connection: Any) -> bytes:
    """The main database's bytes, as `Connection.serialize()` gives them."""
    library, size = _library(), ctypes.c_int64(0)
    data = library.sqlite3_serialize(_handle(connection), b"main", ctypes.byref(size), 0)
    if not data:
        return b""  # nothing written yet (sqlite's answer for an empty database)
    try:
        return ctypes.string_at(data, size.value)
    finally:
        library.sqlite3_free(data)
