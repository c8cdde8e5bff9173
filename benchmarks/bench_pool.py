"""Pool throughput against the libraries users would otherwise pick, as ratios in one run.

    .venv/bin/python benchmarks/bench_pool.py [--workers 2] [--repeat 5]

Each figure is the best of `--repeat` runs (the least disturbed by other load), and
each ratio compares two figures from this same run. A ratio above 1.0 means we are faster.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import time

from skprocessing.core.pool import Pool

TINY = 100_000
COLD = 2_000
CPU_TASKS, CPU_SECONDS = 200, 0.005
BIG, BIG_SIZE = 50, 1 << 20


def square(x):
    return x * x


def burn(_):
    end = time.perf_counter() + CPU_SECONDS
    while time.perf_counter() < end:
        pass
    return None


def megabyte(_):
    return bytes(BIG_SIZE)


def best(repeat, run):
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def report(name, ours, theirs, target, higher_is_better=True):
    ratio = theirs / ours if higher_is_better else ours / theirs
    ok = ratio >= target if higher_is_better else ratio <= target
    sign = ">=" if higher_is_better else "<="
    print(f"{name:58s} {ratio:6.2f}x  (target {sign} {target}: {'ok' if ok else 'MISSED'})")


def cold_ours(workers):
    with Pool(workers) as pool:
        pool.map(lambda x: x * x, range(COLD))


def cold_mp(workers):
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(square, range(COLD))
        pool.close()
        pool.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    w, r = args.workers, args.repeat

    # Cold start first, while this process has no launcher yet.
    began = time.perf_counter()
    cold_ours(w)
    first_ever = time.perf_counter() - began
    mp_cold = best(r, lambda: cold_mp(w))
    ours_cold = best(r, lambda: cold_ours(w))
    print(f"cold start (create + map {COLD} + close): ours first-ever {first_ever * 1e3:.1f} ms, "
          f"ours launcher warm {ours_cold * 1e3:.1f} ms, multiprocessing.Pool(fork) "
          f"{mp_cold * 1e3:.1f} ms")
    report("cold start, launcher warm vs multiprocessing.Pool (time)", ours_cold, mp_cold, 1.5,
           higher_is_better=False)
    report("cold start, first-ever vs multiprocessing.Pool (time)", first_ever, mp_cold, 1.5,
           higher_is_better=False)

    chunk = -(-TINY // (w * 4))  # multiprocessing's own automatic chunk size
    with Pool(w) as pool, multiprocessing.get_context("fork").Pool(w) as mp_pool:
        square_lambda = lambda x: x * x  # noqa: E731  (a lambda on purpose: we take any callable)
        pool.map(square_lambda, range(1000))
        mp_pool.map(square, range(1000))
        ours = best(r, lambda: pool.map(square_lambda, range(TINY)))
        theirs = best(r, lambda: mp_pool.map(square, range(TINY)))
        print(f"{TINY} tiny tasks: ours {TINY / ours:,.0f}/s (lambda), "
              f"multiprocessing.Pool {TINY / theirs:,.0f}/s (module function)")
        report("tiny tasks vs multiprocessing.Pool (throughput)", ours, theirs, 0.8)
        try:
            from loky import get_reusable_executor
        except ImportError:
            print("loky not installed: skipped")
        else:
            executor = get_reusable_executor(max_workers=w)
            list(executor.map(square_lambda, range(1000), chunksize=chunk))
            loky_time = best(r, lambda: list(executor.map(square_lambda, range(TINY), chunksize=chunk)))
            ours_fixed = best(r, lambda: pool.map(square_lambda, range(TINY), chunksize=chunk))
            print(f"  at chunksize {chunk}: ours {TINY / ours_fixed:,.0f}/s, "
                  f"loky {TINY / loky_time:,.0f}/s")
            report(f"tiny tasks vs loky reusable executor, chunksize {chunk}", ours_fixed, loky_time, 1.0)
            executor.shutdown()

        ideal = CPU_TASKS * CPU_SECONDS / w
        cpu = best(r, lambda: pool.map(burn, range(CPU_TASKS)))
        print(f"{CPU_TASKS} tasks of {CPU_SECONDS * 1e3:g} ms CPU: ours {cpu * 1e3:.0f} ms, "
              f"ideal {ideal * 1e3:.0f} ms")
        report("CPU tasks vs ideal two-core time (ideal / ours)", cpu, ideal, 0.9)

        big = best(r, lambda: pool.map(megabyte, range(BIG)))
    with concurrent.futures.ProcessPoolExecutor(w) as executor:
        list(executor.map(megabyte, range(4)))
        ppe = best(r, lambda: list(executor.map(megabyte, range(BIG))))
    print(f"{BIG} results of 1 MiB: ours {BIG / big:,.0f}/s, ProcessPoolExecutor {BIG / ppe:,.0f}/s")
    report("1 MiB results vs ProcessPoolExecutor (throughput)", big, ppe, 1.0)


if __name__ == "__main__":
    main()
