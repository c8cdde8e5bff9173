"""How far an imap reads its input ahead of the reader: bounded by bytes as well as by
count, and not one item further once the iterator is closed, left in a `with` block, or
dropped by a loop that breaks out. Bounds are the design's own numbers (`_chunks.py`)."""

from __future__ import annotations

import itertools
import time

import pytest

from skprocessing import Pool
from skprocessing.core.pool._chunks import FEED_AHEAD, MAX_CHUNK, READ_AHEAD_BYTES

pytestmark = pytest.mark.timeout(120)

ITEM = 1 << 20
BLOB = bytes(ITEM)  # one object yielded again and again: the test itself stays small


@pytest.fixture(scope="module", params=["local", "tcp://127.0.0.1"])
def pool(request):
    with Pool(2, transport=request.param) as shared:
        yield shared


class Counted:
    """An input that counts the items taken from it."""

    def __init__(self, source):
        self.source = iter(source)
        self.pulled = 0

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self.source)
        self.pulled += 1
        return item


def count_window(pool: Pool) -> int:
    """The count bound: the window `Pool._submit` gives an iterator, the feeder's
    buffer, the chunk the caller is in and the one being cut."""
    return max(pool.workers, 4) * pool._scheduler.credits * MAX_CHUNK * 2 + FEED_AHEAD + 2 * MAX_CHUNK


def test_large_items_are_read_ahead_by_bytes(pool):
    source = Counted(itertools.repeat(BLOB, 2000))
    # READ_AHEAD_BYTES of items, plus the item in the feeder's hand, the one the caller
    # holds, the one being cut, and rounding.
    bound = READ_AHEAD_BYTES // ITEM + 4
    results = pool.imap(len, source)
    consumed = 0
    for _ in range(4):
        assert next(results) == ITEM
        consumed += 1
        time.sleep(1.0)  # a slow reader: the input may be read as far as the bound lets it
        assert source.pulled - consumed <= bound, (source.pulled, consumed)
    for consumed, value in enumerate(results, consumed + 1):
        assert value == ITEM
        assert source.pulled - consumed <= bound
    assert consumed == 2000


@pytest.mark.parametrize("how", ["close", "with", "break"])
def test_stopping_early_stops_reading_the_input(pool, how):
    source = Counted(itertools.count())
    if how == "close":
        results = pool.imap(abs, source)
        assert [next(results) for _ in range(10)] == list(range(10))
        results.close()
    elif how == "with":
        with pool.imap(abs, source) as results:
            assert [next(results) for _ in range(10)] == list(range(10))
    else:
        for value in pool.imap(abs, source):  # the iterator is dropped as the loop ends
            if value == 9:
                break
    at_stop = source.pulled
    assert at_stop <= count_window(pool)
    # Work that takes real time on the same pool; the input must not move meanwhile
    # (at most the one item the feeder was reading when it was told to stop).
    assert pool.map(abs, range(20_000)) == list(range(20_000))
    assert list(pool.imap(abs, range(2_000))) == list(range(2_000))
    assert source.pulled <= at_stop + 1
