"""Channel speed: the ZeroMQ transport over tcp loopback vs the local transport vs raw pyzmq.

    .venv/bin/python benchmarks/bench_transport.py [--repeat 5] [--quick]

Measured between this process and one child, in one run:
- echo round trips/s: one small message there and back, one at a time
- streamed small messages/s: 100-byte messages one way, one acknowledgement at the end
- bulk MB/s: 4 MiB messages one way, one acknowledgement at the end

"zmq" is `ZmqTransport("tcp://127.0.0.1")` with its signing, sequence checks and
heartbeats (the child connects to a listener, as a remote worker would); "raw" is a bare
pyzmq DEALER/ROUTER pair with none of that. Each figure is the best of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_transport as me  # noqa: E402  (entries must be importable in the child)

from skprocessing.transports.local import LocalTransport  # noqa: E402
from skprocessing.transports.zmq import ZmqTransport  # noqa: E402

SMALL = b"x" * 100
BULK = 4 << 20


# -- child entries (skprocessing channels) -----------------------------------------------------

def serve(channel) -> None:
    """Echo b"e" messages; count others and answer b"done" on b"end"."""
    count = 0
    while True:
        try:
            frames = channel.recv()
        except EOFError:
            return
        head = bytes(frames[0][:1])
        if head == b"e":
            channel.send(frames)
        elif head == b"n":
            channel.send([str(count).encode()])
            count = 0
        else:
            count += 1


def dial_and_serve(transport, address: str) -> None:
    serve(transport.connect(address, timeout=30))


def raw_serve(address: str) -> None:
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(address)
    sock.send(b"hello")
    count = 0
    while True:
        frames = sock.recv_multipart(copy=False)
        head = frames[0].bytes[:1]
        if head == b"e":
            sock.send_multipart(frames, copy=False)
        elif head == b"n":
            sock.send(str(count).encode())
            count = 0
        elif head == b"q":
            break
        else:
            count += 1
    sock.close()
    context.term()


# -- parent-side drivers -------------------------------------------------------------------------

class ChannelPeer:
    def __init__(self, channel):
        self.channel = channel

    def echo(self, n: int) -> None:
        send, recv = self.channel.send, self.channel.recv
        for _ in range(n):
            send([b"e", SMALL])
            recv()

    def stream(self, frames: list, n: int) -> None:
        for _ in range(n):
            self.channel.send(frames)
        self.channel.send([b"n"])
        assert int(self.channel.recv()[0]) == n


class RawPeer:
    def __init__(self, sock, identity: bytes):
        self.sock, self.id = sock, identity

    def echo(self, n: int) -> None:
        sock, ident = self.sock, self.id
        for _ in range(n):
            sock.send_multipart([ident, b"e", SMALL])
            sock.recv_multipart()

    def stream(self, frames: list, n: int) -> None:
        for _ in range(n):
            self.sock.send_multipart([self.id, *frames], copy=False)
        self.sock.send_multipart([self.id, b"n"])
        assert int(self.sock.recv_multipart()[1]) == n


def best(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def measure(peer, repeat: int, quick: bool) -> dict[str, float]:
    n_echo, n_small, n_bulk = (500, 5000, 5) if quick else (3000, 50000, 25)
    blob = bytes(BULK)
    peer.echo(200)  # warm up
    return {
        "echo": n_echo / best(repeat, lambda: peer.echo(n_echo)),
        "small": n_small / best(repeat, lambda: peer.stream([b"s", SMALL], n_small)),
        "bulk": n_bulk * BULK / 1e6 / best(repeat, lambda: peer.stream([b"b", blob], n_bulk)),
    }


def run_local(repeat: int, quick: bool) -> dict[str, float]:
    transport = LocalTransport()
    mine, theirs = transport.pipe()
    handle = transport.start(me.serve, theirs)
    theirs.close()
    try:
        return measure(ChannelPeer(mine), repeat, quick)
    finally:
        mine.close()
        handle.join(10)


def run_zmq(repeat: int, quick: bool) -> dict[str, float]:
    transport = ZmqTransport("tcp://127.0.0.1")
    listener = transport.listen()
    handle = transport.start(me.dial_and_serve, transport, listener.address)
    channel = listener.accept(timeout=30)
    try:
        return measure(ChannelPeer(channel), repeat, quick)
    finally:
        channel.close()
        listener.close()
        handle.join(10)
        transport.close()


def run_raw(repeat: int, quick: bool) -> dict[str, float]:
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.linger = 0
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # block at the HWM instead of dropping silently
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    handle = LocalTransport().start(me.raw_serve, f"tcp://127.0.0.1:{port}")
    identity, _ = sock.recv_multipart()
    try:
        return measure(RawPeer(sock, identity), repeat, quick)
    finally:
        sock.send_multipart([identity, b"q"])
        handle.join(10)
        sock.close()
        context.term()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer messages (a smoke run)")
    args = parser.parse_args(argv)
    results = {name: run(args.repeat, args.quick)
               for name, run in (("local", run_local), ("zmq", run_zmq), ("raw", run_raw))}
    units = {"echo": "round trips/s", "small": "100 B msgs/s", "bulk": "MB/s (4 MiB msgs)"}
    print(f"{'':22}{'zmq tcp':>12}{'local':>12}{'raw pyzmq':>12}{'zmq/local':>11}{'zmq/raw':>9}")
    for key, unit in units.items():
        z, l, r = results["zmq"][key], results["local"][key], results["raw"][key]
        print(f"{unit:22}{z:12.0f}{l:12.0f}{r:12.0f}{z / l:10.2f}x{z / r:8.2f}x")
    zmq_rt_us = 1e6 / results["zmq"]["echo"]
    print(f"zmq channel round trip: {zmq_rt_us:.0f} us (target for a warm pool task: < 1000 us)")


if __name__ == "__main__":
    main()
