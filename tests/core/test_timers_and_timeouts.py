"""Sktimer statistics and the off-main-thread timeout fallback."""

from __future__ import annotations

import pickle
import statistics
import threading
import time

import pytest

from skprocessing import Sktimer
from skprocessing.core.timeouts import SectionTimedOut, call_with_timeout

pytestmark = pytest.mark.timeout(30)


def test_statistics_match_the_recorded_times():
    timer = Sktimer()
    samples = [0.5, 0.1, 0.4, 0.2, 0.3]
    for sample in samples:
        timer.add_time(sample)
    assert timer.num_times == 5 and timer.times == samples
    assert timer.total_time == pytest.approx(1.5)
    assert timer.mean == pytest.approx(0.3)
    assert timer.median == pytest.approx(0.3)
    assert timer.stdev == pytest.approx(statistics.stdev(samples))
    assert (timer.min, timer.max, timer.most_recent) == (0.1, 0.5, 0.3)
    assert timer.percentile(50) == pytest.approx(0.3)
    assert timer.percentile(25) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        timer.percentile(101)


def test_empty_timer_has_no_statistics_and_survives_pickling():
    timer = Sktimer()
    assert timer.mean is None and timer.percentile(50) is None and timer.num_times == 0
    with timer:
        time.sleep(0.001)
    copy = pickle.loads(pickle.dumps(timer))
    assert copy.times == timer.times and copy.num_times == 1


def test_threads_time_into_one_timer_at_once():
    timer = Sktimer()

    def work():
        for _ in range(100):
            timer.start()
            timer.stop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert timer.num_times == 400


def test_alarm_interrupts_on_the_main_thread():
    with pytest.raises(SectionTimedOut):
        call_with_timeout(lambda: time.sleep(5), 0.1)


def test_watchdog_interrupts_python_code_off_the_main_thread():
    outcome = {}

    def busy():
        while True:
            pass

    def runner():
        try:
            call_with_timeout(busy, 0.1)
        except SectionTimedOut:
            outcome["timed_out"] = True

    thread = threading.Thread(target=runner)
    thread.start()
    thread.join(10)
    assert outcome == {"timed_out": True}


def test_a_call_that_finishes_in_time_is_not_interrupted_later():
    def runner():
        assert call_with_timeout(lambda: 42, 0.05) == 42
        time.sleep(0.2)  # past the deadline: a stray async exception would land here

    errors = []
    thread = threading.Thread(target=lambda: errors.append(None) if runner() is None else None)
    thread.start()
    thread.join(10)
    assert errors == [None]


def test_a_section_timeout_puts_back_someone_elses_alarm():
    import signal
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        assert call_with_timeout(lambda: 7, 5.0) == 7
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < left <= 0.5  # still armed, less the time spent
        time.sleep(1.0)
        assert fired == [True]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
