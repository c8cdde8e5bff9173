"""`first_to_answer` (core/_race.py): every address tried at once, the first channel wins,
later ones are closed, and a failure names what each address said."""

from __future__ import annotations

import threading

import pytest

from skprocessing.core._race import first_to_answer
from skprocessing.errors import TransportError
from skprocessing.transports import get_transport

LIMIT = 30.0  # generous: each wait below ends on the event it expects


@pytest.fixture
def pipes():
    ends = []

    def make():
        a, b = get_transport("local").pipe()
        ends.extend((a, b))
        return a, b
    yield make
    for end in ends:
        end.close()


def _closed_within(channel, limit: float = LIMIT) -> bool:
    """True once `channel` is closed (by the race's thread), False after `limit`."""
    tick = threading.Event()
    for _ in range(int(limit / 0.01)):
        if channel.closed:
            return True
        tick.wait(0.01)
    return channel.closed


def test_every_failure_is_named():
    def attempt(address):
        raise TransportError(f"nobody at {address}")
    with pytest.raises(TransportError) as info:
        first_to_answer(["a", "b"], attempt, failure="could not reach it")
    text = str(info.value)
    assert text.startswith("could not reach it: ")
    assert "a: nobody at a" in text and "b: nobody at b" in text


def test_the_first_channel_wins_and_a_slower_one_is_closed(pipes):
    fast, _ = pipes()
    slow, _ = pipes()
    release = threading.Event()
    returned = threading.Event()

    def attempt(address):
        if address == "fast":
            return fast
        assert release.wait(LIMIT)
        returned.set()
        return slow
    channel, address = first_to_answer(["slow", "fast"], attempt)
    assert (channel, address) == (fast, "fast") and not fast.closed
    release.set()
    assert returned.wait(LIMIT)
    assert _closed_within(slow), "the slower duplicate was left open"


def test_a_timeout_gives_up_and_closes_what_answers_later(pipes):
    late, _ = pipes()
    release = threading.Event()
    returned = threading.Event()

    def attempt(address):
        assert release.wait(LIMIT)
        returned.set()
        return late
    with pytest.raises(TransportError, match="no answer within"):
        first_to_answer(["x"], attempt, timeout=0.05)
    release.set()
    assert returned.wait(LIMIT)
    assert _closed_within(late), "a channel that answered after the timeout was left open"
