"""Two hosts in one machine: network namespaces joined by a veth pair, then a cut link.

The test makes two namespaces with private addresses (10.233.N.1 and .2 on their own
veth pair; nothing is routed outside them), runs a listener in one and a connecting
process in the other, checks that traffic flows, then takes the link down
(`ip link set ... down`) and checks that both sides report `ChannelClosed` within the
heartbeat limit. It needs root and `ip netns`; elsewhere it skips and says why.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tests.netns import expect_line, ip, netns_unavailable, star

HEARTBEAT, DEAD_AFTER = 0.2, 1.0
LIMIT = DEAD_AFTER + 1.5
KEY = "netns-test-key-5b0f9d"



@pytest.fixture
def two_hosts():  # the tests using it start processes and carry their own timeouts
    """Namespaces a and b on one veth pair (keys: a, b, a_from_b, link_b)."""
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    with star("skp", "a", ("b",), 233) as hosts:
        yield hosts


_LISTENER = """
    import time
    from skprocessing.transports.zmq import ZmqTransport
    t = ZmqTransport("tcp://{addr}:47000?heartbeat={hb}&dead_after={dead}")
    listener = t.listen()
    print("LISTENING", listener.address, flush=True)
    channel = listener.accept(timeout=30)
    print("ACCEPTED", flush=True)
    try:
        while True:
            frames = channel.recv(timeout=60)
            channel.send(frames)
    except EOFError as exc:
        print("CLOSED", time.time(), exc, flush=True)
"""

_CONNECTOR = """
    import time
    from skprocessing.transports.zmq import ZmqTransport
    t = ZmqTransport("tcp://{addr}:47000?heartbeat={hb}&dead_after={dead}")
    channel = t.connect("tcp://{addr}:47000", timeout=20)
    print("CONNECTED", flush=True)
    try:
        n = 0
        while True:
            channel.send([str(n).encode()])
            answer = channel.recv(timeout=60)
            if answer != [str(n).encode()]:
                print("MISMATCH", n, answer, flush=True)
                break
            if n % 10 == 0:
                print("ECHO", n, flush=True)
            n += 1
            time.sleep(0.02)
    except EOFError as exc:
        print("CLOSED", time.time(), exc, flush=True)
"""


def _spawn(ns: str, source: str, dead: float = DEAD_AFTER, hb: float = HEARTBEAT,
           **fmt) -> tuple[subprocess.Popen, queue.Queue]:
    code = textwrap.dedent(source).format(hb=hb, dead=dead, **fmt)
    env = dict(os.environ, SKPROCESSING_KEY=KEY, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in proc.stdout],
                     daemon=True).start()
    return proc, lines




@pytest.mark.timeout(120)
@pytest.mark.parametrize("hb, dead, limit", [(HEARTBEAT, DEAD_AFTER, LIMIT), (1.0, 4.0, 5.0)],
                         ids=["short", "defaults"])
def test_cut_link_is_detected_on_both_sides(two_hosts, hb, dead, limit):
    head, head_out = _spawn(two_hosts["a"], _LISTENER, dead, hb, addr=two_hosts["a_from_b"])
    worker = None
    try:
        expect_line(head_out, "LISTENING", 20)
        worker, worker_out = _spawn(two_hosts["b"], _CONNECTOR, dead, hb, addr=two_hosts["a_from_b"])
        expect_line(worker_out, "CONNECTED", 30)
        expect_line(head_out, "ACCEPTED", 10)
        expect_line(worker_out, "ECHO", 10)
        time.sleep(3 * hb)  # live traffic and heartbeats: nobody is declared dead
        expect_line(worker_out, "ECHO", 5)
        cut = time.time()
        ip("-n", two_hosts["b"], "link", "set", two_hosts["link_b"], "down")
        for out in (head_out, worker_out):
            line = expect_line(out, "CLOSED", limit + 5)
            detected_after = float(line.split()[1]) - cut
            assert detected_after < limit, line
    finally:
        for proc in (head, worker):
            if proc is not None:
                proc.kill()
                proc.wait(10)


@pytest.mark.timeout(120)
def test_a_short_blip_is_survived_without_loss(two_hosts):
    dead = 3.0
    head, head_out = _spawn(two_hosts["a"], _LISTENER, dead=dead, addr=two_hosts["a_from_b"])
    worker = None
    try:
        expect_line(head_out, "LISTENING", 20)
        worker, worker_out = _spawn(two_hosts["b"], _CONNECTOR, dead=dead, addr=two_hosts["a_from_b"])
        expect_line(worker_out, "ECHO", 30)
        ip("-n", two_hosts["b"], "link", "set", two_hosts["link_b"], "down")
        time.sleep(0.5)
        ip("-n", two_hosts["b"], "link", "set", two_hosts["link_b"], "up")
        # The echo loop checks every answer: it goes on only if nothing was lost.
        last = int(expect_line(worker_out, "ECHO", 15).split()[1])
        time.sleep(dead + 1)
        later = int(expect_line(worker_out, "ECHO", 10).split()[1])
        assert later > last
        for out in (head_out, worker_out):
            while not out.empty():
                line = out.get()
                assert not line.startswith(("CLOSED", "MISMATCH")), line
    finally:
        for proc in (head, worker):
            if proc is not None:
                proc.kill()
                proc.wait(10)
