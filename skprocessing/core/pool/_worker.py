"""The worker process: connect to the head, announce credits, run chunks until STOP.

    worker_main(transport spec, address, codec token, worker_id, credits)
      └─ connect(address) → HELLO(worker_id, pid, credits)
      └─ loop: FUNC  → load the callable once, keep it under its func_id
               TASK  → run every item of the chunk → RESULT(values, errors)
               STOP / head gone → exit

The same loop serves workers the pool started itself and workers that join by address
(a later transport), so it depends on nothing but the channel and the codec.
"""

from __future__ import annotations

import os
import queue
import signal
import platform
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from ...errors import ChannelClosed, DeserializationError, ProcessError, SerializationError
from ...serializers.codec import Codec
from ...transports import get_transport
from ...transports.base import Channel, Frames, SharedInt
from .. import _task_writes
from .._exit import owns_process, process_entry
from .._held import ordered_send
from .._signals import PlainCounter, PlainFlag
from ._messages import FUNC, HELLO, RESULT, STARTED, STOP, TASK, pack_error, strip_error

__all__ = ["worker_main", "serve"]


@process_entry
def worker_main(transport_spec: str, address: str, codec_token: Any, worker_id: int | None,
                credits: int, agent_id: str | None = None, done: SharedInt | None = None) -> None:
    """Entry point of a pool worker (started through `Transport.start`). `agent_id`: the
    agent (nanny) that started it, if any; `done`: a counter of items finished, which the
    agent reads for its throughput log."""
    if owns_process():  # (a backend's thread shares its process's handlers: leave them)
        # Ctrl-C reaches the whole terminal process group; the head decides what it cancels.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    codec = Codec.from_token(codec_token)
    channel = get_transport(transport_spec).connect(address, timeout=30.0)
    channel.send(codec.encode(HELLO, (worker_id, os.getpid(), credits, platform.node(),
                                      agent_id)))
    try:
        serve(channel, codec, done)
    except ChannelClosed:
        pass  # the head is gone: nothing left to work for
    finally:
        channel.close()


def serve(channel: Channel, codec: Codec, done: SharedInt | None = None) -> None:
    """Answer FUNC/TASK messages on `channel` until STOP or until the head goes away."""
    # A reader thread drains the channel into `inbox`, so the head's sends never block on
    # us while we block sending a large result to it (each side waiting on the other).
    inbox: queue.SimpleQueue[Frames | None] = queue.SimpleQueue()
    threading.Thread(target=_read, args=(channel, inbox), name="skprocessing-worker-reader",
                     daemon=True).start()
    functions: dict[int, Callable[..., Any]] = {}
    queued = False  # the next TASK was already here when the last RESULT went out
    while True:
        frames = inbox.get()
        if frames is None:
            return  # the head is gone
        try:
            kind, body = codec.decode(frames)
        except DeserializationError as exc:
            # Items that pickled in the head but do not unpickle here: say so (chunk_id None
            # means "the chunk you sent next"), and serve on.
            channel.send(codec.encode(RESULT, (None, [], pack_error(exc), 0.0)))
            queued = False
            continue
        if kind == TASK:
            chunk_id, func_id, items = body
            fn = functions[func_id]
            if not queued:  # else the head counts it started at the RESULT before it
                channel.send(codec.encode(STARTED, chunk_id))  # see _messages: STARTED
            began = time.perf_counter()
            _task_writes.begin()  # exactly_once Shares hold the chunk's writes for its RESULT
            try:
                values, errors = run_chunk(fn, items)
            finally:
                writes = _task_writes.end()
            elapsed = time.perf_counter() - began
            # Checked before the RESULT goes: a TASK already here was sent before the head
            # reads this RESULT, so the head can mark it started then (no STARTED needed).
            queued = not inbox.empty()
            ordered_send(channel, encode_result(codec, chunk_id, values, errors, elapsed, queued,
                                                writes))
            if done is not None:
                done.value += len(values)
        elif kind == FUNC:
            load_function(codec, functions, body)
        elif kind == STOP:
            return


def _read(channel: Channel, inbox: queue.SimpleQueue) -> None:
    try:
        while True:
            inbox.put(channel.recv())
    except (ChannelClosed, OSError):
        inbox.put(None)


def load_function(codec: Codec, functions: dict[int, Callable[..., Any]], body: tuple) -> None:
    func_id, star, skprocess, fn_frames, forget = body
    for old in forget:
        functions.pop(old, None)
    try:
        fn = codec.decode(fn_frames)[1]
    except Exception as exc:
        fn = _failing(exc, traceback.format_exc())  # every item reports why
    if skprocess:
        fn = _SkprocessRunner(fn)
    functions[func_id] = _star(fn) if star else fn


def run_chunk(fn: Callable[[Any], Any], items: list) -> tuple[list, dict | None]:
    """Call `fn` on each item; a failing item leaves None in `values` and its packed
    error in `errors`, and the chunk goes on (other items are never lost)."""
    values: list = []
    errors: dict | None = None
    rest = iter(items)
    while True:
        try:
            # The fast path: extend() keeps every value produced before an exception.
            values.extend(map(fn, rest))
            return values, errors
        except Exception as exc:
            if errors is None:
                errors = {}
            errors[len(values)] = pack_error(exc)
            values.append(None)


def encode_result(codec: Codec, chunk_id: int, values: list, errors: dict | None,
                  elapsed: float, next_started: bool = False, writes: list | None = None) -> list:
    """RESULT frames; a value or error that will not serialize is replaced, per item, by
    a SerializationError that names the item's offset and the failing path. `writes`:
    the chunk's held Share writes (`core/_task_writes.py`), already encoded."""
    if errors:
        # Exceptions are the usual objects that pickle but do not unpickle (a custom
        # __init__): make sure each one round-trips, or send its text alone.
        errors = {offset: packed if _round_trips(codec, packed[0]) else strip_error(packed)
                  for offset, packed in errors.items()}
    try:
        return codec.encode(RESULT, (chunk_id, values, errors, elapsed, next_started, writes))
    except SerializationError:
        pass
    errors = dict(errors or {})
    dumps = codec.serializer.dumps
    for offset, value in enumerate(values):
        if offset in errors:
            continue
        try:
            dumps(value)
        except SerializationError as exc:
            values[offset] = None
            error = SerializationError(f"the result could not be sent back: {exc}",
                                       path=exc.path, type_name=exc.type_name)
            errors[offset] = pack_error(error, "")
    return codec.encode(RESULT, (chunk_id, values, errors, elapsed, next_started, writes))


def _round_trips(codec: Codec, obj: Any) -> bool:
    try:
        codec.serializer.loads(codec.serializer.dumps(obj))
        return True
    except Exception:
        return False


def _star(fn: Callable[..., Any]) -> Callable[[Any], Any]:
    def call(args: Any) -> Any:
        return fn(*args)
    return call


def _failing(exc: BaseException, tb_text: str) -> Callable[..., Any]:
    error = ProcessError(f"the mapped callable could not be rebuilt in the worker: "
                         f"{type(exc).__name__}: {exc}")
    error.remote_traceback = tb_text

    def fail(*args: Any) -> Any:
        raise error
    return fail


class _SkprocessRunner:
    """Maps an `Skprocess` subclass: one instance per item (built with the item as its
    argument), run through its full lifecycle right here, its result returned."""

    def __init__(self, cls: type) -> None:
        from ..engine import Lifecycle
        self._cls = cls
        self._lifecycle = Lifecycle

    def __call__(self, *args: Any) -> Any:
        process = self._cls(*args)
        value = self._lifecycle(process, PlainFlag(), PlainCounter()).run()
        if isinstance(value, BaseException) and value is process.error:
            raise value  # lives exhausted and no __error__ handler: the error is the outcome
        return value
