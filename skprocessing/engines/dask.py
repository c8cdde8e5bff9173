"""`DaskTransport`: a Pool whose workers a Dask cluster places.

    Pool(transport="dask://scheduler:8786")   # connects a Client; closes it with the pool
    Pool(transport=client)                    # a distributed.Client the caller has (kept open)

Each worker slot is one long-running Dask task (`run_dask_slot`), holding one worker
thread, that runs our pool worker in a child process and returns its exit code. The
task's arguments are bytes and strings only (Dask copies and walks task arguments; a
payload it cannot copy can wedge its background comm). Dask re-runs a task whose worker
died (up to `allowed-failures` times): a slot must not, since the Pool has already
replaced it and settled its items, so a re-run finds its `Event` set and returns `LOST`
at once. Ending a slot (a timeout, a cancel, close) kills the child through `client.run`
on the worker that holds it, then cancels the task.
"""

from __future__ import annotations

import threading

import distributed
from distributed.comm import get_address_host

from ..errors import TransportError
from ._placed import LOST, EngineTransport, PlacedWorker, end_slot, run_slot, slot_pid

__all__ = ["DaskTransport", "run_dask_slot"]

_LOOPBACK = ("127.", "localhost", "::1")


class DaskTransport(EngineTransport):
    """Pool workers as long-running tasks of a Dask cluster; see the module docstring."""

    engine = "Dask"

    def __init__(self, spec: str | distributed.Client = "dask://", *,
                 key: bytes | str | None = None):
        if isinstance(spec, distributed.Client):
            self._client, self._owns_client = spec, False
            self.url = None
        else:
            address = spec.partition("://")[2].partition("?")[0]
            if not address:
                raise ValueError(f"{spec!r}: give the scheduler's address, e.g. "
                                 f"dask://127.0.0.1:8786")
            try:
                self._client = distributed.Client(f"tcp://{address}", set_as_default=False)
            except Exception as exc:
                raise TransportError(f"cannot reach the Dask scheduler at {address}: "
                                     f"{type(exc).__name__}: {exc}") from exc
            self._owns_client = True
            self.url = spec
        try:
            if self._client.status != "running":
                raise TransportError(f"the Dask client {self._client!r} is {self._client.status}")
            super().__init__(_bind_host(self._client), key)
        except BaseException:
            self._release_engine()
            raise

    @property
    def client(self) -> distributed.Client:
        return self._client

    def default_workers(self) -> int:
        workers = self._client.scheduler_info(n_workers=-1)["workers"].values()
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers))

    def _place(self, slot_id: str, payload: bytes, key: bytes, spec: str) -> PlacedWorker:
        future = self._client.submit(run_dask_slot, slot_id, payload, key, spec,
                                     key=slot_id, pure=False, retries=0)
        return DaskWorker(self, slot_id, future)

    def _release_engine(self) -> None:
        if self._owns_client:
            self._client.close()

    def __repr__(self) -> str:
        return f"<DaskTransport {self._client.scheduler.address if self._client.scheduler else '?'}>"


class DaskWorker(PlacedWorker):
    """One slot: its task's future."""

    transport: DaskTransport

    def __init__(self, transport: DaskTransport, slot_id: str, future: distributed.Future):
        super().__init__(transport, slot_id)
        self._future = future
        self._done = threading.Event()  # set from the client's thread when the task ends
        future.add_done_callback(lambda _: self._done.set())

    def _result(self, timeout: float | None) -> int | None:
        client = self.transport.client
        if client.status not in ("running", "connecting"):
            raise TransportError(f"the Dask client is {client.status}")
        if not self._future.done() and (timeout == 0 or not self._done.wait(timeout)):
            return None
        if self._future.status == "finished":
            return int(self._future.result())
        return LOST  # "error" (KilledWorker), "cancelled", "lost"

    def _find_pid(self) -> int | None:
        found = self.transport.client.run(slot_pid, self.slot_id, on_error="return")
        pids = [pid for pid in found.values() if isinstance(pid, int)]
        return pids[0] if pids else None

    def _end(self, kill: bool) -> None:
        client = self.transport.client
        if client.status != "running":
            return
        client.run(end_slot, self.slot_id, kill, on_error="return")
        if kill:
            self._future.cancel()

    def _release(self) -> None:
        self._future.release()


def run_dask_slot(slot_id: str, payload: bytes, key: bytes, spec: str) -> int:
    """The task (on a Dask worker): the slot, run once."""
    placed = distributed.Event(slot_id)
    if placed.is_set():
        return LOST  # a re-run after its worker died: the Pool has replaced this slot
    placed.set()
    return run_slot(slot_id, payload, key, spec)


def _bind_host(client: distributed.Client) -> str:
    """Loopback when the scheduler and every worker are on loopback; else this host's
    address on the route to them."""
    info = client.scheduler_info(n_workers=-1)
    hosts = [get_address_host(a) for a in [client.scheduler.address, *info["workers"]]]
    remote = [h for h in hosts if not h.startswith(_LOOPBACK)]
    return distributed.utils.get_ip(remote[0]) if remote else "127.0.0.1"

