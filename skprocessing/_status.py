"""`python -m skprocessing status URL`: ask a running head what its pool is doing.

    python -m skprocessing status tcp://HEAD:5555 --key-file skprocessing.key
    python -m skprocessing status tcp://HEAD:5555 --json       # for scripts

The request goes over the pool's own transport, signed with the key like every message
(a wrong key gets no answer: the head drops it and logs it); the head answers from what
`Pool.status()` keeps: its workers by host, items in flight / queued / done, throughput
over the last minute, and the workers it lost lately. Exit code 0 with an answer, 1 when
the head did not answer (none there, a wrong key, a timeout), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["main", "ask", "render"]

log = logging.getLogger("skprocessing.status")


def ask(url: str, key: bytes | str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """The status of the head listening at `url` (as `Pool.status()` gives it, plus "ok").
    Raises `TransportError` when it does not answer within `timeout` seconds."""
    from .core.pool._messages import STATUS
    from .core.pool._workers import STATUS_CODEC
    from .errors import ChannelClosed, DeserializationError, TransportError
    from .transports import get_transport

    transport = get_transport(url)
    if key is not None:
        transport = transport.with_key(key)
    address = getattr(transport, "address", None) or url.partition("?")[0]
    deadline = time.monotonic() + timeout
    try:
        channel = transport.connect(address, timeout=timeout)
        try:
            channel.send(STATUS_CODEC.encode(STATUS, None))
            frames = channel.recv(timeout=max(0.1, deadline - time.monotonic()))
        finally:
            channel.close()
        if frames is None:
            raise TransportError(f"the head at {address} did not answer within {timeout:g}s")
        kind, body = STATUS_CODEC.decode(frames)
        if kind != STATUS or not isinstance(body, dict):
            raise TransportError(f"{address} answered, but not with a pool status")
        return body
    except ChannelClosed as exc:
        raise TransportError(f"the head at {address} closed the connection: {exc}") from exc
    except DeserializationError as exc:
        raise TransportError(f"{address} sent an answer that could not be read: {exc}") from exc
    finally:
        transport.close()


def render(status: dict[str, Any]) -> str:
    """The status as lines for a terminal."""
    if not status.get("ok", True):
        return f"head at {status.get('address', '?')}: no status: {status.get('error')}"
    hosts: dict[str, dict[str, int]] = defaultdict(lambda: {"workers": 0, "in_flight": 0, "done": 0})
    for worker in status.get("per_worker", []):
        host = hosts[worker.get("host") or "?"]
        host["workers"] += 1
        host["in_flight"] += worker.get("in_flight", 0)
        host["done"] += worker.get("done", 0)
    lines = [
        f"head {status.get('address')}: {status.get('workers', 0)} worker(s) on "
        f"{len(hosts)} host(s), {status.get('calls', 0)} map(s) running, up {_clock(status.get('uptime', 0))}",
        f"  items: {status.get('in_flight', 0)} in flight, {status.get('queued', 0)} queued, "
        f"{status.get('done', 0)} done; {status.get('throughput', 0.0):,.1f} items/s over the last minute",
    ]
    if status.get("starting"):
        lines.append(f"  {status['starting']} worker(s) starting")
    agents = status.get("agents") or []
    for name in sorted(hosts):
        host = hosts[name]
        agent = " (agent)" if name in agents else ""
        lines.append(f"  host {name}{agent}: {host['workers']} worker(s), "
                     f"{host['in_flight']} in flight, {host['done']} done")
    losses = status.get("recent_losses") or []
    lines.append(f"  workers lost: {status.get('lost_workers', 0)} in all"
                 + (", lately:" if losses else ""))
    for loss in losses[-10:]:
        when = time.strftime("%H:%M:%S", time.localtime(loss.get("at", 0)))
        lines.append(f"    {when} {loss.get('why')} ({loss.get('items', 0)} item(s) held)")
    if status.get("duplicates_dropped"):
        lines.append(f"  duplicate results dropped: {status['duplicates_dropped']}")
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m skprocessing status",
        description="Ask a running head (a Pool on a network transport) what it is doing.")
    parser.add_argument("url", help="the head's address, e.g. tcp://head:5555")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--key-file", help="the shared key's file (else $SKPROCESSING_KEY)")
    keys.add_argument("--key", help="the shared key itself (visible to other local users "
                                    "in the process list: prefer --key-file)")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for the answer (default 10)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import TransportError

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    key: str | None = args.key
    if args.key_file is not None:
        try:
            key = Path(args.key_file).read_text()
        except OSError as exc:
            print(f"status: cannot read the key file {args.key_file}: {exc.strerror}", file=sys.stderr)
            return 2
    if not args.timeout > 0:
        print(f"status: --timeout must be a positive number of seconds, got {args.timeout}",
              file=sys.stderr)
        return 2
    try:
        status = ask(args.url, key, args.timeout)
    except (TransportError, ValueError) as exc:
        print(f"status: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2, sort_keys=True) if args.json else render(status))
    return 0 if status.get("ok", True) else 1
