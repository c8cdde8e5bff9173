"""`python -m skprocessing worker URL --workers N`: a worker host joining a head.

    python -m skprocessing worker tcp://HEAD:5555 --workers 8 --key-file skprocessing.key

The agent connects to the head's listener, authenticates (the signed handshake; with
`--curve`, CurveZMQ as well), keeps the session alive with heartbeats and logs joins,
losses and reconnects. When the head goes away it reconnects, and exits with a clear
message if it could not reach the head for `--give-up` seconds.

Status of this module: the transport part (connect, authenticate, heartbeat, reconnect,
log). Running pool workers on the joined session comes with the Pool integration.

Options:
    URL              the head's address, `tcp://host:port` (URL options allowed: ?curve=1...)
    --workers N      worker processes to run on this host (default: CPU count)
    --key-file PATH  the shared key (else the environment variable SKPROCESSING_KEY)
    --curve          CurveZMQ encryption (the head must use it too)
    --heartbeat S    seconds of idle before a PING (default 1.0)
    --dead-after S   seconds of silence before the head counts as lost (default 4.0)
    --give-up S      exit after this long without a head (default 300; 0: never)
    --quiet/--verbose
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import time

from ...errors import ChannelClosed, TransportError
from .security import KEY_ENV
from .transport import ZmqTransport

__all__ = ["main", "Agent"]

log = logging.getLogger("skprocessing.worker")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m skprocessing worker",
                                description="Join a skprocessing pool as a worker host.")
    p.add_argument("url", help="the head's address, e.g. tcp://head:5555")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--key-file", default=None, help=f"the shared key (else ${KEY_ENV})")
    p.add_argument("--curve", action="store_true", help="CurveZMQ encryption")
    p.add_argument("--heartbeat", type=float, default=1.0)
    p.add_argument("--dead-after", type=float, default=4.0)
    p.add_argument("--give-up", type=float, default=300.0,
                   help="seconds without a head before exiting (0: never)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--verbose", action="store_true")
    return p


class Agent:
    """Keeps one authenticated session with the head; reconnects when it is lost."""

    def __init__(self, transport: ZmqTransport, address: str, workers: int, give_up: float):
        self.transport = transport
        self.address = address
        self.workers = workers
        self.give_up = give_up
        self.stopping = threading.Event()
        self.sessions = 0

    def run(self) -> int:
        last_contact = time.monotonic()
        delay = 0.2
        while not self.stopping.is_set():
            try:
                channel = self.transport.connect(self.address, timeout=min(5.0, self._left(last_contact)))
            except TransportError as exc:
                if self.give_up and time.monotonic() - last_contact >= self.give_up:
                    log.error("giving up: no head at %s for %.0fs (%s)", self.address, self.give_up, exc)
                    return 1
                log.info("no head at %s yet (%s); retrying", self.address, exc)
                self.stopping.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.2
            self.sessions += 1
            log.info("joined the head at %s (session %d, host %s, pid %d; --workers %d is "
                     "for the pool integration, not yet running workers)",
                     self.address, self.sessions, socket.gethostname(), os.getpid(), self.workers)
            self._hold(channel)
            last_contact = time.monotonic()
        return 0

    def _left(self, last_contact: float) -> float:
        if not self.give_up:
            return 5.0
        return max(0.1, self.give_up - (time.monotonic() - last_contact))

    def _hold(self, channel) -> None:
        # Heartbeats run in the transport's reactor thread; here we only watch for the end.
        received = 0
        try:
            while not self.stopping.is_set():
                if channel.recv(timeout=0.5) is not None:
                    received += 1
        except ChannelClosed as exc:
            log.warning("lost the head at %s: %s; reconnecting", self.address, exc)
        finally:
            channel.close()
            log.info("session %d ended after %d messages", self.sessions, received)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else
                        logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        transport = ZmqTransport(args.url, key_file=args.key_file, curve=args.curve or None,
                                 heartbeat=args.heartbeat, dead_after=args.dead_after)
        if transport.address is None:
            raise TransportError(f"{args.url} names no head address (expected tcp://host:port "
                                 f"or ipc:///path)")
        from .security import check_reach
        check_reach(transport.address, transport._key, "connect")
    except (TransportError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    agent = Agent(transport, transport.address, args.workers, args.give_up)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: agent.stopping.set())
    code = agent.run()
    log.info("worker agent exiting")
    return code
