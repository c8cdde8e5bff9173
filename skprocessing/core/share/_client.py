"""One process's connection to one Share: requests, pipelined writes, errors.

Every copy of a Share (and every proxy from it) in a process uses the same `Client`, found
by the share's key, so a process reads its own writes whichever copy made them. The
connection is opened on first use (lazily, so a Share inside an unpickled object costs
nothing until touched) and again after a fork. While the owner's Share is stopped its
client talks to an in-process store through the same handler the coordinator uses.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from ...errors import ChannelClosed, SerializationError, TransportError
from ...serializers.codec import Codec
from ...transports import get_transport
from ...transports.base import Capability, Frames, Transport
from .. import _task_writes
from ._connection import Connection, batched, open_connection
from ._handler import Handler, Session
from ._protocol import AUG, CLEAR, DEL, ERR, REPLY, SET, ShareError, Wire, format_path
from ._resume import Journal

__all__ = ["Client", "client_from_token"]


class Client:
    """Sends operations to the coordinator (or, while stopped, the owner's local store)."""

    def __init__(self, key: str, address: str | None, transport_spec: Any, codec: Wire,
                 candidates: tuple[str, ...] = (), origin: str = "", exactly_once: bool = False):
        self.key = key
        # Writes made inside a pool task are held and sent with its result (_task_writes).
        self.exactly_once = exactly_once
        self.address = address            # where the coordinator listens (for messages)
        self.candidates = candidates      # where to connect (several: any that answers)
        self.origin = origin or _host()   # the host that created the Share (for messages)
        self.transport_spec = transport_spec
        self.transport: Transport | None = None  # the owner's own (it may hold a key)
        self.owner_pid = 0                # the owner's pid, on the owner's own client
        self.codec = codec
        self.roots: dict[str, Any] = {}   # root name -> proxy, for names known to hold objects
        self.types: dict[str, Any] = {}   # type key -> TypeInfo (method names), per connection
        self.epoch = -1
        self.error: str | None = None     # why the last exchange failed, until one succeeds
        # Reentrant: the owner holds it through a whole stop/start (or a move), during which
        # other threads' operations wait instead of landing in a store about to be left.
        self._lock = threading.RLock()
        self._channel: Connection | None = None
        self._journal = Journal()  # what a network connection must be able to send again
        self._local: tuple[Handler, Session] | None = None
        _live.add(self)

    def token(self) -> tuple:
        """What another process needs to reach the same coordinator. Never a signing key:
        the receiving process takes its own (environment, key file, agent, parent)."""
        return (self.key, self.address, self.transport_spec, self.codec.token(),
                self.candidates, self.origin, self.exactly_once)

    # -- modes -------------------------------------------------------------------------------
    def go_local(self, handler: Handler) -> None:
        with self._lock:
            self._close_channel()
            self._local = (handler, Session())
            self._forget_types()

    def go_remote(self) -> None:
        with self._lock:
            self._local = None
            self.error = None  # a new coordinator: earlier failures are history
            self._journal = Journal()
            self._forget_types()

    # -- requests ----------------------------------------------------------------------------
    # `what` names the operation in error messages: a string, or (verb, path), formatted
    # only when there is an error (it is built for every operation).
    def request(self, op: int, payload: tuple, what: Any = "") -> Any:
        """Send and wait for the answer; raise what the operation raised."""
        if op in _HELD_REQUESTS and self.holds_task_writes():
            self._hold(op, payload, what)  # it answers nothing but an error: held, no answer
            return None
        frames = self._encode(op | REPLY, payload, what)
        windows: list[Frames] = []
        with self._lock:
            if self._local is not None:
                answer = self._local[0].handle(self._local[1], frames)
            else:
                answer, windows = self._exchange(frames, what)
        try:
            return self._result(answer)
        finally:
            for window in windows:  # failures of earlier pipelined writes, reported too
                self._result(window)

    def post(self, op: int, payload: tuple, what: Any = "") -> None:
        """Send without waiting (pipelined); a failure is reported with the next answer."""
        if self.exactly_once and _task_writes.holding():
            self._hold(op, payload, what)
            return
        self._post_frames(self._encode(op, payload, what), what)

    def _post_frames(self, frames: Frames, what: Any) -> None:
        with self._lock:
            if self._local is not None:
                self._local[0].handle(self._local[1], frames)
                return
            channel = self._connected(what)
            try:
                windows = channel.send(frames)
            except ChannelClosed as exc:
                if channel.journal is None:
                    raise self._broken(exc, what) from None
                # The write is in the journal: the new connection sends it (or it fails here).
                self._recover(exc, what, "was not applied")
                return
        for answer in windows:  # a write window closed: its answer reports earlier failures
            self._result(answer)

    # -- writes of a pool task (see core/_task_writes.py) -----------------------------------
    def holds_task_writes(self) -> bool:
        """True while a pool task runs here and this Share's writes wait for its result."""
        return self.exactly_once and _task_writes.holding()

    def _hold(self, op: int, payload: tuple, what: Any) -> None:
        frames = self._encode(op, payload, what)  # unsendable: raised here, at the write
        with self._lock:
            if not _task_writes.hold(self, [bytes(frame) for frame in frames]):
                self._post_frames(frames, what)  # the task just ended (a thread of it wrote)

    def apply_task_writes(self, messages: list[Frames]) -> None:
        """Send the writes an accepted pool task held (on the head), in their order."""
        what = "applying the Share writes of a pool task"
        with self._lock:
            if self._local is None and self._connected(what).journal is None:
                messages = batched(messages)  # one send for many, as a network client does
            for frames in messages:
                self._post_frames(frames, what)

    def _encode(self, kind: int, payload: tuple, what: Any) -> Frames:
        try:
            return self.codec.encode(kind, payload)
        except SerializationError as exc:
            raise SerializationError(f"{_describe(what)} failed: {exc}",
                                     path=exc.path, type_name=exc.type_name) from exc

    def _exchange(self, frames: Frames, what: Any) -> tuple[Frames, list[Frames]]:
        channel = self._connected(what)
        try:
            answers = channel.exchange(frames)
        except ChannelClosed as exc:
            if channel.journal is None:
                raise self._broken(exc, what) from None
            # The request is in the journal: the new connection sends it again (applied
            # once), and its answer comes first there.
            unknown = "may or may not have been applied"
            for attempt in range(_RECOVERIES):
                channel = self._recover(exc, what, unknown)
                try:
                    answers = channel.replayed_answer(), []
                    break
                except ChannelClosed as again:  # the new session broke too: once more
                    exc = again
            else:
                self._journal.withdraw(self._journal.next - 1)
                raise self._broken(exc, what, unknown) from None
        self.error = None
        return answers

    def _recover(self, exc: BaseException, what: Any, outcome: str) -> Connection:
        """A network session broke: connect again and replay the journal (see
        `_resume.py`). If the coordinator cannot be reached, the operation that found out
        is withdrawn and fails; earlier writes stay in the journal for the next connection."""
        journal = self._journal
        last = journal.next - 1  # the operation that found out, last in the journal
        self._close_channel()
        try:
            return self._connected(what, recovering=True)
        except ShareError:
            journal.withdraw(last)
            kept = (f"; {len(journal)} earlier writes not yet confirmed are sent again by the "
                    f"next operation that reaches it" if len(journal) else "")
            raise ShareError(f"{_describe(what)} {outcome}: the session to the Share "
                             f"coordinator broke ({exc}) and reconnecting failed: "
                             f"{self.error}{kept}") from None

    def _result(self, answer: Frames) -> Any:
        kind, payload = self.codec.decode(answer)
        if kind == ERR:
            _raise_remote(*payload)
        value, epoch, deferred = payload
        if epoch != self.epoch:
            self.roots.clear()  # some root name was rebound to another type
            self.epoch = epoch
        if deferred:
            raise ShareError("; ".join(deferred))
        return value

    # -- connection --------------------------------------------------------------------------
    def _connected(self, what: Any, recovering: bool = False) -> Connection:
        if self._channel is not None:
            return self._channel
        if self.address is None:
            raise ShareError(f"{_describe(what)}: the Share was never started")
        transport = None
        try:
            transport = self.transport or get_transport(self.transport_spec)
            # After a break, the coordinator gets as long to answer as the transport gives
            # a silent peer before it declares it dead: `dead_after` is the one knob.
            timeout = _CONNECT_TIMEOUT
            if recovering and transport.dead_after is not None:
                timeout = transport.dead_after
            self._channel, _ = open_connection(transport, self.candidates or (self.address,),
                                               self.key, self.codec, timeout, self._journal)
        except (TransportError, OSError, ValueError) as exc:
            self.error = f"cannot reach the Share coordinator at {self.address}: {exc}"
            hint = self._hint(transport)
            raise ShareError(f"{_describe(what)}: {self.error} ({hint})") from None
        self._forget_types()
        return self._channel

    def _hint(self, transport: Transport | None) -> str:
        if transport is None:
            return "stopped or gone?"
        here = _host()
        if Capability.CROSS_HOST not in transport.capabilities:
            where = (f"it was created on host {self.origin} and is used on {here}"
                     if self.origin != here else "stopped or gone, or used from another "
                     "network namespace or container")
            return (f"this Share serves on a same-host transport ({transport.name}), so only "
                    f"processes on the host that created it can reach it ({where}); to use "
                    f"it from other "
                    f"hosts, create it with Share(transport=pool) for a Pool on the ZeroMQ "
                    f"transport, or Share(transport='tcp://0.0.0.0:5556', key=...), and give "
                    f"every host the key (SKPROCESSING_KEY, or the worker's --key-file)")
        return ("stopped or gone? A Share on a network transport is reachable from "
                "processes that have its key: started by its transport (Pool workers, "
                "process.start(transport=...)), or given SKPROCESSING_KEY / --key-file")

    def _broken(self, exc: BaseException, what: Any, outcome: str = "") -> ShareError:
        self._close_channel()
        self.error = f"the Share coordinator at {self.address} is gone (stopped or killed): {exc}"
        outcome = f" ({outcome})" if outcome else ""
        return ShareError(f"{_describe(what)} did not complete{outcome}: {self.error}")

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def _forget_types(self) -> None:
        # Method names are sent once per connection, so a new connection starts afresh.
        self.types.clear()
        self.roots.clear()
        self.epoch = -1

    def close(self) -> None:
        with self._lock:
            self._close_channel()

    def exclusive(self) -> threading.RLock:
        """Hold it to keep every other thread's operation waiting (see `_lock`)."""
        return self._lock

    def retarget(self, address: str, transport_spec: Any, candidates: tuple[str, ...]) -> None:
        """Reach the coordinator at its new address from now on."""
        with self._lock:
            self._close_channel()
            self.address, self.transport_spec, self.candidates = address, transport_spec, candidates
            self.transport = None
            self.error = None
            self._journal = Journal()  # another coordinator: nothing of the old one to replay
            self._forget_types()

    def _after_fork(self) -> None:
        # The parent's socket, lock and local store are not this process's to use (the
        # launcher itself may be forked from an owner whose Share is not started yet).
        self._lock = threading.RLock()
        if self._channel is not None:
            self._channel.forget_after_fork()
            self._channel = None
        self._journal = Journal()  # the parent's writes are the parent's; a number of our own
        self._local = None
        self._forget_types()


_HELD_REQUESTS = frozenset({SET, DEL, AUG, CLEAR})  # answered by nothing but an error
_RECOVERIES = 3  # new sessions a request tries when each breaks before its answer
_CONNECT_TIMEOUT = 5.0  # seconds to reach a coordinator (the ZeroMQ handshake included)


def _host() -> str:
    return os.uname().nodename


def _describe(what: Any) -> str:
    if isinstance(what, tuple):
        verb, path = what
        return f"{verb} {format_path(path)}"
    return what or "a Share operation"


def _raise_remote(exc: BaseException | None, summary: str, text: str) -> None:
    from ...errors import RemoteTraceback
    if exc is None:
        exc = ShareError(f"the shared object raised {summary}")
    exc.remote_traceback = text  # type: ignore[attr-defined]
    raise exc from (RemoteTraceback(text) if text else None)


_live: weakref.WeakSet[Client] = weakref.WeakSet()
_clients: dict[str, Client] = {}
_clients_lock = threading.Lock()


def register_client(client: Client) -> None:
    with _clients_lock:
        _clients[client.key] = client


def client_from_token(token: tuple) -> Client:
    """This process's client for the share in `token` (one per share per process)."""
    key, address, transport_spec, codec_token, candidates, origin, exactly_once = token
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = Client(key, address, transport_spec,
                                            Wire(Codec.from_token(codec_token)),
                                            tuple(candidates), origin, exactly_once)
        elif (address is not None and client.owner_pid != os.getpid()
              and (client.address, client.transport_spec) != (address, transport_spec)):
            # Started, restarted or moved (a `Share()` sent to a network pool) since this
            # process cached the client, perhaps inherited through a fork: follow it.
            client.retarget(address, transport_spec, tuple(candidates))
        return client


def _apply_task_writes(key: str, messages: list[Frames]) -> None:
    with _clients_lock:
        client = _clients.get(key)
    if client is None:
        raise ShareError(f"a pool task sent {len(messages)} writes of a Share this process "
                         f"never had (key {key}): they were not applied")
    client.apply_task_writes(messages)


_task_writes.set_applier(_apply_task_writes)


def _reset_after_fork() -> None:
    from ._store import forget_stores
    forget_stores()
    for client in list(_live):
        client._after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)
