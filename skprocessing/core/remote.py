"""An `Skprocess` on a worker of a `Pool`: `process.start(on=pool)`.

Locally a child shares memory with its parent (the stop flag, the run counter) and gets
its channels as start arguments. A worker may be on another host, so everything travels
through the pool's transport instead:

    parent                                         pool worker (any host)
    listen() on the pool's transport ◄──connect── remote_main(...)  (a pool task)
      accept control, messages       ◄── HELLO(token, role) on each; ACK on control
      stop()  → STOP on control      ──► relay thread: sets the local stop flag
      kill()  → KILL on control      ──► relay thread: SIGKILL (the agent replaces the worker)
      current_run ◄── RUN on control ◄── relay thread: the counter, when it changed
      result()    ◄── OUTCOME        ◄── engine.main, as locally
      tell/listen ◄─► messages       ◄─► the same two calls as locally

The task's token (random, inside the signed task) proves which connection is whose.
When the worker or its host is lost, the control channel closes (the transport's
heartbeats) and the process ends with `ProcessDiedError`; the pool call is then
cancelled, so the pool never runs the process a second time elsewhere.
"""

from __future__ import annotations

import hmac
import os
import platform
import signal
import threading
from concurrent.futures import Future
from typing import Any

from ..errors import ChannelClosed, ProcessDiedError, ProcessError, ResultTimeoutError, StateError, TransportError
from ..serializers.codec import Codec
from ..transports import get_transport
from ..transports.base import Buffer, Channel, Frames, ProcessHandle, Transport
from . import engine
from ._exit import end_process_now, process_entry
from ._signals import Flag, PlainCounter, PlainFlag
from .modifiers import run_in_thread
from ._race import first_to_answer
from .._deadline import Deadline

__all__ = ["start_on", "remote_main", "relayed_main", "RemoteHandle", "RemoteStop"]

_CONTROL, _MESSAGES = b"control", b"messages"
_ACK = b"ack"
_HELLO_TIMEOUT = 10.0   # a connection that does not say who it is within this is dropped
_REPORT_EVERY = 0.02    # how stale a remote current_run may be, in seconds
_NO_LIMIT = 1e9         # seconds (31 years): see start_on


# -- the parent's side -------------------------------------------------------------------------
class RemoteStop(Flag):
    """The parent's stop flag of a child without shared memory (on a pool worker, or
    started by a transport without `SAME_HOST_MEMORY`): `set()` tells it on its control
    channel."""

    def __init__(self, control: Channel, codec: Codec):
        self._control = control
        self._codec = codec
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            _send_quietly(self._control, self._codec.encode(engine.STOP, None))

    def clear(self) -> None:
        raise StateError("a remote process's stop cannot be undone")

    def is_set(self) -> bool:
        return self._set


class RemoteHandle(ProcessHandle):
    """The process as seen from the parent: its pool task (`done`), pid and host."""

    def __init__(self, done: Future, pid: int, host: str, control: Channel, codec: Codec,
                 cancel: Any):
        self.pid = pid
        self.host = host
        self._done = done
        self._control = control
        self._codec = codec
        self._cancel = cancel
        self._killed = False
        self.abandoned = False

    def wait(self, timeout: float | None = None) -> int | None:
        """None while its pool task runs; then 0 (it ended), -SIGKILL (killed: certain at
        once), or the exit code of the worker it was lost with (1 when none is known)."""
        if self._killed:
            return -signal.SIGKILL
        try:
            self._done.result(timeout)
        except TimeoutError:
            return None
        except BaseException as exc:  # the task's failure; the process's outcome says what happened
            known = isinstance(exc, ProcessDiedError) and exc.exitcode is not None
            return exc.exitcode if known else 1
        return 0

    def kill(self) -> None:
        """SIGKILL, twice over: the worker's relay kills its own process at once, and the
        pool's call is cancelled, which ends the worker running it. Returns without
        waiting: the worker's end reaches this host only with the next heartbeat (which is
        when another thread already waiting for the outcome sees it)."""
        self._killed = True
        _send_quietly(self._control, self._codec.encode(engine.KILL, None))
        self.abandon()

    def abandon(self) -> None:
        """The process is lost: cancel its pool task, replacing the worker that may still
        run it, so the pool does not run it again elsewhere."""
        self.abandoned = True
        self._cancel(True)

    def finish(self) -> None:
        """The process delivered its outcome: let its task end by itself."""
        self._cancel(False)

    def lost(self) -> str:
        """How the process ended without an outcome, in words."""
        where = f"on {self.host}"
        if self._killed:
            return f"{where} was killed"
        return f"{where} was lost with its worker or host"


def start_on(pool: Any, process: Any, codec: Codec, payload: list[bytes], settings: Any,
             timeout: float | None) -> tuple[Transport, Channel, Channel, RemoteHandle]:
    """Run `process` (already serialized as `payload`) as a task on one of `pool`'s workers;
    return once it runs there: (transport, control, messages, handle)."""
    transport: Transport = pool.transport
    listener = transport.listen(pool._neighbour_address())
    try:
        token = os.urandom(16)
        addresses = listener.reachable_addresses()
        spec = transport.spec()
        task = (spec, tuple(addresses), token, codec.token(), payload, settings)
        # The pool's per-item timeout must not end a long process, but a timed item is what
        # the pool gives a worker of its own with nothing queued behind it: so, a limit of
        # decades. retries=0: a process that dies is not started again.
        results = pool.imap(remote_main, [task], chunksize=1, retries=0, timeout=_NO_LIMIT)
        done = run_in_thread(lambda: next(results), name="skprocessing-remote-process")
        try:
            control, messages, pid, host = _accept_pair(transport, listener, token, done,
                                                        timeout, type(process).__qualname__)
        except BaseException:
            results.close(kill=True)
            raise
    finally:
        listener.close()
    handle = RemoteHandle(done, pid, host, control, codec, lambda kill: results.close(kill=kill))
    return transport, control, messages, handle


def _accept_pair(transport: Transport, listener: Any, token: bytes, done: Future,
                 timeout: float | None, name: str) -> tuple[Channel, Channel, int, str]:
    """Accept the child's control and messages channels; stray connections are closed.
    Fails when the task ended without them (it could not start) or `timeout` passes."""
    deadline = Deadline(timeout)
    found: dict[bytes, tuple[Channel, int, str]] = {}  # role -> (channel, pid, host)
    while len(found) < 2:
        ended = done.done()
        out_of_time = deadline.expired()
        # A short process may be over before we look: what connected still counts, so the
        # task's end means failure only once nothing more waits at the listener.
        wait = 0 if ended or out_of_time else deadline.remaining(0.05)
        if transport.wait([listener], wait):
            _take(listener, token, found)
        elif ended or out_of_time:
            for channel, _, _ in found.values():
                channel.close()
            if ended:
                _raise_start_failure(done, name)
            raise ResultTimeoutError(f"{name}.start(on=pool): no worker of the pool took the "
                                     f"process within {timeout:g} s")
    control, pid, host = found[_CONTROL]
    return control, found[_MESSAGES][0], pid, host


def _take(listener: Any, token: bytes, found: dict[bytes, tuple[Channel, int, str]]) -> None:
    """Accept one connection; keep it in `found` if it is one of ours (the control
    channel's HELLO also says the child's pid and host)."""
    channel = listener.accept(0)
    if channel is None:
        return
    try:
        hello = channel.recv(_HELLO_TIMEOUT)
    except ChannelClosed:
        hello = None
    role = bytes(hello[1]) if hello and len(hello) >= 2 else None
    try:
        if (role not in (_CONTROL, _MESSAGES) or role in found
                or not hmac.compare_digest(bytes(hello[0]), token)):
            raise ValueError("not ours")
        pid, host = (int(bytes(hello[2])), bytes(hello[3]).decode(errors="replace")) \
            if role == _CONTROL else (0, "")
    except (ValueError, IndexError):
        channel.close()  # not ours (or a duplicate): say nothing to it
        return
    found[role] = (channel, pid, host)
    if role == _CONTROL:
        channel.send([_ACK])


def _raise_start_failure(done: Future, name: str) -> None:
    error = done.exception()
    if error is None:
        raise ProcessError(f"{name}.start(on=pool): the worker ended the task without "
                           f"running the process")
    raise ProcessError(f"{name}.start(on=pool): the process could not start on a worker: "
                       f"{type(error).__name__}: {error}") from error


# -- the worker's side -------------------------------------------------------------------------
class _Relay:
    """The child's end of its control channel. A thread turns the parent's STOP and KILL
    into the local flag and a SIGKILL, and reports `current_run` when it changed; sends
    from that thread and the engine's OUTCOME share a lock."""

    def __init__(self, control: Channel, codec: Codec):
        self.control = control
        self.codec = codec
        self.stop = PlainFlag()
        self.counter = PlainCounter()
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="skprocessing-remote-relay",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """The engine is done. The relay closes the control channel itself when it next
        wakes (within `_REPORT_EVERY`): the task ends now, without waiting for that."""
        self._finished.set()

    def send(self, frames: list[Buffer]) -> None:
        with self._lock:
            self.control.send(frames)

    def _die(self) -> None:
        """SIGKILL this process; where it is not the entry's own (a backend's thread), stop
        the engine at its next check instead: the backend already declared it dead."""
        if not end_process_now():
            self.stop.set()

    def _serve(self) -> None:
        try:
            self._relay()
        finally:
            self.control.close()

    def _relay(self) -> None:
        reported = 0
        while not self._finished.is_set():
            try:
                frames = self.control.recv(_REPORT_EVERY)
            except ChannelClosed:
                if not self._finished.is_set():
                    self._die()  # the parent is gone: like a local child, do not outlive it
                return
            if frames is not None:
                kind = frames[0][0] if frames and len(frames[0]) else None
                if kind == engine.STOP:
                    self.stop.set()
                elif kind == engine.KILL and not self._finished.is_set():
                    self._die()  # (once finished, this worker may be running someone else's task)
                    return
            run = self.counter.value
            if run != reported and not self._finished.is_set():
                reported = run
                try:
                    self.send(self.codec.encode(engine.RUN, run))
                except ChannelClosed:
                    pass  # noticed at the next recv


class _RelayedControl(Channel):
    """What the engine sends its outcome on: the control channel, under the relay's lock."""

    def __init__(self, relay: _Relay):
        self._relay = relay

    def send(self, frames: Any) -> None:
        self._relay.send(frames)

    def recv(self, timeout: float | None = None) -> Frames | None:
        raise TransportError("the control channel is read by the relay")

    def poll(self, timeout: float | None = 0.0) -> bool:
        return False

    def close(self) -> None:
        self._relay.finish()  # the relay thread owns the channel and closes it

    @property
    def closed(self) -> bool:
        return self._relay.control.closed


def remote_main(task: tuple) -> None:
    """The pool task that runs one process on this worker (see the module docstring)."""
    spec, addresses, token, codec_token, payload, settings = task
    transport = get_transport(spec)
    control, address = _dial(transport, addresses, token)
    relay = _Relay(control, Codec.from_token(codec_token))  # owns `control` from here on
    relay.start()
    try:
        messages = transport.connect(address, timeout=_HELLO_TIMEOUT)
        try:
            messages.send([token, _MESSAGES])
            _run_relayed(relay, codec_token, payload, messages, settings)
        finally:
            messages.close()
    finally:
        relay.finish()


@process_entry
def relayed_main(codec_token: Any, payload: list[bytes], control: Channel, messages: Channel,
                 settings: Any = None) -> None:
    """Entry point of an `Skprocess` child on a transport without shared memory: its stop
    and run counter travel on `control`, through a relay, as on a pool worker."""
    relay = _Relay(control, Codec.from_token(codec_token))
    relay.start()
    try:
        _run_relayed(relay, codec_token, payload, messages, settings)
    finally:
        relay.finish()


def _run_relayed(relay: _Relay, codec_token: Any, payload: list[bytes], messages: Channel,
                 settings: Any) -> None:
    engine.main(codec_token, payload, _RelayedControl(relay), messages, relay.stop,
                relay.counter, settings)


def _dial(transport: Transport, addresses: tuple[str, ...], token: bytes) -> tuple[Channel, str]:
    """The control channel to the first address where the parent answers our token. All
    are tried at once (a host's unreachable interface must not cost a timeout each); the
    parent acknowledges one control channel only, so exactly one attempt succeeds."""
    return first_to_answer(addresses, lambda address: _attempt(transport, address, token),
                           failure="could not reach the parent process at any of its addresses",
                           name="skprocessing-remote-dial")


def _attempt(transport: Transport, address: str, token: bytes) -> Channel:
    """The control channel the parent acknowledged at `address`; raises what went wrong."""
    channel = transport.connect(address, timeout=_HELLO_TIMEOUT)
    try:
        channel.send([token, _CONTROL, str(os.getpid()).encode(), platform.node().encode()])
        answer = channel.recv(_HELLO_TIMEOUT)
    except BaseException:
        channel.close()
        raise
    if answer and bytes(answer[0]) == _ACK:
        return channel
    channel.close()
    raise TransportError("no answer")


def _send_quietly(channel: Channel, frames: Frames) -> None:
    try:
        channel.send(frames)
    except ChannelClosed:
        pass  # the process is already gone; the outcome or its death says so


