"""Placeholders for resources that need the outside world to come back.

A `Reconnector` travels instead of a socket, a database connection, an unreachable file
or a thread; it carries only what is needed to rebuild the resource, never a secret.
`reconnect(auth=None)` builds the live resource; `reconnect_all` (in `_reconnect.py`)
replaces every placeholder inside an object. A failed `reconnect_all` leaves the
placeholder in place with the reason in `reconnect_error`.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from typing import Any

__all__ = ["Reconnector", "ThreadReconnector", "FileReconnector", "SocketReconnector",
           "PipeReconnector", "MatchReconnector", "SubprocessReconnector", "PopenSnapshot"]


class Reconnector:
    """Base of every placeholder. Subclasses implement `_connect(auth)`.

    `auth_keys` are the names under which `reconnect_all(**auth)` looks up this
    placeholder's credentials (`"sqlite3.Connection"`, `"psycopg2.Connection"`, ...).
    """

    auth_keys: tuple[str, ...] = ()
    reconnect_error: str | None = None
    _live: Any = None
    # Placeholders that need no credentials may reconnect on first use, as cerial's do:
    # `restored.db.execute(...)` works without an explicit reconnect().
    _lazy = False

    def reconnect(self, auth: Any = None) -> Any:
        """Build the live resource (a new one on every call). Raises what the underlying
        library raises when it cannot (connection refused, file missing, ...)."""
        live = self._connect(auth)
        self._live = live  # a cursor's placeholder reuses its connection's live object
        self.reconnect_error = None
        return live

    def _connect(self, auth: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} cannot reconnect")

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the placeholder itself lacks. Private and dunder names
        # never reconnect (pickle and copy probe those on half-built objects).
        if name.startswith("_") or not self._lazy_now():
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}"
                                 + ("" if name.startswith("_") else ": call reconnect() first"))
        live = self._live if self._live is not None else self.reconnect()
        return getattr(live, name)

    def _lazy_now(self) -> bool:
        return self._lazy

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_live", None)  # a live resource never travels with its placeholder
        return state

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()
                           if not k.startswith("_") and k != "reconnect_error")
        failed = f" (reconnect failed: {self.reconnect_error})" if self.reconnect_error else ""
        return f"<{type(self).__name__} {fields}{failed}>"


class ThreadReconnector(Reconnector):
    """A `threading.Thread` (its class, name, target, args, kwargs, daemon flag and the
    subclass's own attributes). `reconnect(start=False)` builds a new, unstarted thread."""

    auth_keys = ("threading.Thread",)
    _lazy = True

    def __init__(self, cls: type, name: str, target: Any, args: tuple, kwargs: dict,
                 daemon: bool, attributes: dict[str, Any]):
        self.cls, self.name, self.target = cls, name, target
        self.args, self.kwargs, self.daemon = args, kwargs, daemon
        self.attributes = attributes

    def reconnect(self, auth: Any = None, start: bool = False) -> threading.Thread:
        thread = super().reconnect(auth)
        if start:
            thread.start()
        return thread

    def _connect(self, auth: Any) -> threading.Thread:
        thread = self.cls.__new__(self.cls)
        threading.Thread.__init__(thread, name=self.name, target=self.target, args=self.args,
                                  kwargs=self.kwargs, daemon=self.daemon)
        thread.__dict__.update(self.attributes)
        return thread


class FileReconnector(Reconnector):
    """An open file that could not be reopened where it was rebuilt (or an unnamed one).
    `reconnect()` reopens `path` with `mode` (never truncating) and seeks to `position`."""

    auth_keys = ("io.TextIOWrapper", "io.BufferedReader", "io.BufferedWriter")

    def __init__(self, path: Any, mode: str, position: int | None, encoding: str | None,
                 reason: str | None = None):
        self.path, self.mode, self.position, self.encoding = path, mode, position, encoding
        self.reconnect_error = reason

    def _connect(self, auth: Any) -> Any:
        from ._io import reopen
        return reopen(self.path, self.mode, self.position, self.encoding)


class SocketReconnector(Reconnector):
    """A `socket.socket`: family, type, proto, the address it was bound to and its peer.
    `reconnect()` makes a new socket, connected to `peer` if it had one, else bound to
    `bound` (when that was a fixed address)."""

    auth_keys = ("socket.socket",)

    def __init__(self, family: int, type: int, proto: int, bound: Any, peer: Any,
                 timeout: float | None):
        self.family, self.type, self.proto = family, type, proto
        self.bound, self.peer, self.timeout = bound, peer, timeout

    def _connect(self, auth: Any) -> socket.socket:
        sock = socket.socket(self.family, self.type, self.proto)
        try:
            sock.settimeout(self.timeout)
            if self.peer:
                sock.connect(self.peer)
            elif self.bound and (not isinstance(self.bound, tuple) or self.bound[1]):
                sock.bind(self.bound)
        except BaseException:
            sock.close()
            raise
        return sock


class PipeReconnector(Reconnector):
    """One end of a `multiprocessing.Pipe` (a `multiprocessing.connection.Connection`):
    its descriptor means nothing in another process, so it never travels. `reconnect()`
    makes a NEW pipe of the same kind and returns the end this was (`endpoint` "read" or
    "write" for a one-way pipe); `peer()` gives that pipe's other end, `pair()` both.
    Data buffered in the old pipe is not carried; the old peer is not connected. For a
    pipe to a child process, `skprocessing.Pipe` carries the real connection."""

    auth_keys = ("multiprocessing.connection.Connection",)
    _lazy = True  # needs no credentials: the first use of a Connection method makes the pipe
    _peer: Any = None

    def __init__(self, readable: bool, writable: bool, closed: bool):
        self.readable, self.writable, self.closed = readable, writable, closed
        self.duplex = readable and writable
        self.has_endpoint = not self.duplex
        self.endpoint = None if self.duplex else ("read" if readable else "write")

    def pair(self) -> tuple[Any, Any]:
        """(this end, the other end) of a new pipe; `reconnect()` returns the first."""
        import multiprocessing
        receiver, sender = multiprocessing.Pipe(duplex=self.duplex)  # one way: recv, send
        mine, other = (sender, receiver) if self.endpoint == "write" else (receiver, sender)
        self._live, self._peer, self.reconnect_error = mine, other, None
        return mine, other

    def _connect(self, auth: Any) -> Any:
        return self.pair()[0]

    def peer(self) -> Any:
        """The other end of the pipe `reconnect()` made (making it first if none yet)."""
        if self._peer is None:
            self.reconnect()
        return self._peer

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_peer", None)
        return state


class MatchReconnector(Reconnector):
    """An `re.Match`: the pattern, the string searched, and the span and groups matched.
    `reconnect()` re-runs the pattern to get the same match back as a real `re.Match`;
    so does the first use of any `re.Match` method on the placeholder (`.group()`)."""

    auth_keys = ("re.Match",)
    _lazy = True

    def __init__(self, pattern: re.Pattern, string: Any, pos: int, endpos: int,
                 matched_span: tuple[int, int], matched_groups: tuple):
        self.pattern, self.string, self.pos, self.endpos = pattern, string, pos, endpos
        self.matched_span, self.matched_groups = matched_span, matched_groups

    def _connect(self, auth: Any) -> re.Match:
        span = tuple(self.matched_span)
        match = self.pattern.match(self.string, span[0], self.endpos)
        if match is not None and match.span() == span:
            return match
        for match in self.pattern.finditer(self.string, self.pos, self.endpos):
            if match.span() == span:
                return match
        raise ValueError(f"the pattern no longer matches at {span} (the string changed?)")


class PopenSnapshot:
    """What was known about a `subprocess.Popen` when it was serialized (not a process)."""

    def __init__(self, args: Any, pid: int, returncode: int | None):
        self.args, self.pid, self.returncode = args, pid, returncode

    def poll(self) -> int | None:
        return self.returncode

    def __repr__(self) -> str:
        return f"<PopenSnapshot args={self.args!r} pid={self.pid} returncode={self.returncode}>"


class SubprocessReconnector(Reconnector):
    """A `subprocess.Popen`: its args and, in `snapshot`, its pid and return code then.
    `reconnect(**popen_kwargs)` starts a NEW process with the same args."""

    auth_keys = ("subprocess.Popen",)

    def __init__(self, args: Any, snapshot: PopenSnapshot):
        self.args, self.snapshot = args, snapshot

    def reconnect(self, auth: Any = None, **popen_kwargs: Any) -> subprocess.Popen:
        process = subprocess.Popen(self.args, **popen_kwargs)
        self._live, self.reconnect_error = process, None
        return process
