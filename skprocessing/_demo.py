"""`python -m skprocessing demo`: a short tour that runs real processes and prints what happens."""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time

from skprocessing import Pool, ProcessTimeoutError, Share, Skprocess


class Squares(Skprocess):
    """Several runs: each iteration squares the next number; the result is the list."""

    def __init__(self, count: int):
        self.process_config.runs = count
        self.squares: list[int] = []

    def __run__(self):
        self.squares.append(self.current_run ** 2)

    def __result__(self):
        return self.squares


class Echo(Skprocess):
    """tell/listen: the child answers each message the parent tells it."""

    def __init__(self, count: int):
        self.process_config.runs = count

    def __run__(self):
        word = self.listen(timeout=10)
        self.tell(word.upper())


class Flaky(Skprocess):
    """A retry: the first attempt fails; the second, with the state the first left, succeeds."""

    def __init__(self):
        self.process_config.runs = 1
        self.process_config.lives = 2
        self.attempts = 0

    def __run__(self):
        self.attempts += 1
        if self.attempts == 1:
            raise ConnectionError("first attempt fails")

    def __result__(self):
        return f"succeeded on attempt {self.attempts}"


class Slow(Skprocess):
    """A timeout: `__run__` sleeps for 10 s under a 0.2 s limit."""

    def __init__(self):
        self.process_config.runs = 1
        self.process_config.timeouts.run = 0.2

    def __run__(self):
        time.sleep(10)


def skprocess_tour() -> None:
    print("== Skprocess ==")
    process = Squares(5)
    print(f"runs:       {process.run()}  ({process.timers.run.num_times} runs timed, "
          f"mean {process.timers.run.mean * 1e6:.1f} us)")

    echo = Echo(3)
    echo.start()
    replies = []
    for word in ("tell", "and", "listen"):
        echo.tell(word)
        replies.append(echo.listen(timeout=10))
    echo.wait()
    print(f"tell/listen: {replies}")

    print(f"retry:      {Flaky().run()}")

    try:
        Slow().run()
    except ProcessTimeoutError as error:
        print(f"timeout:    {type(error).__name__}: {error}")


def pool_tour() -> None:
    print("\n== Pool ==")
    offset = 100
    with Pool(2) as pool:
        print(f"map:        {pool.map(lambda x: x * x, range(8))}  (a lambda)")
        print(f"imap:       {list(pool.imap(lambda x: x + offset, range(4)))}  (a closure)")
        print(f"star:       {pool.star().map(pow, [(2, 10), (3, 4)])}")
        print(f"Skprocess:  {pool.map(Squares, [2, 3])}  (one instance per item)")
        future = pool.map.timeout(30).background()(lambda x: -x, range(3))
        print(f"background: {future.result(timeout=30)}")


def count_into(share: Share, item: int) -> int:
    share.counter += 1               # atomic in the coordinator: no lost updates
    share.squares.append(item * item)
    return share.counter             # reads see the process's own writes


def share_tour() -> None:
    print("\n== Share ==")
    with Share() as share:
        share.counter = 0
        share.squares = []
        with Pool(2) as pool:
            pool.map(lambda i: count_into(share, i), range(200))
        print(f"counter:    {share.counter}  (200 increments from 2 worker processes)")
        print(f"squares:    {len(share.squares)} appended, sum {sum(share.squares)}")


def zmq_tour() -> None:
    print("\n== Pool over ZeroMQ: a head, and a worker agent joining it with 2 processes ==")
    key = secrets.token_hex(32)  # every message is signed with it
    with Pool(0, transport="tcp://127.0.0.1:0", key=key) as pool:  # 0: no local workers
        agent = subprocess.Popen(
            [sys.executable, "-m", "skprocessing", "worker", pool.address, "--workers", "2"],
            env={**os.environ, "SKPROCESSING_KEY": key},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            joined = _wait_for_workers(pool, 2, agent)  # so both share the work below
            total = sum(pool.map(lambda x: x * x, range(10_000)))
            status = pool.status()
            echo = Echo(3)
            echo.start(on=pool)  # one Skprocess on one of the agent's workers
            for word in ("on", "a", "worker"):
                echo.tell(word)
            heard = [echo.listen(timeout=30) for _ in range(3)]
            echo.wait(30)
        finally:
            agent.terminate()  # its workers go with it
            agent.wait(30)
    hosts = ", ".join(f"{host}: {n}" for host, n in status["hosts"].items())
    late = "" if joined else " (not every worker had joined within 60 s)"
    print(f"sum of squares below 10,000: {total}  (head at {status['address']}; "
          f"workers by host: {hosts}{late}; {status['done']} items done)")
    print(f"Skprocess on a worker (start(on=pool)), tell/listen: {heard}")


def _wait_for_workers(pool: Pool, count: int, agent: subprocess.Popen,
                      limit: float = 60.0) -> bool:
    """Wait (at most `limit` s) until `count` workers have joined; False if they have not
    (the agent exited, or the machine is that slow)."""
    deadline = time.monotonic() + limit
    while pool.status()["workers"] < count:
        if agent.poll() is not None or time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m skprocessing demo",
                            description="A short tour of skprocessing that runs real "
                                        "processes and prints what happens.").parse_args(argv)
    skprocess_tour()
    pool_tour()
    share_tour()
    zmq_tour()
    return 0
