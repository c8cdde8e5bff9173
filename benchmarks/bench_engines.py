"""Our Pool on Ray and on Dask against the engines' own paths, on the same engine instance.

    python benchmarks/bench_engines.py [--only ray|dask] [--rounds N]

Ray: one local `ray.init(num_cpus=4)` (4 logical CPUs, so our 2 slot actors and
`ray.util.multiprocessing.Pool(2)`'s 2 actors are all placed at once; the machine's cores
are what they are). Dask: one `LocalCluster(2 workers x 2 threads, processes=True)`, our
`Pool(2, transport=client)` holding one thread of each worker, Dask's own tasks the other.
Both sides alternate (`_common.interleaved`), so a loaded machine still gives ratios.
Ray binds servers to every interface: run this where that is acceptable, or in a network
namespace of its own (`ip netns exec NAME python benchmarks/bench_engines.py`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import interleaved, optional, report  # noqa: E402
from skprocessing import Pool  # noqa: E402

TINY = 10_000
BIG, MIB = 200, 1 << 20


def inc(x):
    return x + 1


def mib(_):
    return bytes(MIB)


def _timed(call) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def _compare(title_engine: str, ours_pool: Pool, their_tiny, their_big, their_one,
             rounds: int, tiny_target: str) -> None:
    ours_pool.map(inc, range(100))  # warm: functions cached, workers joined
    ours, theirs = interleaved(lambda: _timed(lambda: ours_pool.map(inc, range(TINY))),
                               lambda: _timed(their_tiny), rounds)
    report(f"{TINY} tiny tasks, auto chunks: vs {title_engine}", TINY / ours, TINY / theirs,
           "tasks/s", tiny_target)
    mb = BIG * MIB / 1e6
    ours, theirs = interleaved(lambda: _timed(lambda: ours_pool.map(mib, range(BIG))),
                               lambda: _timed(their_big), rounds)
    report(f"{BIG} x 1 MiB results: vs the engine's native path", mb / ours, mb / theirs,
           "MB/s", ">= 1.0x")
    ours, theirs = interleaved(lambda: _timed(lambda: ours_pool.map(inc, [1])),
                               lambda: _timed(their_one), max(rounds, 21))
    print(f"{'one task, warm round trip':58} ours {ours * 1e3:9.3f} ms      engine's own "
          f"{theirs * 1e3:9.3f} ms  (reported, no target)")


def bench_ray(rounds: int) -> None:
    ray = optional("ray")
    if ray is None:
        print("ray is not installed: skipped (pip install skprocessing[ray])")
        return
    from ray.util.multiprocessing import Pool as RayPool
    ray.init(num_cpus=4, include_dashboard=False, _node_ip_address="127.0.0.1",
             logging_level="warning")
    try:
        remote_inc, remote_mib = ray.remote(inc), ray.remote(mib)
        their_pool = RayPool(2)
        with Pool(2, transport="ray") as pool:
            print(f"Ray {ray.__version__}: Pool(2, transport='ray') vs ray.util.multiprocessing."
                  f"Pool(2) / ray.get of tasks, one ray.init(num_cpus=4)")
            _compare("ray.util.multiprocessing.Pool", pool,
                     lambda: their_pool.map(inc, range(TINY)),
                     lambda: ray.get([remote_mib.remote(i) for i in range(BIG)]),
                     lambda: ray.get(remote_inc.remote(1)), rounds, ">= 5x")
        their_pool.terminate()
    finally:
        ray.shutdown()


def bench_dask(rounds: int) -> None:
    distributed = optional("distributed")
    if distributed is None:
        print("distributed is not installed: skipped (pip install skprocessing[dask])")
        return
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                       host="127.0.0.1", dashboard_address=None, silence_logs=40)
    client = distributed.Client(cluster, set_as_default=False)
    try:
        with Pool(2, transport=client) as pool:
            print(f"Dask {distributed.__version__}: Pool(2, transport=client) vs client.map + "
                  f"gather, one LocalCluster(2 x 2 threads)")
            _compare("Dask client.map + gather", pool,
                     lambda: client.gather(client.map(inc, range(TINY), pure=False)),
                     lambda: client.gather(client.map(mib, range(BIG), pure=False)),
                     lambda: client.submit(inc, 1, pure=False).result(), rounds, ">= 20x")
    finally:
        client.close()
        cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("ray", "dask"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.only in (None, "ray"):
        bench_ray(args.rounds)
    if args.only in (None, "dask"):
        bench_dask(args.rounds)


if __name__ == "__main__":
    main()
