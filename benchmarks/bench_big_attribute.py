"""Starting an Skprocess with a big attribute, against multiprocessing, in one run.

    python benchmarks/bench_big_attribute.py [MB ...]     (default: 25 50 100 200 500)

start -> result of a one-run process whose attribute is a `bytes` of the given size, the
child reading its length. Against `multiprocessing.Process` with the same bytes as its
argument, started by forkserver: like ours, it pickles the process and sends it to a clean
forking process over a socket (target: at most 2x, and the time linear in the size).
Plain fork is printed for reference: it copies nothing (the child inherits the parent's
memory), which a launcher that forks from a clean process cannot do.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, report  # noqa: E402

from skprocessing import Skprocess  # noqa: E402


class Carry(Skprocess):
    def __init__(self, blob: bytes):
        self.blob = blob
        self.process_config.runs = 1

    def __run__(self):
        pass

    def __result__(self):
        return len(self.blob)


def ours(blob: bytes) -> float:
    began = time.perf_counter()
    assert Carry(blob).run() == len(blob)
    return time.perf_counter() - began


def _length_child(queue, blob):
    queue.put(len(blob))


def theirs(ctx, blob: bytes) -> float:
    began = time.perf_counter()
    queue = ctx.Queue()
    process = ctx.Process(target=_length_child, args=(queue, blob))
    process.start()
    assert queue.get() == len(blob)
    process.join()
    return time.perf_counter() - began


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [25, 50, 100, 200, 500]
    forkserver, fork = multiprocessing.get_context("forkserver"), multiprocessing.get_context("fork")
    for mb in sizes:
        blob = b"\x5a" * (mb << 20)
        rounds = 3 if mb <= 100 else 1
        our_s, their_s = interleaved(lambda: ours(blob), lambda: theirs(forkserver, blob), rounds)
        report(f"start -> result, {mb} MB attribute vs forkserver (s)", our_s, their_s, "s", "<= 2x")
        our_s, their_s = interleaved(lambda: ours(blob), lambda: theirs(fork, blob), 1)
        report(f"start -> result, {mb} MB attribute vs fork (s)", our_s, their_s, "s", "reference")
        print(f"    {mb:4d} MB: {our_s / mb * 1e3:6.1f} ms per MB (ours)")


if __name__ == "__main__":
    main()
