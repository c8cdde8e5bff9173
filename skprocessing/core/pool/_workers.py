"""The head's view of its workers, and the thread that admits new ones.

Workers are known by the channel they connected on. A worker this pool started itself
also has a process handle (so it can be killed and its exit code read); a worker that
joined by address (a remote transport) has none, and is only ever told to STOP.
`Workers` is the register of them all: connected, starting, and the agents (nannies) of
worker hosts.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ..._deadline import Deadline
from ...errors import ChannelClosed, ProcessError, TransportError
from ...serializers.codec import Codec
from ...transports.base import Channel, Listener, ProcessHandle, Transport
from ._chunks import Chunk
from ._messages import AGENT, HELLO, STATUS
from ._worker import worker_main

__all__ = ["WorkerSlot", "Workers", "Acceptor", "BOOT_FAILURES", "answer_status", "STATUS_CODEC"]

log = logging.getLogger("skprocessing.pool")
BOOT_FAILURES = 5  # workers in a row that die before saying HELLO: the pool is broken


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
            code = self.handle.wait(0)
            if code is not None:
                how = f" killed by signal {-code}" if code < 0 else f" exited with code {code}"
        elif self.fate is not None and self.fate[0] == "died":
            code = self.fate[1]
            how = f" killed by signal {-code}" if code < 0 else f" exited with code {code}"
        where = f" on host {self.host}" if self.host and self.handle is None else ""
        return f"worker pid {self.pid}{where}{how}"


class Workers:
    """Every worker of the pool: connected (`slots`, by channel), starting (by worker id,
    until its HELLO), and the agents of worker hosts (`agents`: channel -> (id, host)).
    While `running`, the pool keeps `size` workers of its own: one that ends is replaced.
    Scheduler thread only, but for `pids()`."""

    def __init__(self, transport: Transport, address: str, codec: Codec, credits: int):
        self.slots: dict[Channel, WorkerSlot] = {}
        self.starting: dict[int, ProcessHandle] = {}
        self.agents: dict[Channel, tuple[str, str]] = {}
        self.running = True
        self.lost = 0  # workers lost so far (for status)
        self._transport = transport
        self._start_args = (transport.spec(), address, codec.token())
        self._credits = credits
        self._ids = itertools.count(1)
        self._boot_failures = 0

    def start(self) -> None:
        """Start one worker process of the pool's own (it connects back and says HELLO)."""
        worker_id = next(self._ids)
        spec, address, token = self._start_args
        self.starting[worker_id] = self._transport.start(
            worker_main, spec, address, token, worker_id, self._credits)

    def replace(self) -> None:
        """One of the pool's own workers ended: start another while the pool runs."""
        if self.running:
            self.start()

    def admit(self, channel: Channel, hello: tuple) -> None:
        """A peer said HELLO: a worker (ours, or one that joined by address) or an agent."""
        worker_id, pid, credits, *more = hello
        host, agent = (list(more) + [None, None])[:2]
        if worker_id == AGENT:
            self.agents[channel] = (agent, host)
            log.info("agent of host %s joined (pid %s)", host, pid)
            return
        handle = self.starting.get(worker_id) if isinstance(worker_id, int) else None
        # Into slots before out of starting: pids() (another thread) sees it always.
        self.slots[channel] = WorkerSlot(channel, pid, max(1, int(credits)), handle, host, agent)
        self.starting.pop(worker_id, None)
        self._boot_failures = 0
        if handle is None:
            log.info("worker pid %s of host %s joined (%d connected)", pid, host, len(self.slots))

    def check_starting(self) -> None:
        """Replace workers that died before their HELLO; too many in a row break the pool."""
        for worker_id, handle in list(self.starting.items()):
            code = handle.wait(0)
            if code is None:
                continue
            del self.starting[worker_id]
            self._boot_failures += 1
            if self._boot_failures >= BOOT_FAILURES:
                raise ProcessError(f"pool workers exit before they start working (the last "
                                   f"exited with code {code}); see their stderr")
            self.replace()

    def remove(self, slot: WorkerSlot) -> None:
        """`slot`'s worker is gone: forget it and close its channel."""
        del self.slots[slot.channel]
        slot.channel.close()
        self.lost += 1

    def held(self) -> Iterator[Chunk]:
        """Every chunk a worker holds."""
        return (chunk for slot in self.slots.values() for chunk in slot.inflight)

    def pids(self) -> list[int]:
        """Pids of the workers it started that are running or starting (any thread)."""
        handles = [s.handle for s in list(self.slots.values())] + list(self.starting.values())
        return [h.pid for h in handles if h is not None and h.pid is not None]

    def shutdown(self, kill: bool) -> None:
        """End every worker of ours (killed, or waited for after a STOP), close every channel."""
        handles = [s.handle for s in self.slots.values() if s.handle is not None]
        for handle in self.starting.values():
            handle.kill()
        for handle in handles:
            if kill:
                handle.kill()
        deadline = Deadline(5.0)
        for handle in [*handles, *self.starting.values()]:
            if handle.wait(deadline.remaining()) is None:
                handle.kill()
                handle.wait(1.0)
        for slot in self.slots.values():
            slot.channel.close()
        for channel in self.agents:
            channel.close()
        self.slots.clear()
        self.agents.clear()
        self.starting.clear()


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
