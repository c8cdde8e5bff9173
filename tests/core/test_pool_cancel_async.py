"""Cancelling a map started with `.background()` or `.asynced()`, and async iteration
over `imap.asynced()`, as a user's asyncio program does them; real worker processes."""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import CancelledError
from pathlib import Path

import pytest

from skprocessing import Pool

pytestmark = pytest.mark.timeout(90)

LONG = 60.0  # an item's run time: the test ends long before, unless cancelling fails


def record_and_sleep(item):
    """Leaves `started-<index>` in the item's directory, then runs for LONG seconds."""
    directory, index = item
    Path(directory, f"started-{index}").touch()
    time.sleep(LONG)
    return index


def started(directory: Path) -> set[int]:
    return {int(p.name.split("-")[1]) for p in directory.glob("started-*")}


def wait_for_started(directory: Path, count: int, limit: float = 60.0) -> set[int]:
    deadline = time.monotonic() + limit
    while len(seen := started(directory)) < count:
        assert time.monotonic() < deadline, f"only {seen} started"
        time.sleep(0.01)
    return seen


def items(directory: Path, count: int = 20) -> list[tuple[str, int]]:
    return [(str(directory), i) for i in range(count)]


def after_cancel(pool: Pool, directory: Path, seen: set[int]) -> None:
    """The next map runs at once; once the pool has closed (everything it ran is over),
    no item beyond those running at the cancel ever started."""
    assert pool.map(abs, [-1, -2]) == [1, 2]
    pool.close()
    assert started(directory) == seen


def test_future_cancel_stops_the_map(tmp_path):
    pool = Pool(2)
    future = pool.map.background()(record_and_sleep, items(tmp_path))
    seen = wait_for_started(tmp_path, 2)  # both workers busy: nothing else can start
    assert future.cancel() and future.cancelled()
    with pytest.raises(CancelledError):
        future.result(timeout=30)
    after_cancel(pool, tmp_path, seen)


def test_task_cancel_stops_the_async_map(tmp_path):
    pool = Pool(2)

    async def main():
        task = asyncio.ensure_future(pool.map.asynced()(record_and_sleep, items(tmp_path)))
        while len(started(tmp_path)) < 2:
            await asyncio.sleep(0.01)
        seen = started(tmp_path)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return seen

    seen = asyncio.run(main())
    after_cancel(pool, tmp_path, seen)


def test_wait_for_ends_the_unordered_map(tmp_path):
    pool = Pool(2)

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(pool.unordered_map.asynced()(record_and_sleep, items(tmp_path)), 1.0)

    asyncio.run(main())
    seen = started(tmp_path)
    assert len(seen) <= 2  # only what the two workers had begun
    after_cancel(pool, tmp_path, seen)


def test_cancelled_imap_background_and_async_iteration(tmp_path):
    pool = Pool(2)
    future = pool.imap.background()(record_and_sleep, items(tmp_path))
    seen = wait_for_started(tmp_path, 2)
    assert future.cancel()
    after_cancel(pool, tmp_path, seen)

    other = tmp_path / "async"
    other.mkdir()
    with Pool(2) as pool:
        async def main():
            results = pool.imap.asynced()(record_and_sleep, items(other))
            task = asyncio.ensure_future(results.__anext__())
            while len(started(other)) < 2:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return started(other)

        seen = asyncio.run(main())
        after_cancel(pool, other, seen)


def wait_for_gate(item):
    """Item 0 returns at once; the others only once the caller has opened the gate."""
    gate, index = item
    if index:
        deadline = time.monotonic() + 60
        while not os.path.exists(gate):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    return index


@pytest.mark.parametrize("transport", ["local", "tcp://127.0.0.1"])
def test_async_for_streams(tmp_path, transport):
    gate = tmp_path / "gate"

    async def main(pool):
        got = []
        async for value in pool.imap.asynced()(wait_for_gate, [(str(gate), i) for i in range(6)]):
            got.append(value)
            gate.touch()  # only now can the rest finish: the loop had to stream result 0
        return got

    with Pool(2, transport=transport) as pool:
        assert asyncio.run(main(pool)) == [0, 1, 2, 3, 4, 5]


def test_async_for_raises_task_errors_at_their_item_and_can_stop_early():
    async def main(pool):
        out = []
        async for value in pool.unordered_imap.asynced()(abs, [-1, -2]):
            out.append(value)
        results = pool.imap.asynced()(lambda x: 1 // x, [1, 0, 1])
        assert await results.__anext__() == 1
        with pytest.raises(ZeroDivisionError):
            await results.__anext__()
        assert await results.__anext__() == 1  # iteration goes on after an item's error
        endless = pool.imap.asynced()(abs, iter(int, 1))  # never ends by itself
        async for value in endless:
            break
        await endless.aclose()
        return sorted(out)

    with Pool(2) as pool:
        assert asyncio.run(main(pool)) == [1, 2]
        assert pool.map(abs, [-3]) == [3]
