"""Skprocess against bare multiprocessing (fork), measured in one run on this machine.

    python benchmarks/bench_process.py

1. start -> result of a one-run no-op process: median time, vs `multiprocessing.Process`
   + `Queue` with fork. Reported as the time ratio ours/theirs (target: at most 2x).
2. tell/listen echo, one `__run__` per round trip as users write it: round trips/s vs a bare
   `multiprocessing.Pipe` echo with fork (target: at least 0.6x).
3. For reference (no target): the same two on a worker of a warm ZeroMQ pool over
   tcp://127.0.0.1 (`start(on=pool)`), as ratios to the local process.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, median_seconds, optional, report  # noqa: E402

from skprocessing import Skprocess  # noqa: E402

ECHOES = 5000


class NoOp(Skprocess):
    def __init__(self):
        self.process_config.runs = 1

    def __run__(self):
        pass


class Echo(Skprocess):
    def __init__(self, count: int):
        self.process_config.runs = count

    def __run__(self):
        self.tell(self.listen())


def _queue_child(queue):
    queue.put(None)


def bare_start_result(ctx) -> None:
    queue = ctx.Queue()
    process = ctx.Process(target=_queue_child, args=(queue,))
    process.start()
    queue.get()
    process.join()


def _pipe_echo_child(conn, count):
    for _ in range(count):
        conn.send(conn.recv())


def bare_echo(ctx, count: int) -> float:
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_pipe_echo_child, args=(child, count))
    process.start()
    began = time.perf_counter()
    for i in range(count):
        parent.send(i)
        parent.recv()
    elapsed = time.perf_counter() - began
    process.join()
    return count / elapsed


def our_echo(count: int, on=None) -> float:
    process = Echo(count)
    process.start(on=on)
    began = time.perf_counter()
    for i in range(count):
        process.tell(i)
        process.listen()
    elapsed = time.perf_counter() - began
    process.result()
    return count / elapsed


def suitkaise_figures() -> None:
    sk = optional("suitkaise.processing")
    if sk is None:
        print("(suitkaise not installed: reference column skipped)")
        return

    class RefNoOp(sk.Skprocess):
        def __init__(self):
            self.process_config.runs = 1  # its default, None, loops until stop()

        def __run__(self):
            pass

    def ref_once():
        process = RefNoOp()
        process.start()
        process.wait()
        process.result()

    reference = median_seconds(ref_once, 10)
    ours = median_seconds(lambda: NoOp().run(), 10)
    report("start -> result vs suitkaise 0.4.14 (median ms)", ours * 1e3, reference * 1e3, "ms", "lower is better")


def main() -> None:
    fork = multiprocessing.get_context("fork")
    ours, bare = interleaved(lambda: median_seconds(lambda: NoOp().run(), 10),
                             lambda: median_seconds(lambda: bare_start_result(fork), 10), rounds=5)
    report("start -> result, one-run no-op (median ms)", ours * 1e3, bare * 1e3, "ms", "<= 2x")
    our_rate, bare_rate = interleaved(lambda: our_echo(ECHOES), lambda: bare_echo(fork, ECHOES), rounds=5)
    report("tell/listen echo (round trips/s)", our_rate, bare_rate, "rt/s", ">= 0.6x")
    suitkaise_figures()
    remote_figures()


def remote_figures() -> None:
    from skprocessing import Pool
    with Pool(2, transport="tcp://127.0.0.1") as pool:
        def remote_once():
            process = NoOp()
            process.start(on=pool)
            process.result()
        remote, local = interleaved(lambda: median_seconds(remote_once, 10),
                                    lambda: median_seconds(lambda: NoOp().run(), 10), rounds=5)
        report("start(on=zmq pool) -> result vs local (median ms)", remote * 1e3, local * 1e3,
               "ms", "reference")
        remote_rate, local_rate = interleaved(lambda: our_echo(ECHOES // 5, pool),
                                              lambda: our_echo(ECHOES // 5), rounds=5)
        report("tell/listen echo on a zmq pool worker vs local", remote_rate, local_rate,
               "rt/s", "reference")


if __name__ == "__main__":
    main()
