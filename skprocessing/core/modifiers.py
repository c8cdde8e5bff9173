"""`.timeout(s)`, `.background()` and `.asynced()` on blocking methods, in any combination.

    process.result.timeout(5)()                      raises ResultTimeoutError after 5 s
    process.wait.background()()                      a concurrent.futures.Future
    await process.listen.asynced()()                 an awaitable
    pool.map.timeout(30).background()(fn, items)     combined

A method opts in with `@modifiable`; it must accept the keyword `_modifier_timeout` (seconds
or None) and raise `ResultTimeoutError` itself when it runs out, so a deadline stops the
real wait instead of abandoning it in a thread.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from .._seconds import seconds as check_seconds

__all__ = ["modifiable", "Modifiable", "run_in_thread"]

T = TypeVar("T")


def run_in_thread(call: Callable[[], T], name: str = "skprocessing-background") -> Future[T]:
    """Run `call` on a fresh daemon thread; its outcome lands in the returned Future.

    A thread per call (not a fixed pool) so that many long waits in the background can
    never starve each other.
    """
    future: Future[T] = Future()
    future.set_running_or_notify_cancel()

    def runner() -> None:
        try:
            future.set_result(call())
        except BaseException as exc:  # the Future carries it to whoever waits
            future.set_exception(exc)

    threading.Thread(target=runner, name=name, daemon=True).start()
    return future


class Modifiable(Generic[T]):
    """A bound blocking call plus its modifiers. Calling it runs the call as configured."""

    __slots__ = ("_call", "_timeout", "_mode")

    def __init__(self, call: Callable[..., T], timeout: float | None = None, mode: str = "sync"):
        self._call = call
        self._timeout = timeout
        self._mode = mode

    def timeout(self, seconds: float) -> Modifiable[T]:
        """Raise `ResultTimeoutError` if the call has not finished after `seconds`."""
        return Modifiable(self._call, check_seconds(".timeout()", seconds, zero=True), self._mode)

    def background(self) -> Modifiable[Future[T]]:
        """Return a `concurrent.futures.Future` at once instead of blocking."""
        return Modifiable(self._call, self._timeout, "background")  # type: ignore[return-value]

    def asynced(self) -> Modifiable[Awaitable[T]]:
        """Return an awaitable instead of blocking (the wait runs off the event loop)."""
        return Modifiable(self._call, self._timeout, "async")  # type: ignore[return-value]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("_modifier_timeout", self._timeout)  # an inner call may pass its own
        if self._mode == "sync":
            return self._call(*args, **kwargs)
        call = functools.partial(self._call, *args, **kwargs)
        future = run_in_thread(call)
        if self._mode == "background":
            return future
        return _await(future)

    def __repr__(self) -> str:
        return f"<modifiable {getattr(self._call, '__qualname__', self._call)} timeout={self._timeout} {self._mode}>"


async def _await(future: Future[T]) -> T:
    import asyncio  # here, not at the top: it costs ~20 ms of import for everyone else
    return await asyncio.wrap_future(future)


class modifiable:
    """Decorator: the method gains `.timeout()`, `.background()` and `.asynced()`."""

    def __init__(self, method: Callable[..., Any]):
        self._method = method
        functools.update_wrapper(self, method)

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return Modifiable(self._method.__get__(obj, owner))
