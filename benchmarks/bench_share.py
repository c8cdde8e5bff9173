"""Share and Pipe against multiprocessing (and suitkaise, when installed), in one run.

    python benchmarks/bench_share.py [--ops 10000] [--suitkaise-ops 10000] [--repeat 3]

Each rate is the median of --repeat rounds (3; ours and the baselines take turns within a
round), each timed from starting the workers to reading the final value (so writes still
in flight count).

1. 2 worker processes each doing `share.counter += 1` --ops times: operations/s vs a
   `multiprocessing.Manager().Value` guarded by a `Manager().Lock()` (target >= 3x) and vs
   `suitkaise.processing.Share` (target >= 20x). Our final values are checked exactly; the
   reference's are printed when it loses updates.
2. The same with `share.items.append(i)` (Manager: `Manager().list()` under the lock).
3. A read of one key of a 1,000-entry shared dict vs a read of a shared int (target ~1x).
4. Pipe send/recv echo vs a bare `multiprocessing.Pipe` echo (target >= 0.8x).
5. A remote Share: `share.counter += 1` from 2 processes with the Share (and the
   processes) on the ZeroMQ transport over tcp://127.0.0.1, as a ratio to the same on the
   local transport (target >= 0.5x). Timed from "go" (workers started and connected) until
   every worker said "done" and the final value was read (exactly 2 x --ops).
6. Share writes inside pool tasks: a `Pool(2).map` over --pool-items items, each doing
   `share.counter += 1` --pool-writes times (1, then 100), with `Share(exactly_once=True)`
   (writes held in the worker, sent with the result, applied by the head) as a ratio to
   the plain Share (each write sent by the worker as it is made); timed from the map's
   start to the final read (checked exact). Target ~1x for one write an item. Then the
   same on a ZeroMQ pool over tcp://127.0.0.1 (--pool-items / 4 items), the Share on
   the pool's transport.
Workers are Skprocesses for Share, fork `multiprocessing.Process`es for the baselines.

    python benchmarks/bench_share.py --only remote     # section 5 alone
    python benchmarks/bench_share.py --only pool       # section 6 alone
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import statistics
import time

from skprocessing import Pool, Skprocess
from skprocessing.core.pipe import Pipe
from skprocessing.core.share import Share

WORKERS = 2
_fork = multiprocessing.get_context("fork")


def report(title: str, ours: float, theirs: float, unit: str, target: str) -> float:
    """One comparison line; the ratio is ours/theirs (rates: higher is better)."""
    ratio = ours / theirs
    print(f"{title:60} ours {ours:10.4g} {unit:6} theirs {theirs:10.4g}  ratio {ratio:6.2f}x"
          f"  (target {target})", flush=True)
    return ratio


def _seconds(call) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def optional(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


class Count(Skprocess):
    def __init__(self, share, ops: int):
        self.process_config.runs = 1
        self.share, self.ops = share, ops

    def __run__(self):
        share = self.share
        for _ in range(self.ops):
            share.counter += 1


class Append(Skprocess):
    def __init__(self, share, ops: int):
        self.process_config.runs = 1
        self.share, self.ops = share, ops

    def __run__(self):
        share = self.share
        for i in range(self.ops):
            share.items.append(i)


def _run_all(processes) -> None:
    """Start all, wait for all. Timings stop after the final value is read, so writes still
    in flight when a worker ends are counted."""
    for process in processes:
        process.start()
    for process in processes:
        if hasattr(process, "result"):
            process.result()
        else:
            process.join()


def ours(kind: str, ops: int) -> float:
    with Share() as share:
        share.counter, share.items = 0, []
        worker = Count if kind == "counter" else Append
        began = time.perf_counter()
        _run_all([worker(share, ops) for _ in range(WORKERS)])
        final = share.counter if kind == "counter" else len(share.items)
        elapsed = time.perf_counter() - began
    assert final == WORKERS * ops, f"ours {kind}: {final} != {WORKERS * ops}"
    return WORKERS * ops / elapsed


class Timed(Skprocess):
    """Connects, says "ready", counts on "go", says "done", ends on "bye"."""

    def __init__(self, share, ops: int):
        self.process_config.runs = 1
        self.share, self.ops = share, ops

    def __run__(self):
        share = self.share
        share.counter += 0  # connect before the clock starts
        self.tell("ready")
        self.listen(60)
        for _ in range(self.ops):
            share.counter += 1
        self.tell("done")
        self.listen(60)


def counting_rate(url: str | None, ops: int) -> float:
    """Increments/s of `share.counter += 1` from WORKERS processes, Share and processes on
    transport `url` (None: local)."""
    share = Share(transport=url)
    try:
        share.counter = 0
        workers = [Timed(share, ops) for _ in range(WORKERS)]
        for worker in workers:
            worker.start(transport=url)
        for worker in workers:
            assert worker.listen(60) == "ready"
        began = time.perf_counter()
        for worker in workers:
            worker.tell("go")
        for worker in workers:
            assert worker.listen(120) == "done"
        final = share.counter
        elapsed = time.perf_counter() - began
        for worker in workers:
            worker.tell("bye")
            worker.result()
        assert final == WORKERS * ops, f"{url or 'local'}: {final} != {WORKERS * ops}"
        return WORKERS * ops / elapsed
    finally:
        share.stop()


def remote(ops: int, repeat: int) -> None:
    rates = _interleaved({"tcp": lambda: counting_rate("tcp://127.0.0.1:0", ops),
                          "local": lambda: counting_rate(None, ops)}, repeat)
    report(f"remote Share (tcp://127.0.0.1) share.counter += 1, {WORKERS}x{ops}: vs local",
           rates["tcp"], rates["local"], "ops/s", ">= 0.5x")


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
        began = time.perf_counter()
        _run_all([_fork.Process(target=fn, args=(target, lock, ops)) for _ in range(WORKERS)])
        final = target.value if kind == "counter" else len(target)
        elapsed = time.perf_counter() - began
    assert final == WORKERS * ops, f"manager {kind}: {final} != {WORKERS * ops}"
    return WORKERS * ops / elapsed


def suitkaise_rate(kind: str, ops: int) -> float | None:
    sk = optional("suitkaise.processing")
    if sk is None:
        return None

    class SkCount(sk.Skprocess):
        def __init__(self, share, ops):
            self.share, self.ops = share, ops
            self.process_config.runs = 1  # suitkaise's default is to run until stop()

        def __run__(self):
            for i in range(self.ops):
                if kind == "counter":
                    self.share.counter += 1
                else:
                    self.share.items.append(i)

    share = sk.Share()
    try:
        share.counter, share.items = 0, []
        began = time.perf_counter()
        _run_all([SkCount(share, ops) for _ in range(WORKERS)])
        final = share.counter if kind == "counter" else len(share.items)
        elapsed = time.perf_counter() - began
        if final != WORKERS * ops:  # the reference loses updates under contention
            print(f"  (suitkaise {kind}: final value {final}, expected {WORKERS * ops})")
    finally:
        share.stop()
    return WORKERS * ops / elapsed


def reads(count: int) -> tuple[float, float]:
    with Share() as share:
        share.n = 7
        share.d = {f"k{i}": i for i in range(1000)}
        share.n, share.d["k500"]  # warm up: connection, method names
        times = _interleaved({"int": lambda: _seconds(lambda: [share.n for _ in range(count)]),
                              "key": lambda: _seconds(lambda: [share.d["k500"]
                                                               for _ in range(count)])}, 7)
    return times["int"] / count, times["key"] / count


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


def _add_in_task(args) -> None:
    share, writes = args
    for _ in range(writes):
        share.counter += 1


def pool_writes_rate(pool: Pool, exactly_once: bool, items: int, writes: int) -> float:
    local = pool.transport.name == "local"
    share = Share(exactly_once=exactly_once) if local else Share(transport=pool,
                                                                 exactly_once=exactly_once)
    try:
        share.counter = 0
        began = time.perf_counter()
        pool.map(_add_in_task, [(share, writes)] * items)
        total = share.counter
        elapsed = time.perf_counter() - began
        assert total == items * writes, (total, items * writes)
        return items * writes / elapsed
    finally:
        share.stop()


def pool_tasks(items: int, repeat: int, transport: str | None = None) -> None:
    with Pool(WORKERS, transport=transport) as pool:
        pool.map(abs, range(WORKERS * 4))  # workers up
        where = "" if transport is None else f" on {transport}"
        for writes in (1, 100):
            count = max(items // writes, WORKERS * 8)
            rates = _interleaved({"once": lambda: pool_writes_rate(pool, True, count, writes),
                                  "plain": lambda: pool_writes_rate(pool, False, count, writes)},
                                 repeat)
            report(f"pool task writes{where} ({count} x {writes} += 1): exactly_once vs plain",
                   rates["once"], rates["plain"], "wr/s", "~1x" if writes == 1 else "report")


def _interleaved(measures: dict, repeat: int) -> dict:
    """Median of `repeat` rounds per measure, the measures taking turns within each round,
    so a change in the machine's load (it is shared) hits all of them alike."""
    samples: dict = {name: [] for name in measures}
    for _ in range(repeat):
        for name, measure in measures.items():
            samples[name].append(measure())
    return {name: None if None in values else statistics.median(values)
            for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=10000)
    parser.add_argument("--suitkaise-ops", type=int, default=10000)
    parser.add_argument("--echoes", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are kept")
    parser.add_argument("--pool-items", type=int, default=20000)
    parser.add_argument("--only", choices=["remote", "pool"], default=None,
                        help="one section alone")
    args = parser.parse_args()
    if args.only == "remote":
        remote(args.ops, args.repeat)
        return
    if args.only == "pool":
        pool_tasks(args.pool_items, args.repeat)
        pool_tasks(args.pool_items // 4, args.repeat, "tcp://127.0.0.1")
        return
    for kind, label in (("counter", "share.counter += 1"), ("items", "share.items.append(i)")):
        rates = _interleaved({"ours": lambda: ours(kind, args.ops),
                              "manager": lambda: manager(kind, args.ops),
                              "suitkaise": lambda: suitkaise_rate(kind, args.suitkaise_ops)},
                             args.repeat)
        report(f"{label}, {WORKERS}x{args.ops}: vs Manager Value/list + Lock", rates["ours"],
               rates["manager"], "ops/s", ">= 3x")
        if rates["suitkaise"] is None:
            print(f"{label}: suitkaise not installed, comparison skipped")
        else:
            report(f"{label}: vs suitkaise Share ({WORKERS}x{args.suitkaise_ops} ops)",
                   rates["ours"], rates["suitkaise"], "ops/s", ">= 20x")
    int_read, key_read = reads(2000)
    report("reads/s of share.d['k500'] (1,000 keys) vs of share.n", 1 / key_read, 1 / int_read,
           "rd/s", "~1x")
    echo = _interleaved({"ours": lambda: echo_rate(Pipe.pair, args.echoes),
                         "mp": lambda: echo_rate(_fork.Pipe, args.echoes)}, args.repeat)
    report("Pipe send/recv echo vs bare multiprocessing.Pipe", echo["ours"], echo["mp"],
           "rt/s", ">= 0.8x")
    remote(args.ops, args.repeat)
    pool_tasks(args.pool_items, args.repeat)
    pool_tasks(args.pool_items // 4, args.repeat, "tcp://127.0.0.1")


if __name__ == "__main__":
    main()
