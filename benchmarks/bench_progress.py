"""What `progress=` costs a map, as ratios measured in one run.

    python benchmarks/bench_progress.py [--workers 2] [--rounds 9] [--items 100000]

100,000 tiny tasks (`x * x`) through `Pool.map`, with and without progress, the two sides
alternated for `--rounds` rounds (each of 5 maps) on the same pool (see `_common.interleaved`). Printed
ratios are throughput ratios, with progress over without (1.0: free):

1. `progress=callback(done, total)` (a callable that only counts): target >= 0.95x.
2. `progress=True` with the plain stderr line (into a buffer, as a log file would be), and
   3. `Executor.map(..., progress=callback)` against `Executor.map` without, for context.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from contextlib import redirect_stderr
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, report  # noqa: E402

from skprocessing import Executor  # noqa: E402
from skprocessing.core.pool import Pool  # noqa: E402
import skprocessing.core.pool._progress as _progress  # noqa: E402


def square(x):
    return x * x


REPEAT = 5  # maps per measurement: one map of tiny tasks is too short to time alone


def rate(run, items: int):
    def measure() -> float:
        began = time.perf_counter()
        for _ in range(REPEAT):
            run()
        return REPEAT * items / (time.perf_counter() - began)
    return measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    items = list(range(args.items))
    calls = [0]

    def callback(done: int, total: int | None) -> None:
        calls[0] += 1

    print(f"{args.items} tiny tasks, {args.workers} workers, {args.rounds} rounds")
    with Pool(args.workers) as pool:
        pool.map(square, items)  # warm: workers up, the function's cost measured
        plain = rate(lambda: pool.map(square, items), args.items)
        ours, theirs = interleaved(rate(lambda: pool.map(square, items, progress=callback),
                                        args.items), plain, args.rounds)
        report("Pool.map progress=callback vs none", ours, theirs, "items/s", ">= 0.95x")
        print(f"  (the callback was called {calls[0] // (args.rounds * REPEAT)} times a map)")

        def with_line() -> None:
            with redirect_stderr(io.StringIO()):
                pool.map(square, items, progress=True)

        tqdm_bar = _progress._tqdm_bar
        _progress._tqdm_bar = lambda name: None  # the plain line, what a log would get
        try:
            ours, theirs = interleaved(rate(with_line, args.items), plain, args.rounds)
        finally:
            _progress._tqdm_bar = tqdm_bar
        report("Pool.map progress=True (plain line) vs none", ours, theirs, "items/s", ">= 0.95x")
    with Executor(args.workers) as ex:
        list(ex.map(square, items))
        ours, theirs = interleaved(
            rate(lambda: list(ex.map(square, items, progress=callback)), args.items),
            rate(lambda: list(ex.map(square, items)), args.items), args.rounds)
        report("Executor.map progress=callback vs none", ours, theirs, "items/s", ">= 0.95x")


if __name__ == "__main__":
    main()
