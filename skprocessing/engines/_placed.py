"""What the Ray and Dask backends share: the transport a Pool sees, and the worker slot
an engine runs.

    caller                                       engine node (a Ray actor / a Dask task)
    Pool ─ EngineTransport                       run_slot(payload, key, spec)
            ├ listen/connect/pipe/wait:            └ ZmqTransport(spec, key).start(...)
            │   a keyed ZmqTransport  ◄──TCP────────── worker_main (our pool worker)
            └ start(entry, args):
                the engine places run_slot; a PlacedWorker is its ProcessHandle

The engine only places; the ZeroMQ transport carries every message, so the Pool's
scheduler (chunks, credits, per-item timeouts, retries, exactly-once results), Share and
`start(on=pool)` run unchanged. The key is made per transport (32 random bytes, hex) and
travels to the engine inside the task's arguments, never on a command line or in an
environment variable. Inside the slot the worker is a child process of ours (the local
launcher), so killing it for a timeout ends one item, never the engine's process, and a
dead engine process takes its worker with it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import abc
import logging
import os
import pickle
import secrets
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import TransportError
from ..transports import get_transport
from ..transports.base import Capability, Channel, Listener, ProcessHandle, SharedInt, Transport

__all__ = ["EngineTransport", "PlacedWorker", "run_slot", "end_slot", "slot_pid",
           "REACH_FAILED", "REACH_TIMEOUT", "LOST"]

log = logging.getLogger("skprocessing.engines")

REACH_FAILED = 75      # a placed worker's exit code when it could not reach the caller
REACH_TIMEOUT = 20.0   # seconds a placed worker tries to reach the caller
UNREACHABLE = 2        # placed workers in a row that could not reach it: the pool fails
LOST = -9              # the exit code of a slot whose engine process went (killed, lost)


class EngineTransport(Transport):
    """A Pool's transport whose `start()` places the worker on an engine. Channels are
    a keyed ZeroMQ transport's, bound at `bind_host` (loopback when every node of the
    engine is this host). Subclasses say how to place and how many slots there are."""

    engine = "an engine"  # for messages: "Ray", "Dask"
    capabilities = frozenset({Capability.CROSS_HOST})

    def __init__(self, bind_host: str, key: bytes | str | None = None):
        self._key = key or secrets.token_hex(32).encode()
        self._inner = get_transport(f"tcp://{bind_host}:0?connect_timeout={REACH_TIMEOUT:g}"
                                    ).with_key(self._key)
        self.dead_after = self._inner.dead_after
        self._lock = threading.Lock()
        self._placed: dict[str, PlacedWorker] = {}
        self._unreachable = 0
        self._addresses: list[str] = []
        self._engine_error: BaseException | None = None
        self._closed = False

    # -- placing workers ---------------------------------------------------------------------
    @abc.abstractmethod
    def _place(self, slot_id: str, payload: bytes, key: bytes, spec: str) -> PlacedWorker:
        """Ask the engine to run `run_slot(slot_id, payload, key, spec)` on one CPU."""

    @abc.abstractmethod
    def default_workers(self) -> int:
        """The engine's CPU count: a Pool's size when it is given none."""

    def _release_engine(self) -> None:
        """End what this transport opened on the engine (a client, a local cluster)."""

    def start(self, entry: Callable[..., Any], *args: Any) -> ProcessHandle:
        """Run `entry(*args)` as a worker slot on the engine (one CPU)."""
        with self._lock:
            if self._closed:
                raise TransportError(f"this {self.engine} transport is closed")
            if self._engine_error is not None:
                raise TransportError(f"{self.engine} is gone ({self._engine_error}); no pool "
                                     f"worker can be placed") from self._engine_error
            if self._unreachable >= UNREACHABLE:
                raise TransportError(
                    f"{self._unreachable} pool workers placed on {self.engine} could not reach "
                    f"this process at {' or '.join(self._addresses) or '?'} within "
                    f"{REACH_TIMEOUT:g} s: the engine's workers must be able to open a TCP "
                    f"connection to the caller (run the caller on a node of the cluster)")
        slot_id = f"skprocessing-worker-{uuid.uuid4().hex}"
        payload = pickle.dumps((entry, args), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            worker = self._place(slot_id, payload, self._key, self._inner.spec())
        except TransportError:
            raise
        except Exception as exc:
            self.engine_lost(exc)
            raise TransportError(f"{self.engine} could not place a pool worker: "
                                 f"{type(exc).__name__}: {exc}") from exc
        with self._lock:
            self._placed[slot_id] = worker
        return worker

    def ended(self, worker: PlacedWorker) -> None:
        """A placed worker's slot ended (its handle saw the exit code)."""
        with self._lock:
            self._placed.pop(worker.slot_id, None)
            if worker.wait(0) == REACH_FAILED:
                self._unreachable += 1
            else:
                self._unreachable = 0

    def engine_lost(self, error: BaseException) -> None:
        """The engine failed to answer: later starts raise, naming it."""
        with self._lock:
            if self._engine_error is None and not self._closed:
                log.warning("%s is gone: %s", self.engine, error)
                self._engine_error = error

    def placed(self) -> list[PlacedWorker]:
        """The slots placed and not yet seen ended (for close, tests and tools)."""
        with self._lock:
            return list(self._placed.values())

    # -- the channels: the keyed ZeroMQ transport's ------------------------------------------
    def pipe(self, duplex: bool = True) -> tuple[Channel, Channel]:
        return self._inner.pipe(duplex)

    def listen(self, address: str | None = None) -> Listener:
        listener = self._inner.listen(address)
        with self._lock:
            self._addresses.append(listener.address)
        return listener

    def connect(self, address: str, timeout: float | None = None) -> Channel:
        return self._inner.connect(address, timeout)

    def wait(self, channels: Sequence[Channel | Listener],
             timeout: float | None = None) -> list[Channel | Listener]:
        return self._inner.wait(channels, timeout)

    def shared_int(self) -> SharedInt:
        raise NotImplementedError(f"{self!r}: its workers may run on other hosts")

    def prepare(self) -> None:
        pass  # nothing starts here: the engine places every process (no launcher to ready)

    def address_beside(self, address: str) -> str | None:
        return self._inner.address_beside(address)

    def spec(self) -> str | Transport:
        # What a worker (or a Share client) rebuilds: plain ZeroMQ, the key its own.
        return self._inner.spec()

    def with_key(self, key: bytes | str) -> Transport:
        """This transport signing with `key` instead of its random one (`Pool(key=...)`)."""
        with self._lock:
            if self._placed:
                raise ValueError("with_key() after workers were placed")
            self._key = key
            self._inner = self._inner.with_key(key)
        return self

    def copy(self) -> Transport:
        # A Share moved onto the pool is served on plain ZeroMQ with the same key: it
        # outlives the pool and never depends on the engine.
        return self._inner.copy()

    def close(self) -> None:
        """End every slot still placed (without touching an engine the caller started)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for worker in self.placed():
            try:
                worker.kill()
            except Exception as exc:
                log.debug("ending %s: %s", worker, exc)
        for worker in self.placed():
            try:
                worker.wait(5.0)
            except Exception:
                pass
        try:
            self._release_engine()
        finally:
            self._inner.close()

    def __reduce__(self):
        raise TypeError(f"{type(self).__name__} holds a connection to {self.engine}: it "
                        f"cannot be pickled (workers get its spec(), plain ZeroMQ)")


class PlacedWorker(ProcessHandle):
    """A ProcessHandle for a slot an engine runs: `pid` is the worker process's (known
    once it started), the exit code the slot's result (`LOST` when the engine lost it)."""

    def __init__(self, transport: EngineTransport, slot_id: str):
        self.transport = transport
        self.slot_id = slot_id
        self._pid: int | None = None
        self._exitcode: int | None = None
        self._lock = threading.Lock()

    @abc.abstractmethod
    def _result(self, timeout: float | None) -> int | None:
        """The slot's exit code once it ended (within `timeout`), else None. Raises what
        the engine raises when it is gone."""

    @abc.abstractmethod
    def _find_pid(self) -> int | None: ...

    @abc.abstractmethod
    def _end(self, kill: bool) -> None:
        """Stop the slot's worker: SIGKILL (`kill`) or SIGTERM."""

    def _release(self) -> None:
        """The slot ended: free what it held on the engine (its actor, its future)."""

    @property  # type: ignore[override]
    def pid(self) -> int | None:
        if self._pid is None and self._exitcode is None:
            try:
                self._pid = self._find_pid()
            except Exception:
                return None
        return self._pid

    def _finish(self, code: int) -> None:
        with self._lock:
            if self._exitcode is not None:
                return
            self._exitcode = code
        try:
            self._release()
        except Exception as exc:
            log.debug("releasing %s: %s", self, exc)
        self.transport.ended(self)

    def _poll(self, timeout: float | None) -> bool:
        if self._exitcode is not None:
            return True
        try:
            code = self._result(timeout)
        except Exception as exc:  # the engine itself failed: the slot is gone with it
            self.transport.engine_lost(exc)
            code = LOST
        if code is None:
            return False
        self._finish(code)
        return True

    def wait(self, timeout: float | None = None) -> int | None:
        return self._exitcode if self._poll(timeout) else None

    def cancel(self) -> None:
        if self._exitcode is None:
            self._end(kill=False)

    def kill(self) -> None:
        if self._exitcode is None:
            self._end(kill=True)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.slot_id} pid={self._pid} exitcode={self._exitcode}>"


# -- the engine's side: runs inside a Ray actor or a Dask task -------------------------------
_slots: dict[str, ProcessHandle] = {}  # slot id -> its worker process, in this engine process
_slots_lock = threading.Lock()


def run_slot(slot_id: str, payload: bytes, key: bytes, spec: str,
             started: Callable[[int], None] | None = None) -> int:
    """Run the worker `payload` names in a child process; return its exit code."""
    entry, args = pickle.loads(payload)
    transport = get_transport(spec).with_key(key)
    try:
        handle = transport.start(placed_main, entry, args)
        with _slots_lock:
            _slots[slot_id] = handle
        if started is not None:
            started(handle.pid)
        code = handle.wait()
        return LOST if code is None else code
    finally:
        with _slots_lock:
            _slots.pop(slot_id, None)
        transport.close()


def end_slot(slot_id: str, kill: bool = True) -> bool:
    """End the worker of `slot_id` if it runs in this process (True if it did)."""
    with _slots_lock:
        handle = _slots.get(slot_id)
    if handle is None:
        return False
    handle.kill() if kill else handle.cancel()
    return True


def slot_pid(slot_id: str) -> int | None:
    with _slots_lock:
        handle = _slots.get(slot_id)
    return None if handle is None else handle.pid


def placed_main(entry: Callable[..., Any], args: tuple) -> None:
    """The placed worker process: the entry, and a distinct exit code when it could not
    reach the caller (the transport counts those and fails the pool with the address)."""
    try:
        entry(*args)
    except TransportError as exc:
        print(f"skprocessing: a pool worker placed on this engine (pid {os.getpid()}) could "
              f"not reach the caller: {exc}", file=sys.stderr)
        raise SystemExit(REACH_FAILED) from exc
