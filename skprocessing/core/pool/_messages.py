"""The Pool wire protocol: message kinds, their bodies, and how task errors travel.

Every message is `Codec.encode(kind, body)`: a header frame (kind byte + serializer name)
and the serializer's frames, so large buffers ride as their own out-of-band frames and a
receiver refuses data made by a serializer it was not told to accept. Bodies are plain
tuples (cheap to build and to pickle), named here once:

    worker -> head   HELLO    (worker_id | None, pid, credits, host, agent_id | None)
                                                                    once, after connect()
                     RESULT   (chunk_id, values, errors, seconds, next_started)
                                                                    one per chunk; +1 credit
                     STARTED  chunk_id                              as each chunk begins
    agent -> head    HELLO    ("agent", pid, 0, host, agent_id)    a worker host's nanny
                     DIED     (pid, exitcode)                       one of its workers died
    head -> agent    KILL     pid                        end that worker (timeout, cancel)
    head -> worker   FUNC     (func_id, star, skprocess, fn_frames, forget_ids)
                     TASK     (chunk_id, func_id, items)
                     STOP     None                                  finish and exit

Credit-based flow: a worker announces how many chunks it may hold (`credits`, a small
prefetch); the head never sends more TASKs than that, and each RESULT returns one credit.
A remote worker that joins by address speaks exactly the same messages. The first
three HELLO fields are required; `host` and `agent_id` may be missing (older workers).

A worker host runs an agent (`python -m skprocessing worker URL`) that starts the
workers and watches them. Its own session carries DIED: the head then settles that
worker at once (no waiting for a heartbeat) and charges its running item with a death.
A worker lost without a DIED (host down, network cut, heartbeat silence) was not killed
by its item: its chunks go to other workers at no cost to them.

STARTED tells the head that the worker has the function loaded and begins the chunk
(sent only when the worker was idle: a chunk that was already waiting in the worker when
it sent the previous RESULT starts right after it, so that RESULT, with `next_started`
true, stands for its STARTED; this saves one message in three when the worker is kept
busy by its prefetch): a
per-item timeout is measured from it (not from the send, so loading and importing do not
count), and a worker that dies before it is not charged to the chunk's items.

`errors` is None (the common case) or {offset in chunk: packed error}; see `pack_error`.
A RESULT with chunk_id None says the worker could not even load the TASK it got next;
its `errors` is then one packed error for the whole chunk.
"""

from __future__ import annotations

import traceback

from ...errors import RemoteError, RemoteTraceback

__all__ = ["HELLO", "RESULT", "FUNC", "TASK", "STOP", "FUNCTION_BODY", "STARTED", "DIED", "KILL",
           "AGENT", "strip_error",
           "pack_error", "unpack_error"]

HELLO = 1
RESULT = 2
FUNC = 3
TASK = 4
STOP = 5
FUNCTION_BODY = 6  # the mapped callable, encoded once per call and embedded in FUNC
STARTED = 7
DIED = 8
KILL = 9
STATUS = 10  # a status request (a tool, not a worker) instead of HELLO; see _workers.Acceptor
AGENT = "agent"  # the worker_id an agent's HELLO carries

PackedError = tuple  # (exception | None, type's module, type's qualname, message, traceback text)


def pack_error(exc: BaseException, tb_text: str | None = None) -> PackedError:
    """An exception ready to travel: the object itself plus text that survives even if
    the object cannot be serialized (the sender drops it then, see `strip_error`)."""
    if tb_text is None:
        tb_text = getattr(exc, "remote_traceback", None) or "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__))
    return (exc, type(exc).__module__, type(exc).__qualname__, str(exc), tb_text)


def strip_error(packed: PackedError) -> PackedError:
    """The same error without the exception object (for one that will not serialize)."""
    return (None, *packed[1:])


def unpack_error(packed: PackedError, where: str) -> BaseException:
    """The exception to raise in the caller: the original type when it travelled, with
    the worker's traceback as `__cause__` and a note naming the item (`where`); else a
    `RemoteError` that says what it was."""
    if len(packed) == 4:  # from an older worker: (exception, "module.qualname", ...)
        module, _, qualname = packed[1].rpartition(".")
        packed = (packed[0], module, qualname, *packed[2:])
    exc, module, qualname, message, tb_text = packed
    if exc is None:
        exc = RemoteError(f"{module}.{qualname}: {message} (the exception object itself could "
                          f"not be sent back, so it is re-raised as a RemoteError)",
                          type_name=qualname, module=module, error_message=message)
        exc.remote_traceback = tb_text or None
    if tb_text and exc.__cause__ is None:
        exc.__cause__ = RemoteTraceback(tb_text)
    exc.add_note(f"skprocessing.Pool: raised by {where}")
    return exc
