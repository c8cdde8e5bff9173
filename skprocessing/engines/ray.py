"""`RayTransport`: a Pool whose workers a Ray cluster places.

    Pool(transport="ray")                # the Ray this process is connected to; else a
                                         # running cluster (address="auto"); else a local Ray
    Pool(transport="ray://head:10001")   # Ray Client

Each worker slot is one Ray actor (`num_cpus=1`, `max_restarts=0`) whose `run` runs our
pool worker in a child process and returns its exit code. Restarts are the Pool's, not
Ray's: the Pool has already settled a dead slot's items (exactly once) and places a new
slot, so an actor Ray brought back would be a second worker nobody asked for. Ending a
slot kills its actor (`ray.kill`), and its worker process dies with it. A Ray this
module started (none was running) is shut down when the last transport using it closes.
"""

from __future__ import annotations

import threading
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from ..errors import TransportError
from ._placed import LOST, REACH_TIMEOUT, EngineTransport, PlacedWorker, end_slot, run_slot

__all__ = ["RayTransport"]

_started_lock = threading.Lock()
_started_users = 0  # open transports on a Ray this module started (shut down at the last)
_started = False


class RayTransport(EngineTransport):
    """Pool workers as Ray actors; see the module docstring."""

    engine = "Ray"

    def __init__(self, spec: str = "ray", *, key: bytes | str | None = None):
        address = spec.partition("://")[2].partition("?")[0] if "://" in spec else ""
        self.url = spec
        self._uses_ours = _connect(address)
        try:
            super().__init__(_bind_host(), key)
        except BaseException:
            self._release_engine()
            raise

    def default_workers(self) -> int:
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def _place(self, slot_id: str, payload: bytes, key: bytes, spec: str) -> PlacedWorker:
        actor = _slot_class().options(num_cpus=1, max_restarts=0, max_concurrency=3).remote()
        return RayWorker(self, slot_id, actor, actor.run.remote(slot_id, payload, key, spec))

    def _release_engine(self) -> None:
        global _started_users, _started
        if not self._uses_ours:
            return
        self._uses_ours = False
        with _started_lock:
            _started_users -= 1
            if _started_users == 0 and _started:
                _started = False
                ray.shutdown()

    def __repr__(self) -> str:
        return f"<RayTransport {self.url}>"


class RayWorker(PlacedWorker):
    """One slot: its actor and the reference to its `run`."""

    def __init__(self, transport: RayTransport, slot_id: str, actor: Any, run: Any):
        super().__init__(transport, slot_id)
        self._actor = actor
        self._run = run
        self._pid_ref = actor.pid.remote()

    def _result(self, timeout: float | None) -> int | None:
        ready, _ = ray.wait([self._run], timeout=timeout)
        if not ready:
            return None
        try:
            return int(ray.get(self._run))
        except RayActorError:  # killed (by us, an outside SIGKILL, its node lost)
            return LOST
        except RayTaskError:
            return 1

    def _find_pid(self) -> int | None:
        ready, _ = ray.wait([self._pid_ref], timeout=0)
        return ray.get(ready[0]) if ready else None

    def _end(self, kill: bool) -> None:
        if kill:
            ray.kill(self._actor, no_restart=True)
        else:
            self._actor.end.remote(False)

    def _release(self) -> None:
        ray.kill(self._actor, no_restart=True)  # its CPU goes back to the cluster


class _Slot:
    """The actor (threaded: `pid` and `end` answer while `run` waits on the worker)."""

    def __init__(self) -> None:
        self._slot_id: str | None = None
        self._pid: int | None = None
        self._started = threading.Event()

    def run(self, slot_id: str, payload: bytes, key: bytes, spec: str) -> int:
        self._slot_id = slot_id
        return run_slot(slot_id, payload, key, spec, started=self._on_start)

    def _on_start(self, pid: int) -> None:
        self._pid = pid
        self._started.set()

    def pid(self) -> int | None:
        self._started.wait(3 * REACH_TIMEOUT)
        return self._pid

    def end(self, kill: bool) -> bool:
        return self._slot_id is not None and end_slot(self._slot_id, kill)


_remote_slot: Any = None


def _slot_class() -> Any:
    global _remote_slot
    if _remote_slot is None:
        _remote_slot = ray.remote(_Slot)
    return _remote_slot


def _connect(address: str) -> bool:
    """Connect this process to Ray if it is not; True if that started a local Ray (ours)."""
    global _started_users, _started
    with _started_lock:
        if address:
            if ray.is_initialized():
                raise TransportError(f"this process is already connected to Ray; use "
                                     f"transport='ray' for that cluster, not ray://{address}")
            _init(address=f"ray://{address}")
            _started = True
        elif not ray.is_initialized():
            try:
                _init(address="auto")
            except ConnectionError:
                _init(include_dashboard=False)
            _started = True
        elif not _started:
            return False  # the caller's own Ray: never ours to shut down
        _started_users += 1
        return True


def _init(**options: Any) -> None:
    try:
        ray.init(**options)
    except ConnectionError:
        raise
    except Exception as exc:
        raise TransportError(f"cannot start or reach Ray ({options}): {type(exc).__name__}: "
                             f"{exc}") from exc


def _bind_host() -> str:
    """Loopback when every Ray node is this one; else this node's address."""
    here = ray.util.get_node_ip_address()
    nodes = {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
    return "127.0.0.1" if nodes <= {here} else here
