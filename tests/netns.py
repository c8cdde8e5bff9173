"""Network namespaces for multi-host tests: each test makes its own and deletes them."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run `ip ARGS` (iproute2), bounded in time."""
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


def netns_unavailable() -> str | None:
    """Why namespaces cannot be made here (a skip reason), or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (run the suite as root, or on CI)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"skp-probe-{os.getpid()}-{os.urandom(2).hex()}"
    result = ip("netns", "add", probe, check=False)
    if result.returncode != 0:
        return f"`ip netns add` is not permitted here: {result.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def expect_line(lines: queue.Queue, word: str, timeout: float) -> str:
    """The first line from a process's output queue that starts with `word`; fails the
    test with the last lines seen when none comes within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        if line.startswith(word):
            return line
    raise AssertionError(f"no {word!r} within {timeout}s; output: {seen[-30:]}")


@contextmanager
def star(prefix: str, hub: str, spokes: Sequence[str], subnet: int) -> Iterator[dict[str, str]]:
    """Network namespaces standing in for hosts: `hub`, and each of `spokes` joined to it
    by a veth pair on a /24 of its own (10.<subnet + i>.<n>.0/24; the hub is .1, the
    spoke .2). Yields the namespace names by key (`hub`, each spoke), the hub's address as
    each spoke reaches it (`{hub}_from_{spoke}`), and each spoke's end of its link, inside
    the spoke (`link_{spoke}`, to cut it). Everything is deleted afterwards, whatever
    happens. Names carry this process's pid, so parallel test workers do not collide."""
    tag = f"{os.getpid() % 100000}"
    n = os.getpid() % 250 + 1
    names = {key: f"{prefix}{key.upper()}{tag}" for key in (hub, *spokes)}
    links = {spoke: (f"{prefix[:2]}{hub}{spoke}{tag}", f"{prefix[:2]}{spoke}{hub}{tag}",
                     f"10.{subnet + i}.{n}") for i, spoke in enumerate(spokes)}
    try:
        for name in names.values():
            ip("netns", "add", name)
            ip("-n", name, "link", "set", "lo", "up")
        for spoke, (hub_end, far_end, net) in links.items():
            ip("link", "add", hub_end, "type", "veth", "peer", "name", far_end)
            ip("link", "set", hub_end, "netns", names[hub])
            ip("link", "set", far_end, "netns", names[spoke])
            ip("-n", names[hub], "addr", "add", f"{net}.1/24", "dev", hub_end)
            ip("-n", names[spoke], "addr", "add", f"{net}.2/24", "dev", far_end)
            ip("-n", names[hub], "link", "set", hub_end, "up")
            ip("-n", names[spoke], "link", "set", far_end, "up")
        hosts = dict(names)
        for spoke, (_, far_end, net) in links.items():
            hosts[f"{hub}_from_{spoke}"] = f"{net}.1"
            hosts[f"link_{spoke}"] = far_end
        yield hosts
    finally:
        for name in names.values():  # deleting a namespace deletes the veth ends in it
            ip("netns", "del", name, check=False)
        for hub_end, _, _ in links.values():  # one never moved out of this namespace
            ip("link", "del", hub_end, check=False)
