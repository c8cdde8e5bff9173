"""Pool against the libraries users would otherwise pick, as ratios measured in one run.

    .venv/bin/python benchmarks/bench_pool.py [--workers 2] [--rounds 7]

The machine is shared and noisy, so each comparison alternates the two sides for
`--rounds` rounds and compares their medians (see `_common.interleaved`). Printed ratios
are throughput ratios (above 1.0: we are faster) except cold start, a time ratio
(below 1.0: we are faster).

1. 100,000 tiny tasks (`x * x`), a lambda for us: vs `multiprocessing.Pool` (fork) with
   a module-level function (target >= 0.8x), and vs loky's reusable executor at the same
   chunk size (target >= 1.0x).
2. Cold start: create + map 2,000 tiny tasks + close, vs `multiprocessing.Pool` (fork)
   (target <= 1.5x). First-ever (this process spawns its launcher) and launcher warm.
3. 200 tasks of 5 ms CPU: vs the ideal two-core time (target >= 0.9x); for context also
   vs the same work in bare forked processes now (what the shared cores give right now).
4. 50 results of 1 MiB: vs `concurrent.futures.ProcessPoolExecutor` (target >= 1.0x).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, optional  # noqa: E402

from skprocessing.core.pool import Pool  # noqa: E402

TINY = 100_000
COLD = 2_000
CPU_TASKS, CPU_SECONDS = 200, 0.005
BIG, BIG_SIZE = 50, 1 << 20


def square(x):
    return x * x


def burn(_):
    # CPU time, not wall time: a task preempted by other load still does 5 ms of work.
    end = time.thread_time() + CPU_SECONDS
    while time.thread_time() < end:
        pass


def burn_many(count):
    for _ in range(count):
        burn(None)


def megabyte(_):
    return bytes(BIG_SIZE)


def timed(call):
    def run():
        began = time.perf_counter()
        call()
        return time.perf_counter() - began
    return run


def line(title, ratio, target, lower_is_better=False):
    ok = ratio <= target if lower_is_better else ratio >= target
    sign = "<=" if lower_is_better else ">="
    print(f"{title:62} {ratio:6.2f}x  (target {sign} {target}: {'ok' if ok else 'MISSED'})")


def cold_ours(workers):
    with Pool(workers) as pool:
        pool.map(lambda x: x * x, range(COLD))


def cold_mp(workers):
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(square, range(COLD))
        pool.close()
        pool.join()


def bare_processes(workers):
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=burn_many, args=(CPU_TASKS // workers,))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()


# A fresh interpreter times its first-ever pool (imports done, not timed): what a script
# pays once. Both sides run the same way, so the ratio compares like with like.
FRESH = """
import sys, time
sys.path.insert(0, {here!r})
import bench_pool
began = time.perf_counter()
bench_pool.{which}({workers})
print(time.perf_counter() - began)
"""


def fresh_cold(which, workers):
    import subprocess
    source = FRESH.format(here=str(Path(__file__).resolve().parent), which=which, workers=workers)
    out = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return float(out.split()[-1])


def bench_cold(w, rounds):
    first_ours, first_mp = interleaved(lambda: fresh_cold("cold_ours", w),
                                       lambda: fresh_cold("cold_mp", w), max(rounds, 5))
    ours, mp = interleaved(timed(lambda: cold_ours(w)), timed(lambda: cold_mp(w)), rounds)
    print(f"cold start (create + map {COLD} + close), in a fresh interpreter: ours "
          f"{first_ours * 1e3:.1f} ms, multiprocessing.Pool(fork) {first_mp * 1e3:.1f} ms; "
          f"again in the same process: ours {ours * 1e3:.1f} ms, multiprocessing.Pool {mp * 1e3:.1f} ms")
    line("cold start, fresh interpreter / multiprocessing.Pool (time)", first_ours / first_mp, 1.5, True)
    line("cold start, launcher warm / multiprocessing.Pool (time)", ours / mp, 1.5, True)


def bench_tiny(pool, mp_pool, w, rounds):
    fn = lambda x: x * x  # noqa: E731  (a lambda on purpose: we take any callable)
    pool.map(fn, range(1000))
    mp_pool.map(square, range(1000))
    ours, mp = interleaved(timed(lambda: pool.map(fn, range(TINY))),
                           timed(lambda: mp_pool.map(square, range(TINY))), rounds)
    print(f"{TINY:,} tiny tasks: ours {TINY / ours:,.0f}/s (lambda, automatic chunks), "
          f"multiprocessing.Pool {TINY / mp:,.0f}/s (module function)")
    line("tiny tasks / multiprocessing.Pool (throughput)", mp / ours, 0.8)
    loky = optional("loky")
    if loky is None:
        print("loky is not installed: comparison skipped")
        return
    chunk = -(-TINY // (w * 4))  # multiprocessing's own automatic chunk size
    executor = loky.get_reusable_executor(max_workers=w)
    list(executor.map(fn, range(1000), chunksize=chunk))
    ours, theirs = interleaved(timed(lambda: pool.map(fn, range(TINY), chunksize=chunk)),
                               timed(lambda: list(executor.map(fn, range(TINY), chunksize=chunk))),
                               rounds)
    print(f"  chunksize {chunk}: ours {TINY / ours:,.0f}/s, loky {TINY / theirs:,.0f}/s")
    line(f"tiny tasks / loky reusable executor, chunksize {chunk} (throughput)", theirs / ours, 1.0)
    executor.shutdown()


def bench_cpu(pool, mp_pool, w, rounds):
    ideal = CPU_TASKS * CPU_SECONDS / w
    ours, bare = interleaved(timed(lambda: pool.map(burn, range(CPU_TASKS))),
                             timed(lambda: bare_processes(w)), rounds)
    mp = statistics.median(timed(lambda: mp_pool.map(burn, range(CPU_TASKS)))() for _ in range(3))
    print(f"{CPU_TASKS} tasks of {CPU_SECONDS * 1e3:g} ms CPU: ours {ours * 1e3:.0f} ms, "
          f"{w} bare processes {bare * 1e3:.0f} ms, multiprocessing.Pool {mp * 1e3:.0f} ms, "
          f"ideal {ideal * 1e3:.0f} ms")
    line("CPU tasks: ideal two-core time / ours", ideal / ours, 0.9)
    line("CPU tasks: bare processes now / ours (context: shared cores)", bare / ours, 0.9)


def bench_big(pool, w, rounds):
    with concurrent.futures.ProcessPoolExecutor(w) as executor:
        list(executor.map(megabyte, range(4)))
        pool.map(megabyte, range(4))
        ours, theirs = interleaved(timed(lambda: pool.map(megabyte, range(BIG))),
                                   timed(lambda: list(executor.map(megabyte, range(BIG)))), rounds)
    print(f"{BIG} results of 1 MiB: ours {BIG / ours:,.0f}/s, ProcessPoolExecutor {BIG / theirs:,.0f}/s")
    line("1 MiB results / ProcessPoolExecutor (throughput)", theirs / ours, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    w, rounds = args.workers, args.rounds
    bench_cold(w, rounds)
    with Pool(w) as pool, multiprocessing.get_context("fork").Pool(w) as mp_pool:
        bench_tiny(pool, mp_pool, w, rounds)
        bench_cpu(pool, mp_pool, w, rounds)
        bench_big(pool, w, rounds)


if __name__ == "__main__":
    main()
