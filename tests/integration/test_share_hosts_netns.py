"""A Share across three "hosts": network namespaces joined by veth pairs with private
addresses. The coordinator's host serves `Share(transport="tcp://0.0.0.0:PORT", key=...)`;
two client hosts each increment one counter 10,000 times; the final value is exactly
20,000. Then the same through a Pool: a head in C (`Pool(0, tcp://0.0.0.0:PORT, key)`,
`Share(transport=pool)`), one worker agent in A and one in B. Nothing is routed outside the namespaces; they are always deleted. Needs root and
`ip netns` (skipped with the reason otherwise).

    namespace C (coordinator)                namespace A             namespace B
      10.238.N.1/24 ────────── veth ────────  10.238.N.2/24
      10.239.N.1/24 ────────── veth ───────────────────────────────── 10.239.N.2/24
    (the `three_hosts` fixture, `tests/integration/conftest.py`)
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


KEY = "share-netns-test-key-81f0"
PORT = 47300
OPS = 10_000

_OWNER = textwrap.dedent("""
    import pickle, sys
    from skprocessing.core.share import Share
    share = Share(transport="tcp://0.0.0.0:{port}", key="{key}")
    share.counter = 0
    local = Share()                      # the default: this host only
    local.counter = 0
    with open(sys.argv[1], "wb") as f:
        pickle.dump(share, f)
    with open(sys.argv[2], "wb") as f:
        pickle.dump(local, f)
    print("ready", flush=True)
    sys.stdin.readline()                 # the clients are done
    print("final", share.counter, flush=True)
    share.stop()
    local.stop()
""")

_CLIENT = textwrap.dedent("""
    import pickle, sys
    share = pickle.load(open(sys.argv[1], "rb"))
    for _ in range({ops}):
        share.counter += 1
    print("done", flush=True)
""")

_LOCAL_CLIENT = textwrap.dedent("""
    import pickle, sys
    from skprocessing.core.share import ShareError
    share = pickle.load(open(sys.argv[1], "rb"))
    try:
        share.counter += 1
        share.counter
    except ShareError as exc:
        print("ShareError:", exc, flush=True)
""")


_POOL_HEAD = textwrap.dedent("""
    import sys
    from skprocessing import Pool
    from skprocessing.core.share import Share

    def bump(args):
        share, n = args
        for _ in range(n):
            share.counter += 1
        return n

    with Pool(0, transport="tcp://0.0.0.0:{port}", key="{key}", timeout=60) as pool:
        share = {make}
        share.counter = 0
        print("ready", flush=True)
        done = pool.map(bump, [(share, 500)] * 40)
        print("final", sum(done), share.counter, flush=True)
        share.stop()
""")



def _in(ns: str, source: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, sys.executable, "-c", source, *args]


@pytest.mark.timeout(180)
def test_two_hosts_count_to_exactly_20000_through_a_share(three_hosts, tmp_path):
    env = dict(os.environ, SKPROCESSING_KEY=KEY, PYTHONPATH=os.getcwd())
    remote, local = str(tmp_path / "share.pickle"), str(tmp_path / "local.pickle")
    owner = subprocess.Popen(_in(three_hosts["c"], _OWNER.format(port=PORT, key=KEY), remote, local),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
    clients: list[subprocess.Popen] = []
    try:
        assert owner.stdout.readline().strip() == "ready", owner.stderr.read()[-3000:]
        clients = [subprocess.Popen(_in(three_hosts[ns], _CLIENT.format(ops=OPS), remote),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=env)
                   for ns in ("a", "b")]
        for client in clients:
            out, err = client.communicate(timeout=120)
            assert client.returncode == 0 and out.strip() == "done", err[-3000:]
        # The default (local) Share cannot cross hosts: it says so and what to do instead.
        probe = subprocess.run(_in(three_hosts["a"], _LOCAL_CLIENT, local), capture_output=True,
                               text=True, env=env, timeout=60)
        assert "ShareError" in probe.stdout and "Share(transport=pool)" in probe.stdout, \
            probe.stdout + probe.stderr[-2000:]
        owner.stdin.write("go\n")
        owner.stdin.flush()
        out, err = owner.communicate(timeout=60)
        assert f"final {2 * OPS}" in out, out + err[-3000:]
    finally:
        for process in (owner, *clients):
            if process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("make", [
    "Share(transport=pool)",  # the pool's transport and key, a port of its own
    "Share()",                # this host only, until sent to the pool: then it moves there
])
def test_pool_workers_on_two_hosts_count_through_a_share_of_the_pool(three_hosts, make):
    env = dict(os.environ, SKPROCESSING_KEY=KEY, PYTHONPATH=os.getcwd())
    port = PORT + 1 + (make == "Share()")
    head = subprocess.Popen(_in(three_hosts["c"], _POOL_HEAD.format(port=port, key=KEY, make=make)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    agents: list[subprocess.Popen] = []
    try:
        assert head.stdout.readline().strip() == "ready", head.stderr.read()[-3000:]
        for ns in ("a", "b"):
            head_address = three_hosts[f"c_from_{ns}"]
            agents.append(subprocess.Popen(
                ["ip", "netns", "exec", three_hosts[ns], sys.executable, "-m", "skprocessing",
                 "worker", f"tcp://{head_address}:{port}", "--workers", "1", "--give-up", "30",
                 "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                env=env))
        out, err = head.communicate(timeout=150)
        assert "final 20000 20000" in out, out + err[-3000:]
    finally:
        for process in (head, *agents):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
