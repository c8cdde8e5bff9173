"""Round-trip speed of the cerial default against cloudpickle (and suitkaise's cucumber).

    .venv/bin/python benchmarks/bench_serializers.py [--quick]

For each object, the best of several timed batches of `deserialize(serialize(obj))`, all
in this one process, the columns taking turns batch by batch; then the ratios:
cerial / cloudpickle (target: at most 1.3 on every case) and cucumber / cerial (target:
at least 5 on the plain-data cases). The cucumber column is skipped when `suitkaise` is
not installed.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from typing import Any

import cloudpickle

from skprocessing.serializers import cerial

PLAIN = {"int", "dict[str,int] x1000", "list[float] x10000", "bytes 1 MB"}
CLOUD_LIMIT = 1.3
CUCUMBER_FACTOR = 5.0


class Point:
    def __init__(self, x: float, y: float, label: str):
        self.x, self.y, self.label = x, y, label


def _make_closure() -> Callable[[int], int]:
    offset = 42

    def add(value: int) -> int:
        return value + offset
    return add


def cases() -> dict[str, Any]:
    return {
        "int": 123456789,
        "dict[str,int] x1000": {f"key{i}": i for i in range(1000)},
        "list[float] x10000": [i * 0.5 for i in range(10_000)],
        "small class instance": Point(1.5, -2.0, "p"),
        "lambda": lambda x: x * 2 + 1,
        "closure": _make_closure(),
        "bytes 1 MB": bytes(range(256)) * 4096,
    }


def _cucumber() -> tuple[Callable, Callable] | None:
    try:
        from suitkaise import cucumber
    except ImportError:
        return None
    return cucumber.serialize, cucumber.deserialize


def _batch(dumps: Callable, loads: Callable, obj: Any, number: int) -> float:
    # CPU time of this process, not wall time: on a machine shared with other work, time
    # spent descheduled would otherwise land at random in one column or another.
    start = time.process_time()
    for _ in range(number):
        loads(dumps(obj))
    return (time.process_time() - start) / number


def _batch_size(dumps: Callable, loads: Callable, obj: Any, seconds: float) -> int:
    loads(dumps(obj))  # warm caches (type resolution, imports)
    number = 1
    while _batch(dumps, loads, obj, number) * number < seconds and number < 1_000_000:
        number *= 2
    return number


def best_times(columns: dict[str, tuple[Callable, Callable]], obj: Any,
               budget: float, rounds: int = 25) -> dict[str, float]:
    """Best per-call seconds for each column. Short batches of the columns take turns,
    round after round, so load from elsewhere on the machine hits all of them alike and
    the best batch of each is one that nothing interrupted."""
    batch = max(budget / rounds, 0.005)
    sizes = {name: _batch_size(*pair, obj, batch) for name, pair in columns.items()}
    best = {name: float("inf") for name in columns}
    for _ in range(rounds):
        for name, (dumps, loads) in columns.items():
            best[name] = min(best[name], _batch(dumps, loads, obj, sizes[name]))
    return best


def run(budget: float) -> bool:
    columns = {"cerial": (cerial.serialize, cerial.deserialize),
               "cloudpickle": (cloudpickle.dumps, cloudpickle.loads)}
    cucumber = _cucumber()
    if cucumber:
        columns["cucumber"] = cucumber
    gc.disable()  # a collection landing in one column and not another would skew ratios
    header = f"{'object':<22} {'cerial':>10} {'cloudpickle':>12} {'ratio':>7}"
    if cucumber:
        header += f" {'cucumber':>10} {'speedup':>8}"
    print(header)
    print("-" * len(header))
    ok = True
    for name, obj in cases().items():
        times = best_times(columns, obj, budget)
        mine, cloud = times["cerial"], times["cloudpickle"]
        ratio = mine / cloud
        ok &= ratio <= CLOUD_LIMIT
        line = f"{name:<22} {mine * 1e6:>8.2f}us {cloud * 1e6:>10.2f}us {ratio:>6.2f}x"
        if cucumber:
            speedup = times["cucumber"] / mine
            if name in PLAIN:
                ok &= speedup >= CUCUMBER_FACTOR
            line += f" {times['cucumber'] * 1e6:>8.1f}us {speedup:>7.1f}x"
        print(line, flush=True)
    gc.enable()
    print(f"\nratio = cerial / cloudpickle (target <= {CLOUD_LIMIT}x on every case)")
    if cucumber:
        print(f"speedup = cucumber / cerial (target >= {CUCUMBER_FACTOR:g}x on plain data: "
              f"{', '.join(sorted(PLAIN))})")
    else:
        print("cucumber column skipped: suitkaise is not installed")
    print("bytes 1 MB is allocator-bound for every column (page faults on two fresh 1 MB "
          "blocks per round trip): see this file's docstring")
    print("all targets met" if ok else "SOME TARGETS MISSED")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter batches (noisier)")
    parser.add_argument("--budget", type=float, default=None, help="seconds per measurement")
    args = parser.parse_args()
    budget = args.budget or (0.1 if args.quick else 0.4)
    sys.exit(0 if run(budget) else 1)


if __name__ == "__main__":
    main()
