"""Reducers for files, standard streams, `mmap`, sockets, pipes, subprocesses and loggers.

An open file travels as (path, mode, position, encoding) and is reopened where it lands,
never truncated (`w` becomes `r+`); if it cannot be reopened there, or it has no path (a
pipe, a descriptor), it lands as a `FileReconnector` that says why. `io.StringIO` and
`io.BytesIO` need nothing here: pickle already keeps their contents and position.
"""

from __future__ import annotations

import io
import logging
import mmap
import multiprocessing.connection
import os
import socket
import subprocess
import sys
from typing import Any

from ._table import register_reducer
from .reconnectors import (FileReconnector, PipeReconnector, PopenSnapshot, SocketReconnector,
                           SubprocessReconnector)

__all__ = ["reopen"]

_STD_STREAMS = ("stdin", "stdout", "stderr")


def _reopen_mode(mode: str) -> str:
    """The mode that reopens a file without destroying it: write modes become `r+`."""
    binary = "b" if "b" in mode else ""
    if "a" in mode:
        return "a" + ("+" if "+" in mode else "") + binary
    if "w" in mode or "x" in mode:
        return "r+" + binary
    return mode.replace("U", "")


def reopen(path: Any, mode: str, position: int | None, encoding: str | None) -> Any:
    """Open `path` again as it was; raises `OSError` if it cannot."""
    binary = "b" in mode
    file = open(path, _reopen_mode(mode), encoding=None if binary else encoding)
    if position is not None and "a" not in mode:
        file.seek(position)
    return file


def rebuild_file(path: Any, mode: str, position: int | None, encoding: str | None) -> Any:
    """Reopen a file where it lands; a `FileReconnector` (with the reason) if it cannot."""
    try:
        return reopen(path, mode, position, encoding)
    except OSError as exc:
        return FileReconnector(path, mode, position, encoding,
                               reason=f"{type(exc).__name__}: {exc}")


def rebuild_std_stream(name: str) -> Any:
    return getattr(sys, name)


def _reduce_file(file: Any) -> Any:
    for name in _STD_STREAMS:
        if file is getattr(sys, name) or file is getattr(sys, f"__{name}__"):
            return rebuild_std_stream, (name,)
    path = getattr(file, "name", None)
    mode = getattr(file, "mode", "rb")
    encoding = getattr(file, "encoding", None)
    if file.closed:
        return FileReconnector, (path, mode, None, encoding, "the file was closed")
    if not isinstance(path, (str, bytes)):
        return FileReconnector, (path, mode, None, encoding,
                                 "the file has no path (a pipe or a bare descriptor)")
    try:
        file.flush()  # what was written must be on disk for the reopened copy to see it
        position = file.tell() if file.seekable() else None
    except (OSError, ValueError):
        position = None
    return rebuild_file, (os.path.abspath(path), mode, position, encoding)


def rebuild_mmap(data: bytes, position: int) -> mmap.mmap:
    memory = mmap.mmap(-1, max(len(data), 1))
    memory.write(data)
    memory.seek(position)
    return memory


def _reduce_mmap(memory: mmap.mmap) -> Any:
    # A map's file cannot be found from the map: it comes back anonymous, same bytes.
    if memory.closed:
        return rebuild_mmap, (b"", 0)
    return rebuild_mmap, (memory[:], memory.tell())


def _address(call: Any) -> Any:
    try:
        return call()
    except OSError:
        return None


def _reduce_socket(sock: socket.socket) -> Any:
    if sock.fileno() == -1:
        return SocketReconnector, (sock.family, sock.type, sock.proto, None, None, None)
    return SocketReconnector, (int(sock.family), int(sock.type), sock.proto,
                               _address(sock.getsockname), _address(sock.getpeername),
                               sock.gettimeout())


def _reduce_connection(connection: Any) -> Any:
    # Its descriptor is only valid here (and pickled by number it would name another file
    # in the receiver, or close one twice in this process): a placeholder travels instead.
    closed = connection.closed
    return PipeReconnector, (not closed and connection.readable, not closed and connection.writable,
                             closed)


def _reduce_popen(process: subprocess.Popen) -> Any:
    snapshot = PopenSnapshot(process.args, process.pid, process.poll())
    return SubprocessReconnector, (process.args, snapshot)


def rebuild_logger(name: str | None, level: int) -> logging.Logger:
    logger = logging.getLogger(name)
    if level != logging.NOTSET:
        logger.setLevel(level)
    return logger


def _reduce_logger(logger: logging.Logger) -> Any:
    # By name, like pickle does, so it is the receiver's logger (its handlers), plus the level.
    name = None if isinstance(logger, logging.RootLogger) else logger.name
    return rebuild_logger, (name, logger.level)


for _file_type in (io.TextIOWrapper, io.BufferedReader, io.BufferedWriter, io.BufferedRandom,
                   io.FileIO):
    register_reducer(_file_type, _reduce_file)
register_reducer(mmap.mmap, _reduce_mmap)
register_reducer(socket.socket, _reduce_socket)
register_reducer(subprocess.Popen, _reduce_popen)
register_reducer(multiprocessing.connection.Connection, _reduce_connection)
register_reducer(logging.Logger, _reduce_logger)
register_reducer(logging.RootLogger, _reduce_logger)  # it has a __reduce__ that drops the level
