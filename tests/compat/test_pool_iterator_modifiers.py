"""suitkaise 0.4.14's documented Pool modifiers (processing/how-to-use.md, "Pool"), as
written there; only the import is ours. The iterator methods' `.background()` Future and
`.asynced()` awaitable give the list of results; the awaitable also streams with
`async for` (our addition)."""

from __future__ import annotations

import asyncio

import pytest

from skprocessing import Pool

pytestmark = pytest.mark.timeout(90)


def fn(x):
    return x * 2


def add(a, b):
    return a + b


items = list(range(10))
args_tuples = [(1, 2), (3, 4), (5, 6)]


@pytest.fixture(scope="module")
def pool():
    with Pool(2) as shared:
        yield shared


def test_imap_modifiers(pool):
    # background - collects to list
    future = pool.imap.background()(fn, items)
    results = future.result()  # list
    assert results == [x * 2 for x in items]

    async def main():
        # async - collects to list
        results = await pool.imap.asynced()(fn, items)  # list
        assert results == [x * 2 for x in items]

        future = pool.star().imap.background()(add, args_tuples)
        assert future.result() == [3, 7, 11]
        results = await pool.star().imap.asynced()(add, args_tuples)
        assert results == [3, 7, 11]

    asyncio.run(main())
    got = []
    for result in pool.star().imap.timeout(10.0)(add, args_tuples):
        got.append(result)
    assert got == [3, 7, 11]


def test_unordered_imap_modifiers(pool):
    # background - collects to list
    future = pool.unordered_imap.background()(fn, items)
    results = future.result()  # list
    assert isinstance(results, list) and sorted(results) == [x * 2 for x in items]

    async def main():
        # async - collects to list
        results = await pool.unordered_imap.asynced()(fn, items)  # list
        assert isinstance(results, list) and sorted(results) == [x * 2 for x in items]

        future = pool.star().unordered_imap.background()(add, args_tuples)
        assert sorted(future.result()) == [3, 7, 11]
        results = await pool.star().unordered_imap.asynced()(add, args_tuples)
        assert sorted(results) == [3, 7, 11]

    asyncio.run(main())
    got = [result for result in pool.unordered_imap.timeout(30.0)(fn, items)]
    assert sorted(got) == [x * 2 for x in items]


def test_map_modifiers_combine(pool):
    async def main():
        results = await pool.map.asynced()(fn, items)
        assert results == [x * 2 for x in items]
        results = await pool.map.asynced().timeout(30.0)(fn, items)
        assert results == [x * 2 for x in items]
        results = await pool.star().map.asynced()(add, args_tuples)
        assert results == [3, 7, 11]
        results = await pool.unordered_map.asynced()(fn, items)
        assert sorted(results) == [x * 2 for x in items]
        await pool.star().imap.asynced()(add, args_tuples)

    asyncio.run(main())
    future = pool.map.timeout(30.0).background()(fn, items)
    assert future.result() == [x * 2 for x in items]
    assert pool.star().map.timeout(30.0)(add, args_tuples) == [3, 7, 11]
    assert sorted(pool.star().unordered_map.background()(add, args_tuples).result()) == [3, 7, 11]


def test_the_async_form_of_an_iterator_method_also_streams(pool):
    async def main():
        return [r async for r in pool.imap.asynced()(fn, items)]

    assert asyncio.run(main()) == [x * 2 for x in items]
