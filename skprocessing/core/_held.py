"""Messages held back to be batched, and the order they must keep: the core's own rule.

A layer of the core may hold outgoing messages to send several at once (a Share client's
pipelined writes over a network transport). They must still leave before anything this
process sends later, on any channel of any transport: otherwise another process could
hear of a write (a tell, a pool result, a stop) and act on it before the write itself
arrives. A holder registers while it holds something, and every place where the core
sends on behalf of user code (`ordered_send`, or `send_held()` before a send of its own)
flushes the holders first. Transports know nothing of this: they only move messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..transports.base import Buffer, Channel

__all__ = ["Holder", "holding", "released", "send_held", "ordered_send"]


class Holder(Protocol):
    def flush(self) -> None: ...


_holders: set[Holder] = set()


def holding(holder: Holder) -> None:
    """`holder` holds messages until its next flush."""
    _holders.add(holder)


def released(holder: Holder) -> None:
    """`holder` holds nothing any more."""
    _holders.discard(holder)


def send_held() -> None:
    """Flush every holder now (before a message leaves this process). A holder sends
    its own messages with a plain `Channel.send`, so one holder's flush never flushes
    another (messages to different receivers are not ordered anyway), which also rules
    out two flushes waiting on each other."""
    while _holders:
        try:
            holder = _holders.pop()
        except KeyError:
            return  # another thread took the last one
        try:
            holder.flush()
        except Exception:
            pass  # the holder's failure is its own; it reports it to its own caller


def ordered_send(channel: Channel, frames: Sequence[Buffer]) -> None:
    """`channel.send(frames)` behind every message this process holds back."""
    if _holders:
        send_held()
    channel.send(frames)

