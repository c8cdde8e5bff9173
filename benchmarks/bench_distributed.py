"""The ZeroMQ Pool against dask.distributed and ipyparallel, as ratios measured in one run.

    .venv/bin/python benchmarks/bench_distributed.py [--rounds 3] [--tasks 10000]
                                                     [--only tasks many rt big]

Everything runs on this machine with 2 worker processes: ours is `Pool(2,
transport="tcp://127.0.0.1")` (workers connect back over TCP, every message HMAC-signed;
being on the head's host, they send frames of 1 MiB or more through the same-host bulk
path, private files named by signed messages: see `transports/zmq/bulk.py`;
`SKPROCESSING_ZMQ_SHM=0` in the environment measures the all-socket path instead);
dask is a `LocalCluster` of 2 single-threaded worker processes (`client.map` + `gather`);
ipyparallel is a 2-engine cluster (load-balanced view and DirectView). Both clusters are
started and stopped here, each step bounded in time. The machine is shared and noisy, so
each comparison alternates the two sides (`_common.interleaved`) and compares medians.

1. `--tasks` (10,000) no-op tasks, one message each (`chunksize=1`): vs dask (>= 10x) and
   vs ipyparallel's load-balanced view (>= 10x).
2. 100,000 no-op tasks, automatic chunking: vs ipyparallel DirectView `map` (>= 1x) and
   vs our own local transport (>= 0.5x).
3. Single-task round trip on a warm pool: median under 1 ms (dask's shown for scale).
4. 20 results of 4 MiB: MB/s vs dask (>= 1.5x) and vs our local transport (>= 0.8x),
   the latter after `WARM_BIG` warm-up maps of each side (steady state, see there).

dask and ipyparallel are benchmark extras, not dependencies: a missing one is skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, optional, report  # noqa: E402

from skprocessing.core.pool import Pool  # noqa: E402

MANY = 100_000
BIG, BIG_SIZE = 20, 4 << 20
WARM_BIG = 3  # warm-up maps of each side before the 4 MiB comparison with the local pool
TIME_LIMIT = 1800  # seconds for the whole run: a stuck cluster must not hang it


def noop(x):
    return x


def big(_):
    return bytes(BIG_SIZE)


SETTLE = 0.3  # seconds of quiet before each timed run (the other side's cleanup ends)


def _rate(count: int, run) -> float:
    time.sleep(SETTLE)
    began = time.perf_counter()
    run()
    return count / (time.perf_counter() - began)


def _mbps(run) -> float:
    time.sleep(SETTLE)
    began = time.perf_counter()
    results = run()
    assert len(results) == BIG and all(len(r) == BIG_SIZE for r in results)
    return BIG * BIG_SIZE / 1e6 / (time.perf_counter() - began)


def _round_trip(submit, count: int = 200) -> float:
    for _ in range(20):
        submit()
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        submit()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


@contextlib.contextmanager
def dask_cluster():
    distributed = optional("distributed")
    if distributed is None:
        print("dask.distributed is not installed: its comparisons are skipped")
        yield None
        return
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
    client = distributed.Client(cluster, timeout="60s")
    try:
        client.wait_for_workers(2, timeout=60)
        yield client
    finally:
        client.close(timeout=30)
        cluster.close(timeout=30)


@contextlib.contextmanager
def ipp_cluster():
    ipp = optional("ipyparallel")
    if ipp is None:
        print("ipyparallel is not installed: its comparisons are skipped")
        yield None
        return
    cluster = ipp.Cluster(n=2, log_level=logging.ERROR)
    client = None
    try:
        client = cluster.start_and_connect_sync(activate=False)
        client.wait_for_engines(2, timeout=120)
        yield client
    finally:
        if client is not None:
            client.close()
        cluster.stop_cluster_sync()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--only", nargs="*", choices=["tasks", "many", "rt", "big"],
                        default=["tasks", "many", "rt", "big"], help="which comparisons to run")
    args = parser.parse_args()
    only = set(args.only)
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("benchmark over its time limit")))
    signal.alarm(TIME_LIMIT)
    tasks, rounds = args.tasks, args.rounds
    ratios: dict[str, float] = {}
    print(f"2 workers; {rounds} alternating rounds per comparison; ratios ours/theirs "
          f"(rates: higher is better)")
    with Pool(2, transport="tcp://127.0.0.1") as zmq_pool, Pool(2) as local_pool, \
            dask_cluster() as dask, ipp_cluster() as ipp:
        ours_many = lambda: _rate(tasks, lambda: zmq_pool.map(noop, range(tasks), chunksize=1))  # noqa: E731
        ours_many()  # warm: workers up, function cached
        if dask is not None and "tasks" in only:
            dask.gather(dask.map(noop, range(200), pure=False))
            theirs = lambda: _rate(tasks, lambda: dask.gather(dask.map(noop, range(tasks), pure=False)))  # noqa: E731
            ours, other = interleaved(ours_many, theirs, rounds)
            ratios["dask 10k"] = report(f"{tasks} no-op tasks, chunksize=1 vs dask", ours, other,
                                        "tasks/s", ">= 10x")
        if ipp is not None and "tasks" in only:
            lview = ipp.load_balanced_view()
            lview.map_sync(noop, range(200), chunksize=1)
            theirs = lambda: _rate(tasks, lambda: lview.map_sync(noop, range(tasks), chunksize=1))  # noqa: E731
            ours, other = interleaved(ours_many, theirs, rounds)
            ratios["ipp lb 10k"] = report(f"{tasks} no-op tasks, chunksize=1 vs ipp load-balanced",
                                          ours, other, "tasks/s", ">= 10x")

        ours_auto = lambda: _rate(MANY, lambda: zmq_pool.map(noop, range(MANY)))  # noqa: E731
        if "many" in only:
            ours_auto()
        if ipp is not None and "many" in only:
            dview = ipp[:]
            dview.map_sync(noop, range(1000))
            theirs = lambda: _rate(MANY, lambda: dview.map_sync(noop, range(MANY)))  # noqa: E731
            ours, other = interleaved(ours_auto, theirs, rounds)
            ratios["ipp direct 100k"] = report("100,000 no-op tasks, auto chunks vs ipp DirectView",
                                               ours, other, "tasks/s", ">= 1x")
        if "many" in only:
            theirs = lambda: _rate(MANY, lambda: local_pool.map(noop, range(MANY)))  # noqa: E731
            theirs()
            ours, other = interleaved(ours_auto, theirs, rounds)
            ratios["local 100k"] = report("100,000 no-op tasks, auto chunks vs our local transport",
                                          ours, other, "tasks/s", ">= 0.5x")

        if "rt" in only:
            ours_rt = _round_trip(lambda: zmq_pool.map(noop, [1]))
            print(f"{'single-task round trip, warm pool (median)':58} ours {ours_rt * 1e3:10.3f} ms"
                  f"{'':21}(target < 1 ms)")
            if dask is not None:
                theirs_rt = _round_trip(lambda: dask.submit(noop, 1, pure=False).result(), 50)
                print(f"{'  for scale: dask client.submit().result() (median)':58} "
                      f"     {theirs_rt * 1e3:10.3f} ms")
            ratios["round trip ms"] = ours_rt * 1e3

        ours_big = lambda: _mbps(lambda: zmq_pool.map(big, range(BIG)))  # noqa: E731
        ours_big()
        if dask is not None and "big" in only:
            theirs = lambda: _mbps(lambda: dask.gather(dask.map(big, range(BIG), pure=False)))  # noqa: E731
            theirs()
            ours, other = interleaved(ours_big, theirs, rounds)
            ratios["dask 4MiB"] = report("20 results of 4 MiB vs dask", ours, other, "MB/s", ">= 1.5x")
        if "big" in only:
            theirs = lambda: _mbps(lambda: local_pool.map(big, range(BIG)))  # noqa: E731
            # Both sides warm up alike, a few maps each: the first maps of 80 MiB in this
            # process measure its allocator taking fresh pages from the kernel (a fault per
            # 4 KiB, ~2 us each on this VM; 2 maps to settle for the local pool, 4 for the
            # ZeroMQ one, whatever the path: counted in /proc/self/stat), not the transport.
            for _ in range(WARM_BIG):
                ours_big()
                theirs()
            ours, other = interleaved(ours_big, theirs, max(rounds, 5))
            ratios["local 4MiB"] = report("20 results of 4 MiB vs our local transport", ours,
                                          other, "MB/s", ">= 0.8x")
    signal.alarm(0)
    print("summary:", ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
