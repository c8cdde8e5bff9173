"""One local Ray and one Dask LocalCluster for the whole session (each in its own xdist
group, so each starts once), both checked to listen on loopback only. A test gets a pool
on either engine through the `engine` fixture's parameter."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import pid_alive
from tests.engines._procs import descendants, listening, parent, wait_until

ray = pytest.importorskip("ray", reason="the ray extra (pip install skprocessing[ray])")
distributed = pytest.importorskip("distributed", reason="the dask extra")

ENGINES = [pytest.param("ray", marks=pytest.mark.xdist_group("ray")),
           pytest.param("dask", marks=pytest.mark.xdist_group("dask"))]


# Ray 2.60 binds some servers to every interface whatever `_node_ip_address` says
# (measured: 0.0.0.0, ::, and the host's external address). So its tests run in a network
# namespace of their own with only loopback in it (test_ray_netns.py makes it and runs
# them there), where "every interface" is loopback.
IN_PRIVATE_NETNS = "SKP_ENGINES_NETNS"


def pytest_collection_modifyitems(config, items):
    if os.environ.get(IN_PRIVATE_NETNS):
        return
    # (under `--dist loadgroup` xdist has already suffixed the id with "@<group>")
    ray_items = [item for item in items if item.nodeid.partition("@")[0].endswith("[ray]")]
    if ray_items:
        config.hook.pytest_deselected(items=ray_items)
        items[:] = [item for item in items if item not in ray_items]


def _ray_processes(before: set[int]) -> set[int]:
    """This process's descendants since `before`, but for its own launchers' (a local
    Share, a pool's transport) trees, which live as long as it does."""
    me = os.getpid()
    launchers = {pid for pid in descendants(me) - before
                 if parent(pid) == me and "transports._launcher" in _describe(pid)}
    ours = launchers | {pid for root in launchers for pid in descendants(root)}
    return descendants(me) - before - ours


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as f:
            state = next(line for line in f if line.startswith("State:")).split(None, 1)[1]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f"{state.strip()} {f.read().replace(bytes(1), b' ')[:200].decode(errors='replace')}"
    except (OSError, StopIteration):
        return "gone"


def _only_loopback_here() -> bool:
    """True in a network namespace whose only interface is loopback."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                           timeout=20).stdout.splitlines()
    return [line.split(":")[1].strip() for line in links] == ["lo"]


def _loopback_only(pids: set[int], what: str) -> None:
    sockets = listening(pids)
    assert sockets, f"found no listening socket of {what}: the check would prove nothing"
    beyond = [(pid, address) for pid, address in sockets if not address.startswith("127.")]
    if beyond and os.environ.get(IN_PRIVATE_NETNS):
        assert _only_loopback_here(), f"{what} listens on {beyond}, and this namespace has " \
                                      f"more than loopback"
        return
    assert not beyond, f"{what} listens beyond loopback: {beyond}"


@pytest.fixture(scope="session")
def ray_engine():
    """`ray.init(num_cpus=2)` on loopback; shut down (and checked gone) at the end."""
    if not os.environ.get(IN_PRIVATE_NETNS):
        pytest.fail("Ray tests run inside a private network namespace (test_ray_netns.py)")
    if ray.is_initialized():
        pytest.fail("Ray was already initialised in this test process")
    before = descendants(os.getpid())
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             logging_level="warning")
    try:
        started = _ray_processes(before)
        _loopback_only(started, "the local Ray")
        yield ray
    finally:
        started = _ray_processes(before)  # with the workers started since
        ray.shutdown()
        left = lambda: {pid for pid in started if pid_alive(pid)}  # noqa: E731
        assert wait_until(lambda: not left(), 60), \
            f"Ray processes left after shutdown: {[(pid, _describe(pid)) for pid in left()]}"


@pytest.fixture(scope="session")
def dask_client():
    """`LocalCluster(n_workers=2, threads_per_worker=1, processes=True)` on loopback."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       silence_logs=40)
    client = distributed.Client(cluster, set_as_default=False)
    try:
        _loopback_only(descendants(os.getpid()) | {os.getpid()}, "the Dask LocalCluster")
        yield client
    finally:
        workers = set(client.run(os.getpid).values())
        workers |= {pid for worker in workers for pid in descendants(worker)}
        client.close()
        cluster.close()
        left = lambda: {pid for pid in workers if pid_alive(pid)}  # noqa: E731
        assert wait_until(lambda: not left(), 30), f"Dask processes left: {left()}"


@pytest.fixture
def engine(request):
    """("ray" | "dask", what `Pool(transport=...)` takes for it, the engine object)."""
    if request.param == "ray":
        return "ray", "ray", request.getfixturevalue("ray_engine")
    client = request.getfixturevalue("dask_client")
    return "dask", client, client


def slot_processes_gone(name: str, engine_object, timeout: float = 30.0) -> bool:
    """Nothing of a closed pool is left placed on the engine: Ray's CPUs are all free
    again; Dask's scheduler holds no task of ours."""
    if name == "ray":
        return wait_until(lambda: engine_object.available_resources().get("CPU", 0) >= 2, timeout)

    def ours(dask_scheduler):
        return [str(k) for k in dask_scheduler.tasks if str(k).startswith("skprocessing-worker-")]
    return wait_until(lambda: not engine_object.run_on_scheduler(ours), timeout)



