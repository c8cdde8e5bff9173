"""Share and Pipe against multiprocessing (and suitkaise, when installed), in one run.

    python benchmarks/bench_share.py [--ops 10000] [--suitkaise-ops 300]

1. 2 worker processes each doing `share.counter += 1` --ops times: operations/s vs a
   `multiprocessing.Manager().Value` guarded by a `Manager().Lock()` (target >= 3x) and vs
   `suitkaise.processing.Share` (target >= 20x, fewer ops: it is slow). Final values are
   checked exactly.
2. The same with `share.items.append(i)` (Manager: `Manager().list()` under the lock).
3. A read of one key of a 1,000-entry shared dict vs a read of a shared int (target ~1x).
4. Pipe send/recv echo vs a bare `multiprocessing.Pipe` echo (target >= 0.8x).
Workers are Skprocesses for Share, fork `multiprocessing.Process`es for the baselines.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median_seconds, optional, report  # noqa: E402

from skprocessing import Skprocess  # noqa: E402
from skprocessing.core.pipe import Pipe  # noqa: E402
from skprocessing.core.share import Share  # noqa: E402

WORKERS = 2
_fork = multiprocessing.get_context("fork")


class Count(Skprocess):
    def __init__(self, share, ops: int):
        self.share, self.ops = share, ops

    def __run__(self):
        share = self.share
        for _ in range(self.ops):
            share.counter += 1


class Append(Skprocess):
    def __init__(self, share, ops: int):
        self.share, self.ops = share, ops

    def __run__(self):
        share = self.share
        for i in range(self.ops):
            share.items.append(i)


def _timed_processes(processes) -> float:
    began = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.result() if hasattr(process, "result") else process.join()
    return time.perf_counter() - began


def ours(kind: str, ops: int) -> float:
    with Share() as share:
        share.counter, share.items = 0, []
        worker = Count if kind == "counter" else Append
        elapsed = _timed_processes([worker(share, ops) for _ in range(WORKERS)])
        final = share.counter if kind == "counter" else len(share.items)
    assert final == WORKERS * ops, f"ours {kind}: {final} != {WORKERS * ops}"
    return WORKERS * ops / elapsed


def _manager_count(value, lock, ops):
    for _ in range(ops):
        with lock:
            value.value += 1


def _manager_append(items, lock, ops):
    for i in range(ops):
        with lock:
            items.append(i)


def manager(kind: str, ops: int) -> float:
    with _fork.Manager() as mgr:
        lock = mgr.Lock()
        target = mgr.Value("i", 0) if kind == "counter" else mgr.list()
        fn = _manager_count if kind == "counter" else _manager_append
        elapsed = _timed_processes([_fork.Process(target=fn, args=(target, lock, ops))
                                    for _ in range(WORKERS)])
        final = target.value if kind == "counter" else len(target)
    assert final == WORKERS * ops, f"manager {kind}: {final} != {WORKERS * ops}"
    return WORKERS * ops / elapsed


def suitkaise_rate(kind: str, ops: int) -> float | None:
    sk = optional("suitkaise.processing")
    if sk is None:
        return None

    class SkCount(sk.Skprocess):
        def __init__(self, share, ops):
            self.share, self.ops = share, ops

        def __run__(self):
            for i in range(self.ops):
                if kind == "counter":
                    self.share.counter += 1
                else:
                    self.share.items.append(i)

    share = sk.Share()
    try:
        share.counter, share.items = 0, []
        elapsed = _timed_processes([SkCount(share, ops) for _ in range(WORKERS)])
        final = share.counter if kind == "counter" else len(share.items)
        assert final == WORKERS * ops, f"suitkaise {kind}: {final} != {WORKERS * ops}"
    finally:
        share.stop()
    return WORKERS * ops / elapsed


def reads(count: int) -> tuple[float, float]:
    with Share() as share:
        share.n = 7
        share.d = {f"k{i}": i for i in range(1000)}
        share.n, share.d["k500"]  # warm up: connection, method names
        int_read = median_seconds(lambda: [share.n for _ in range(count)], repeat=5) / count
        key_read = median_seconds(lambda: [share.d["k500"] for _ in range(count)], repeat=5) / count
    return int_read, key_read


def _echo(end):
    while True:
        obj = end.recv()
        if obj is None:
            break
        end.send(obj)


def echo_rate(make_pair, rounds: int) -> float:
    here, there = make_pair()
    child = _fork.Process(target=_echo, args=(there,))
    child.start()
    message = {"op": "work", "n": 42, "data": list(range(10))}
    here.send(message)
    here.recv()
    began = time.perf_counter()
    for _ in range(rounds):
        here.send(message)
        here.recv()
    elapsed = time.perf_counter() - began
    here.send(None)
    child.join()
    return rounds / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=10000)
    parser.add_argument("--suitkaise-ops", type=int, default=300)
    parser.add_argument("--echoes", type=int, default=10000)
    args = parser.parse_args()
    for kind, label in (("counter", "share.counter += 1"), ("items", "share.items.append(i)")):
        rate = ours(kind, args.ops)
        report(f"{label}, {WORKERS}x{args.ops}: vs Manager Value/list + Lock", rate,
               manager(kind, args.ops), "ops/s", ">= 3x", True)
        theirs = suitkaise_rate(kind, args.suitkaise_ops)
        if theirs is None:
            print(f"{label}: suitkaise not installed, comparison skipped")
        else:
            report(f"{label}: vs suitkaise Share ({WORKERS}x{args.suitkaise_ops} ops)", rate,
                   theirs, "ops/s", ">= 20x", True)
    int_read, key_read = reads(2000)
    report("read share.d['k500'] (1,000 keys) vs read share.n", key_read, int_read, "s", "~1x",
           False)
    report("Pipe send/recv echo vs bare multiprocessing.Pipe", echo_rate(Pipe.pair, args.echoes),
           echo_rate(_fork.Pipe, args.echoes), "rt/s", ">= 0.8x", True)


if __name__ == "__main__":
    main()
