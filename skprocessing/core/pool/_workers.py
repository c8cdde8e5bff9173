"""The head's view of its workers, and the thread that admits new ones.

Workers are known by the channel they connected on. A worker this pool started itself
also has a process handle (so it can be killed and its exit code read); a worker that
joined by address (a remote transport) has none, and is only ever told to STOP.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

from ...errors import ChannelClosed, TransportError
from ...serializers.codec import Codec
from ...transports.base import Channel, Listener, ProcessHandle
from ._chunks import Chunk
from ._messages import HELLO, STATUS

__all__ = ["WorkerSlot", "Acceptor", "answer_status", "STATUS_CODEC"]

log = logging.getLogger("skprocessing.pool")


class WorkerSlot:
    """One connected worker: its credits, the chunks it holds (in the order it runs
    them), and the functions it has cached."""

    __slots__ = ("channel", "pid", "handle", "credits", "inflight", "functions",
                 "deadline", "fate", "host", "agent", "done", "settle_at")

    def __init__(self, channel: Channel, pid: int, credits: int, handle: ProcessHandle | None,
                 host: str | None = None, agent: str | None = None):
        self.channel = channel
        self.pid = pid
        self.handle = handle
        self.host = host    # the worker's host name, when it said (for messages, status)
        self.agent = agent  # the id of the agent (nanny) that started it, if any
        self.done = 0       # items it has finished
        self.settle_at: float | None = None  # known dead: settle it then (late messages)
        self.credits = credits
        self.inflight: collections.deque[Chunk] = collections.deque()
        self.functions: dict[int, Any] = {}  # call id -> weakref to the Call whose function it holds
        self.deadline: float | None = None  # when the running timed item runs over
        self.fate: tuple[str, Any] | None = None  # why the head killed it, if it did

    @property
    def timed(self) -> bool:
        """True while it runs an item that has a per-item timeout, or a suspect one (it
        gets nothing else)."""
        return any(chunk.call.timeout is not None or chunk.suspect for chunk in self.inflight)

    def describe(self) -> str:
        how = ""
        if self.handle is not None:
            code = self.handle.exitcode
            if code is not None:
                how = f" killed by signal {-code}" if code < 0 else f" exited with code {code}"
        elif self.fate is not None and self.fate[0] == "died":
            code = self.fate[1]
            how = f" killed by signal {-code}" if code < 0 else f" exited with code {code}"
        where = f" on host {self.host}" if self.host and self.handle is None else ""
        return f"worker pid {self.pid}{where}{how}"


class Acceptor(threading.Thread):
    """Accepts connections on the pool's listener and hands each (channel, hello) to
    `admit`. A thread of its own so the scheduler waits only on channels (the one thing
    every transport's `wait` supports); it closes the listener when told to stop."""

    def __init__(self, listener: Listener, codec: Codec,
                 admit: Callable[[Channel, tuple], None],
                 status: Callable[[], dict] | None = None):
        super().__init__(name="skprocessing-pool-acceptor", daemon=True)
        self.listener = listener
        self.codec = codec
        self.admit = admit
        self.status = status  # what a STATUS request is answered with (Pool.status())
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    channel = self.listener.accept(timeout=0.05)
                except (OSError, TransportError):
                    return
                if channel is not None:
                    self._greet(channel)
        finally:
            self.listener.close()

    def _greet(self, channel: Channel) -> None:
        # A peer that does not say HELLO promptly and properly is dropped, never trusted.
        try:
            frames = channel.recv(timeout=10.0)
            if frames and self.status is not None and bytes(frames[0][:1]) == bytes((STATUS,)):
                # A tool asking (`python -m skprocessing status`): it came through the
                # transport's authentication like any peer; answered on a thread of its
                # own, so a slow answer never keeps workers from joining.
                threading.Thread(target=answer_status, args=(channel, self.status),
                                 name="skprocessing-status", daemon=True).start()
                return
            kind, hello = self.codec.decode(frames) if frames is not None else (None, None)
        except Exception:
            kind = None
        if kind != HELLO or not _valid_hello(hello):
            channel.close()
            return
        self.admit(channel, hello)


# A status answer is plain data, in msgpack whatever the pool's serializer: any tool can
# read it, and reading it can run no code.
STATUS_CODEC = Codec("msgpack")


def answer_status(channel: Channel, status: Callable[[], dict]) -> None:
    """Send `status()` (or why there is none) and wait, bounded, for the asker to hang up."""
    try:
        try:
            body = {"ok": True, **status()}
        except Exception as exc:
            body = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        log.debug("answering a status request")
        channel.send(STATUS_CODEC.encode(STATUS, body))
        channel.recv(timeout=10.0)  # the asker closes once it has read: then we may too
    except (ChannelClosed, TransportError, OSError):
        pass
    finally:
        channel.close()


def _valid_hello(hello: Any) -> bool:
    """`(worker_id | "agent" | None, pid, credits, ...)`: checked here, so a malformed one
    is dropped at the door instead of breaking the scheduler (and every map) later."""
    if not isinstance(hello, tuple) or len(hello) < 3:
        return False
    worker_id, pid, credits = hello[:3]
    return (worker_id is None or isinstance(worker_id, (int, str))) \
        and isinstance(pid, int) and isinstance(credits, int) and credits >= 0
