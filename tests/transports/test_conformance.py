"""The shipped conformance suite (`skprocessing.testing.conformance`) over our backends:
every test runs over every transport of `conftest.TRANSPORTS`, as a third party runs it
over its own."""

from __future__ import annotations

import pytest

from skprocessing.testing.conformance import *  # noqa: F401,F403  (the tests themselves)

from .conftest import detection_limit


@pytest.fixture
def death_notice_seconds(transport) -> float:
    return detection_limit(transport)
