"""Fixtures for the multi-host tests: network namespaces that stand in for hosts."""

from __future__ import annotations

import os

import pytest

from tests.netns import ip, netns_unavailable


@pytest.fixture
def three_hosts():
    """Namespaces C, A and B; A and B each joined to C by a veth pair (see
    test_share_hosts_netns.py for the picture). Deleted afterwards, whatever happens."""
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    tag = f"{os.getpid() % 100000}"
    n = os.getpid() % 250 + 1
    c, a, b = f"sksC{tag}", f"sksA{tag}", f"sksB{tag}"
    links = {a: (f"scA{tag}", f"saC{tag}", f"10.238.{n}"),
             b: (f"scB{tag}", f"sbC{tag}", f"10.239.{n}")}
    try:
        for ns in (c, a, b):
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
        for ns, (c_end, far_end, net) in links.items():
            ip("link", "add", c_end, "type", "veth", "peer", "name", far_end)
            ip("link", "set", c_end, "netns", c)
            ip("link", "set", far_end, "netns", ns)
            ip("-n", c, "addr", "add", f"{net}.1/24", "dev", c_end)
            ip("-n", ns, "addr", "add", f"{net}.2/24", "dev", far_end)
            ip("-n", c, "link", "set", c_end, "up")
            ip("-n", ns, "link", "set", far_end, "up")
        yield {"c": c, "a": a, "b": b, "c_from_a": f"{links[a][2]}.1", "c_from_b": f"{links[b][2]}.1",
               "link_a": links[a][1], "link_b": links[b][1]}  # each far host's end, inside it
    finally:
        for ns in (c, a, b):  # deleting a namespace deletes its veth ends too
            ip("netns", "del", ns, check=False)
