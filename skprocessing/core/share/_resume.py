"""Exactly once across a broken session: a network client's messages are numbered, kept
until they are known applied, and replayed on its next connection; the coordinator
applies each number once.

Over a network transport a session can break with messages in flight (a link cut longer
than `dead_after`, a TCP connection reset): pipelined writes that already returned to the
caller may have reached the coordinator or not. So:

- client side (`Journal`): every write and request of a `Syncing` connection gets the next
  number of this client (a random id per process and share) and stays in the journal until
  an answer proves it applied: the answer to a request (or a FENCE) on a connection comes
  after everything sent before it there. At most two write windows are unanswered
  (`_connection.WINDOW`), which bounds the journal.
- every connection starts with RESUME(client id, number of the first message it sends),
  followed by the journal's messages (what the last connection may have lost) and then new
  ones, all in order;
- coordinator side (`Records`): per client id, the highest number applied and the answer
  to the last request that changed something. A message whose number is not above it is
  a replay: skipped, or for a request answered again (from the kept answer; a read runs
  again, it changes nothing). Two sessions of one client may overlap for a while (the old
  one not yet found dead here): whichever delivers a number first applies it.

A write that returned is thus applied exactly once as long as some later connection of
its process reaches the coordinator; when none can (the coordinator or the network is
gone), the operation that found out raises `ShareError`, saying how many earlier writes
are still unconfirmed.
"""

from __future__ import annotations

import collections
import os
from typing import Any

from ...transports.base import Frames

__all__ = ["Journal", "Record", "Records", "MAX_RECORDS"]

MAX_RECORDS = 65_536  # clients remembered by a coordinator; the least recently heard go first


class Journal:
    """A client's numbered messages not yet known applied (see the module docstring)."""

    def __init__(self) -> None:
        self.ident = os.urandom(8)
        self.next = 1
        self.entries: collections.deque[tuple[int, Frames]] = collections.deque()

    def add(self, frames: Frames) -> int:
        seq = self.next
        self.next += 1
        self.entries.append((seq, frames))
        return seq

    def confirm(self, upto: int) -> None:
        """Messages up to `upto` are applied: forget them."""
        entries = self.entries
        while entries and entries[0][0] <= upto:
            entries.popleft()

    def withdraw(self, seq: int) -> None:
        """Forget the last message, numbered `seq`, without sending it: its caller is told
        that it failed."""
        if self.entries and self.entries[-1][0] == seq:
            self.entries.pop()
            self.next = seq

    @property
    def first(self) -> int:
        """The number of the first message a new connection sends."""
        return self.entries[0][0] if self.entries else self.next

    def __len__(self) -> int:
        return len(self.entries)


class Record:
    """What the coordinator remembers of one client across its sessions."""

    __slots__ = ("applied", "answered", "answer")

    def __init__(self, applied: int):
        self.applied = applied
        self.answered = 0                 # number of the request whose answer is kept
        self.answer: Frames | None = None


class Records:
    """Client id -> `Record`, the least recently heard forgotten beyond `MAX_RECORDS`."""

    def __init__(self) -> None:
        self._records: collections.OrderedDict[bytes, Record] = collections.OrderedDict()

    def resume(self, ident: Any, first: Any) -> Record:
        if type(ident) is not bytes or type(first) is not int or first < 1:
            raise ValueError("bad RESUME")
        record = self._records.get(ident)
        if record is None:
            # A new client (or one forgotten): everything before `first` was applied, as
            # the client knows from its answers.
            record = self._records[ident] = Record(first - 1)
            if len(self._records) > MAX_RECORDS:
                self._records.popitem(last=False)
        else:
            self._records.move_to_end(ident)
        return record
