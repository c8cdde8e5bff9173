"""A head program the stall tests drive over stdin: `python -m tests.adversarial._head URL`.

Commands (one a line): `map` (prints the sum of a pool map), `count N` (N Share
increments, prints the counter), `busy S` (holds the GIL for S seconds in a C call,
as a long regex would), `quit`. It prints `ready <coordinator pid>` first."""

from __future__ import annotations

import ctypes
import os
import sys

from skprocessing import Pool, Share


class Probe:
    def pid(self) -> int:
        return os.getpid()


def square(x: int) -> int:
    return x * x


def main(url: str) -> None:
    with Pool(2, transport=url) as pool:
        share = Share(transport=pool)
        share.counter = 0
        share.probe = Probe()
        print("ready", share.probe.pid(), flush=True)
        for line in sys.stdin:
            command, *args = line.split()
            if command == "map":
                print("map", sum(pool.map(square, range(1000))), flush=True)
            elif command == "count":
                for _ in range(int(args[0])):
                    share.counter += 1
                print("count", share.counter, flush=True)
            elif command == "busy":
                ctypes.PyDLL(None).sleep(int(args[0]))  # a PyDLL call keeps the GIL
                print("busy done", flush=True)
            elif command == "quit":
                break
        share.stop()


if __name__ == "__main__":
    main(sys.argv[1])
