"""`python -m skprocessing worker URL --workers N`: a worker host joining a head.

    python -m skprocessing worker tcp://HEAD:5555 --workers 8 --key-file skprocessing.key

The agent is a nanny. It opens its own session with the head (its HELLO says "agent"),
starts N pool worker processes that connect to the head themselves, and watches them.
It uses only the transport interface: the URL picks the backend (`get_transport`), its
query carries the backend's options, so any cross-host backend can carry a worker host:

    agent ──session──────────────────────────────► head (Pool, transport tcp://0.0.0.0:5555)
      ├─ worker 1 ──session (HELLO, TASK/RESULT)──►
      └─ worker N ──session──────────────────────►

  - a worker that dies is reported to the head at once (DIED pid, exit code: the head
    then charges the item it was running) and replaced;
  - a worker that ends normally (the head said STOP, or the head went away) is replaced
    only while the agent's own session is up;
  - when the head goes away, the agent stops its workers and reconnects with backoff,
    and exits with a clear message after `--give-up` seconds without a head;
  - the agent's exit takes its workers with it (SIGTERM/SIGINT: stopped and waited for;
    SIGKILL: they die with it, see `_launcher.py`, PR_SET_PDEATHSIG), never orphans;
  - it logs joins, losses, deaths and, every `--log-every` seconds, throughput.

Options: `python -m skprocessing worker --help` lists each with its default (`_parser`).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import signal
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from ..._deadline import Deadline
from ...errors import ChannelClosed, TransportError, TransportRefused
from ...serializers.codec import Codec
from ...transports import get_transport
from ...transports.base import Transport
from ._messages import AGENT, DIED, HELLO, KILL
from ._worker import worker_main

__all__ = ["main", "Agent"]

log = logging.getLogger("skprocessing.worker")
WATCH = 0.1  # seconds between looks at the worker processes
RESPAWN_DELAY = 0.3  # seconds before a crashed worker is replaced


def _parser() -> argparse.ArgumentParser:
    # Every option's --help line says its default (%(default)s: the value in use).
    p = argparse.ArgumentParser(prog="python -m skprocessing worker",
                                description="Join a skprocessing pool as a worker host.",
                                epilog="example: python -m skprocessing worker tcp://HEAD:5555 "
                                       "--workers 8 --key-file skprocessing.key")
    p.add_argument("url", help="the head's address, e.g. tcp://head:5555 "
                               "(URL options allowed: ?curve=1...)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="worker processes to run on this host (default: the CPU count, "
                        "here %(default)s)")
    p.add_argument("--key-file", default=None, metavar="PATH",
                   help="file holding the shared key (default: the environment variable "
                        "SKPROCESSING_KEY)")
    p.add_argument("--curve", action="store_true",
                   help="CurveZMQ encryption; the head must use it too (default: off)")
    p.add_argument("--serializer", default=None, metavar="NAME",
                   help="the pool's serializer (default: the default serializer)")
    p.add_argument("--prefetch", type=int, default=4, metavar="N",
                   help="chunks a worker may hold at once, its credits (default: %(default)s)")
    p.add_argument("--heartbeat", type=float, default=1.0, metavar="S",
                   help="seconds of idle before a PING to the head (default: %(default)s)")
    p.add_argument("--dead-after", type=float, default=4.0, metavar="S",
                   help="seconds of silence before the head counts as lost "
                        "(default: %(default)s)")
    p.add_argument("--give-up", type=float, default=300.0, metavar="S",
                   help="seconds without a head before exiting; 0: never (default: %(default)s)")
    p.add_argument("--log-every", type=float, default=10.0, metavar="S",
                   help="seconds between throughput lines; 0: never (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="log warnings and errors only")
    p.add_argument("--verbose", action="store_true", help="log everything (debug)")
    return p


class _Worker:
    """One worker process of this agent: its handle and its done-items counter."""

    def __init__(self, handle: Any, done: Any):
        self.handle = handle
        self.done = done
        self.counted = 0  # of `done`, already added to the agent's total


class Agent:
    """Keeps one session with the head and N worker processes; see the module docstring."""

    def __init__(self, transport: Transport, address: str, workers: int, give_up: float,
                 *, serializer: str | None = None, prefetch: int = 4, log_every: float = 10.0):
        self.transport = transport
        self.address = address
        self.workers = workers
        self.give_up = give_up
        self.prefetch = prefetch
        self.log_every = log_every
        self.codec = Codec(serializer)
        self.agent_id = uuid.uuid4().hex
        self.host = platform.node()
        self.stopping = threading.Event()
        self.sessions = 0
        self.running: list[_Worker] = []
        self.total_done = 0
        self.deaths = 0

    # -- the session loop --------------------------------------------------------------------
    def run(self) -> int:
        last_contact = time.monotonic()
        delay = 0.2
        try:
            while not self.stopping.is_set():
                try:
                    channel = self.transport.connect(self.address,
                                                     timeout=min(5.0, self._left(last_contact)))
                except TransportRefused:
                    raise  # the transport will never connect there: retrying cannot help
                except TransportError as exc:
                    if self.give_up and time.monotonic() - last_contact >= self.give_up:
                        log.error("giving up: no head at %s for %.0f s (--give-up); last error: %s",
                                  self.address, self.give_up, exc)
                        return 1
                    log.info("no head at %s yet (%s); retrying", self.address, exc)
                    self.stopping.wait(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                delay = 0.2
                self.sessions += 1
                self._session(channel)
                last_contact = time.monotonic()
            return 0
        finally:
            self._stop_workers()

    def _left(self, last_contact: float) -> float:
        if not self.give_up:
            return 5.0
        return max(0.1, self.give_up - (time.monotonic() - last_contact))

    def _session(self, channel: Any) -> None:
        try:
            channel.send(self.codec.encode(HELLO, (AGENT, os.getpid(), 0, self.host, self.agent_id)))
            log.info("joined the head at %s (session %d, host %s, agent pid %d); starting %d "
                     "worker(s)", self.address, self.sessions, self.host, os.getpid(), self.workers)
            self._hold(channel)
        except ChannelClosed as exc:
            log.warning("lost the head at %s: %s; stopping the workers, then reconnecting",
                        self.address, exc)
        finally:
            channel.close()
            self._stop_workers()

    def _hold(self, channel: Any) -> None:
        """Keep `workers` processes running while the session lives; report deaths."""
        respawn_at = 0.0
        next_log = time.monotonic() + self.log_every
        last_total, last_time = self.total_done, time.monotonic()
        while not self.stopping.is_set():
            self._read(channel)  # a closed session raises ChannelClosed here
            now = time.monotonic()
            self._count()
            for worker, code in [(w, w.handle.wait(0)) for w in self.running]:
                if code is None:
                    continue  # still running
                self.running.remove(worker)
                if code:
                    self.deaths += 1
                    log.warning("worker pid %s died (%s); telling the head and replacing it",
                                worker.handle.pid, _how(code))
                    self._report(channel, worker.handle.pid, code)
                    respawn_at = max(respawn_at, now + RESPAWN_DELAY)  # no tight crash loop
                else:
                    # It ended normally: the head said STOP or went away. If the head is
                    # still there, our own session shows it within a moment.
                    log.info("worker pid %s ended", worker.handle.pid)
                    respawn_at = max(respawn_at, now + 1.0)
            if len(self.running) < self.workers and now >= respawn_at:
                self._start_workers(self.workers - len(self.running))
            if self.log_every and now >= next_log:
                rate = (self.total_done - last_total) / max(1e-9, now - last_time)
                log.info("%d worker(s) running; %d item(s) done (%.1f items/s lately), "
                         "%d death(s)", len(self.running), self.total_done, rate, self.deaths)
                last_total, last_time, next_log = self.total_done, now, now + self.log_every
            self.stopping.wait(WATCH)

    def _read(self, channel: Any) -> None:
        while (frames := channel.recv(timeout=0)) is not None:
            try:
                kind, pid = self.codec.decode(frames)
            except Exception as exc:  # signed by the head, yet unreadable: say so, go on
                log.warning("unreadable message from the head: %s", exc)
                continue
            for worker in self.running:
                if kind == KILL and worker.handle.pid == pid:
                    log.info("the head asked to end worker pid %s (a timeout or a cancel)", pid)
                    worker.handle.kill()

    def _report(self, channel: Any, pid: int | None, code: int) -> None:
        channel.send(self.codec.encode(DIED, (pid, code)))

    # -- workers -----------------------------------------------------------------------------
    def _start_workers(self, count: int) -> None:
        for _ in range(count):
            done = self.transport.shared_int()
            handle = self.transport.start(worker_main, self.transport.spec(), self.address,
                                          self.codec.token(), None, self.prefetch,
                                          self.agent_id, done)
            self.running.append(_Worker(handle, done))
            log.debug("started worker pid %s", handle.pid)

    def _count(self) -> None:
        for worker in self.running:
            value = worker.done.value
            self.total_done += value - worker.counted
            worker.counted = value

    def _stop_workers(self) -> None:
        self._count()
        for worker in self.running:
            worker.handle.cancel()
        deadline = Deadline(5.0)
        for worker in self.running:
            if worker.handle.wait(deadline.remaining()) is None:
                worker.handle.kill()
                worker.handle.wait(1.0)
        if self.running:
            log.info("stopped %d worker(s)", len(self.running))
        self.running.clear()


def _how(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _spec(args: argparse.Namespace) -> str:
    base, _, query = args.url.partition("?")
    options = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
    options.setdefault("heartbeat", str(args.heartbeat))
    options.setdefault("dead_after", str(args.dead_after))
    if args.curve:
        options["curve"] = "1"
    if args.key_file:
        options["key_file"] = args.key_file
    return f"{base}?{urlencode(options)}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else
                        logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.workers < 1 or args.prefetch < 1:
            raise ValueError("--workers and --prefetch must be at least 1")
        transport = get_transport(_spec(args))
    except (TransportError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    agent = Agent(transport, args.url.partition("?")[0], args.workers, args.give_up,
                  serializer=args.serializer, prefetch=args.prefetch, log_every=args.log_every)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: agent.stopping.set())
    try:
        code = agent.run()
    except TransportRefused as exc:
        log.error("%s", exc)
        return 2
    log.info("worker agent exiting")
    return code
