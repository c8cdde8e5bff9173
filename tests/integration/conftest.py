"""Fixtures for the multi-host tests: network namespaces that stand in for hosts."""

from __future__ import annotations

import pytest

from tests.netns import netns_unavailable, star


@pytest.fixture
def three_hosts():
    """Namespaces c, a and b; a and b each joined to c (keys: c, a, b, c_from_a, c_from_b,
    link_a, link_b; see `tests.netns.star`). The tests using it start processes and carry
    their own timeouts."""
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    with star("sks", "c", ("a", "b"), 238) as hosts:
        yield hosts
