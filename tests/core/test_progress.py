"""`progress=` on every map: a callback told done/total, a tqdm bar, a plain stderr line."""

from __future__ import annotations

import io
import time

import pytest

from skprocessing import Pool
from skprocessing.core.pool import _progress
from skprocessing.core.pool._progress import PlainBar

pytestmark = pytest.mark.timeout(90)


def square(x):
    return x * x


def fail_on_seven(x):
    if x == 7:
        raise ValueError("seven")
    return x


@pytest.fixture(scope="module", params=["local", "tcp://127.0.0.1"])
def pool(request):
    with Pool(2, transport=request.param) as shared:
        yield shared


def recorder():
    calls: list[tuple[int, int | None]] = []
    return calls, lambda done, total: calls.append((done, total))


def check_counts(calls, total):
    assert calls[0] == (0, total)
    dones = [done for done, _ in calls]
    assert dones == sorted(dones), "done never goes back"
    assert calls[-1][0] == (total if total is not None else calls[-1][0])
    assert {t for _, t in calls} == {total}


@pytest.mark.parametrize("method", ["map", "unordered_map", "imap", "unordered_imap"])
def test_callback_is_told_every_item_of_every_map(pool, method):
    calls, callback = recorder()
    result = getattr(pool, method)(square, range(500), progress=callback)
    assert sorted(result) == [x * x for x in range(500)]
    check_counts(calls, 500)
    assert calls[-1] == (500, 500)


@pytest.mark.parametrize("method", ["map", "unordered_map", "imap", "unordered_imap"])
def test_star_forms_report_too(pool, method):
    calls, callback = recorder()
    result = getattr(pool.star(), method)(pow, [(x, 2) for x in range(50)], progress=callback)
    assert sorted(result) == [x * x for x in range(50)]
    assert calls[0] == (0, 50) and calls[-1] == (50, 50)


def test_iterator_of_unknown_length_has_total_none(pool):
    calls, callback = recorder()
    assert list(pool.imap(square, iter(range(300)), progress=callback)) == [x * x for x in range(300)]
    assert calls[0] == (0, None) and calls[-1] == (300, None)


def test_progress_arrives_while_the_map_runs(pool):
    # The callback fires for chunks finished before the last one is: the live part.
    seen_during: list[int] = []

    def slow_last(x):
        if x == 19:
            time.sleep(0.5)
        return x

    def callback(done, total):
        if done < total:
            seen_during.append(done)

    assert pool.map(slow_last, range(20), chunksize=1, progress=callback) == list(range(20))
    assert any(done > 0 for done in seen_during)


@pytest.mark.parametrize("bad", ["yes", 1, 0.5, object()])
def test_wrong_type_is_a_clear_typeerror_and_nothing_runs(pool, bad):
    before = pool.status()["done"]
    with pytest.raises(TypeError, match=r"Pool.map: progress must be True, False, None or a callable"):
        pool.map(square, range(10), progress=bad)
    assert pool.status()["done"] == before
    assert pool.map(square, range(3)) == [0, 1, 4]


def test_false_and_none_mean_no_progress(pool, capfd):
    assert pool.map(square, range(10), progress=False) == [x * x for x in range(10)]
    assert pool.map(square, range(10), progress=None) == [x * x for x in range(10)]
    assert "Pool.map" not in capfd.readouterr().err


def test_a_failing_callback_ends_the_map_with_its_error(pool):
    def callback(done, total):
        if done:
            raise RuntimeError("callback broke")
    with pytest.raises(RuntimeError, match="callback broke"):
        pool.map(square, range(200), progress=callback)
    assert pool.map(square, range(3)) == [0, 1, 4]


def test_an_item_error_still_closes_the_bar(pool):
    calls, callback = recorder()
    with pytest.raises(ValueError, match="seven"):
        pool.map(fail_on_seven, range(20), chunksize=1, progress=callback)
    assert calls[0] == (0, 20)


def test_true_draws_a_tqdm_bar_on_stderr(pool, capfd):
    pytest.importorskip("tqdm")
    assert pool.map(square, range(100), progress=True) == [x * x for x in range(100)]
    err = capfd.readouterr().err
    assert "Pool.map" in err and "100/100" in err


def test_without_tqdm_a_plain_line_on_stderr(pool, capfd, monkeypatch):
    monkeypatch.setattr(_progress, "_tqdm_bar", lambda name: None)  # as if not installed
    assert list(pool.imap(square, range(100), progress=True)) == [x * x for x in range(100)]
    err = capfd.readouterr().err
    assert "Pool.imap: 100/100 items (100%)" in err
    assert err.endswith("\n")


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_line_redraws_at_most_ten_times_a_second():
    stream = FakeTerminal()
    bar = PlainBar("Pool.map", stream)
    started = time.monotonic()
    bar.begin(200_000)
    for _ in range(200_000):
        bar.advance(1)
    bar.close()
    elapsed = time.monotonic() - started
    draws = stream.getvalue().count("\r")
    # First and last draw, plus at most one per REDRAW interval in between.
    assert draws <= elapsed / _progress.REDRAW + 3
    last = stream.getvalue().rsplit("\r", 1)[1]
    assert last.startswith("Pool.map: 200000/200000 items (100%)") and last.endswith("\n")


def test_plain_line_shows_rate_and_eta():
    bar = PlainBar("Pool.map", io.StringIO())
    bar.begin(100)
    bar._started -= 2.0  # as if begun two seconds ago
    bar._done = 50
    line = bar.line(time.monotonic())
    assert line.startswith("Pool.map: 50/100 items (50%), 25 items/s, ETA 0:00:02")
    bar._total = None
    assert bar.line(time.monotonic()).startswith("Pool.map: 50 items, 25 items/s")
