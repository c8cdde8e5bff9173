"""`.timeout(s)`, `.background()` and `.asynced()` on blocking methods, in any combination.

    process.result.timeout(5)()                      raises ResultTimeoutError after 5 s
    process.wait.background()()                      a concurrent.futures.Future
    await process.listen.asynced()()                 an awaitable
    pool.map.timeout(30).background()(fn, items)     combined

A method opts in with `@modifiable`; it must accept the keyword `_modifier_timeout` (seconds
or None) and raise `ResultTimeoutError` itself when it runs out, so a deadline stops the
real wait instead of abandoning it in a thread. `@modifiable(cancellable=True)`: it also
takes `_modifier_cancel` and binds there how to stop, so cancelling a Future or an asyncio
task stops the work, not only the wait. `@modifiable(iterator=True)`: it returns an
iterator without blocking; `.background()` gives a Future of the list, and `.asynced()`
an `AsyncResults`, both awaitable (the list) and an async iterator (streaming).
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Generator
from concurrent.futures import Future, InvalidStateError
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from .._seconds import seconds as check_seconds

__all__ = ["modifiable", "Modifiable", "run_in_thread", "Cancel", "AsyncResults"]

T = TypeVar("T")
P = ParamSpec("P")  # a modifiable method's parameters, which its modifiers' calls keep
S = TypeVar("S")    # the class that defines a modifiable method


def run_in_thread(call: Callable[[], T], name: str = "skprocessing-background",
                  cancel: Cancel | None = None) -> Future[T]:
    """Run `call` on a fresh daemon thread; its outcome lands in the returned Future.

    A thread per call (not a fixed pool) so that many long waits in the background can
    never starve each other. With `cancel`, `future.cancel()` works while the call runs:
    it fires `cancel` (the call stops its work through what it bound there) and the
    Future is cancelled at once. Such a Future stays "pending" while it runs
    (`running()` is False), since a running `concurrent.futures.Future` cannot be
    cancelled."""
    future: Future[T] = Future()
    if cancel is None:
        future.set_running_or_notify_cancel()
    else:
        future.add_done_callback(lambda f: f.cancelled() and cancel.fire())

    def runner() -> None:
        try:
            outcome, failed = call(), False
        except BaseException as exc:  # the Future carries it to whoever waits
            outcome, failed = exc, True
        try:
            future.set_exception(outcome) if failed else future.set_result(outcome)
        except InvalidStateError:
            pass  # cancelled meanwhile: nobody waits for this outcome

    threading.Thread(target=runner, name=name, daemon=True).start()
    return future


class Cancel:
    """Given (as `_modifier_cancel`) to a cancellable call run by `.background()` or
    `.asynced()`: the call `bind`s how to stop its work; cancelling the Future, or the
    task awaiting it, fires that."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: list[Callable[[], None]] = []
        self.fired = False

    def bind(self, hook: Callable[[], None]) -> None:
        """Run `hook` on cancellation (at once, if cancelled already)."""
        with self._lock:
            if not self.fired:
                self._hooks.append(hook)
                return
        hook()

    def fire(self) -> None:
        with self._lock:
            if self.fired:
                return
            self.fired = True
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            hook()


class Modifiable(Generic[P, T]):
    """A blocking call with its modifiers; calling it runs the call as configured.

    `.timeout(s)`, `.background()` and `.asynced()` each return a new one, so they chain
    in any order; the call's own signature and docstring are those of the method
    (`help(pool.map)` shows them)."""

    def __init__(self, call: Callable[..., T], timeout: float | None = None, mode: str = "sync",
                 kind: str = "call"):
        self._call = call
        self._timeout = timeout
        self._mode = mode
        self._kind = kind  # "call", "cancellable" (takes _modifier_cancel) or "iterator"
        # What help(), inspect.signature() and editors read: the method's own.
        self.__wrapped__ = call
        self.__name__ = getattr(call, "__name__", "call")
        self.__qualname__ = getattr(call, "__qualname__", self.__name__)
        self.__doc__ = inspect.cleandoc(getattr(call, "__doc__", None) or "") + _MODIFIERS_DOC
        self.__signature__ = _public_signature(call)

    def __get__(self, obj: Any, owner: type | None = None) -> Modifiable[P, T]:
        # Never a class attribute; defined so that help() documents it as a routine
        # (signature and docstring) rather than as an instance of this class.
        return self

    def timeout(self, seconds: float | None) -> Modifiable[P, T]:
        """Raise `ResultTimeoutError` if the call has not finished after `seconds`
        (None or math.inf: no limit)."""
        return Modifiable(self._call, check_seconds(".timeout()", seconds, zero=True), self._mode,
                          self._kind)

    def background(self) -> Modifiable[P, Future[T]]:
        """Return a `concurrent.futures.Future` at once instead of blocking (an iterator
        method's Future gives the list of results). For a Pool map, `future.cancel()`
        stops the call: no queued item starts, running ones are stopped."""
        return Modifiable(self._call, self._timeout, "background", self._kind)  # type: ignore[arg-type]

    def asynced(self) -> Modifiable[P, Awaitable[T]]:
        """Return an awaitable instead of blocking (the wait runs off the event loop).
        An iterator method's is also an async iterator: `await` it for the list, or
        `async for` over it to stream. Cancelling the awaiting task cancels the call."""
        return Modifiable(self._call, self._timeout, "async", self._kind)  # type: ignore[arg-type]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        kwargs.setdefault("_modifier_timeout", self._timeout)  # an inner call may pass its own
        if self._mode == "sync":
            return self._call(*args, **kwargs)
        return self._start(args, kwargs)

    def _start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The call in the background: its Future, or an awaitable (typed as T by the
        modes' own signatures above)."""
        cancel = None
        if self._kind != "call":
            cancel = Cancel()
            kwargs["_modifier_cancel"] = cancel
        call = functools.partial(self._call, *args, **kwargs)
        if self._kind == "iterator":
            if self._mode == "async":
                return AsyncResults(call, cancel)
            return run_in_thread(lambda: list(call()), cancel=cancel)
        future = run_in_thread(call, cancel=cancel)
        if self._mode == "background":
            return future
        return _await(future)

    def __repr__(self) -> str:
        return f"<modifiable {getattr(self._call, '__qualname__', self._call)} timeout={self._timeout} {self._mode}>"


_MODIFIERS_DOC = """

Modifiers, chained in any order before the call: `.timeout(s)` (the whole call;
`ResultTimeoutError`), `.background()` (a `concurrent.futures.Future`), `.asynced()` (an
awaitable), e.g. `.timeout(30).background()(...)`."""


def _public_signature(call: Callable[..., Any]) -> inspect.Signature | None:
    """The method's signature without the modifiers' private keywords."""
    try:
        signature = inspect.signature(call)
    except (TypeError, ValueError):
        return None
    return signature.replace(parameters=[p for p in signature.parameters.values()
                                         if not p.name.startswith("_modifier")])


async def _await(future: Future[T]) -> T:
    import asyncio  # here, not at the top: it costs ~20 ms of import for everyone else
    return await asyncio.wrap_future(future)


_END = object()


class AsyncResults(Generic[T]):
    """What `.asynced()` of an iterator method returns: `await` it for the list of
    results, or `async for` over it to take them as they come. The call starts at the
    first `await` or `__anext__`. Leaving the loop early: `await results.aclose()` (or
    cancelling the task) stops the call; otherwise it stops when this is dropped."""

    def __init__(self, start: Callable[[], Any], cancel: Cancel | None):
        self._start = start
        self._cancel = cancel
        self._iterator: Any = None

    def _results(self) -> Any:
        if self._iterator is None:
            self._iterator = self._start()
        return self._iterator

    def __await__(self) -> Generator[Any, None, list[T]]:
        return self._collect().__await__()

    async def _collect(self) -> list[T]:
        results = self._results()
        return await _await(run_in_thread(lambda: list(results), cancel=self._cancel))

    def __aiter__(self) -> AsyncResults[T]:
        return self

    async def __anext__(self) -> T:
        import asyncio
        results = self._results()
        if getattr(results, "ready", lambda: False)():  # no wait: no thread either
            try:
                return next(results)
            except StopIteration:
                raise StopAsyncIteration from None
        try:
            value = await _await(run_in_thread(lambda: next(results, _END)))
        except asyncio.CancelledError:
            self._stop()
            raise
        if value is _END:
            raise StopAsyncIteration
        return value

    async def aclose(self) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._cancel is not None:
            self._cancel.fire()
        close = getattr(self._iterator, "close", None)
        if close is not None:
            close()


class modifiable(Generic[S, P, T]):
    """Decorator: the method gains `.timeout()`, `.background()` and `.asynced()`.

    `cancellable=True`: the method takes `_modifier_cancel` (a `Cancel`, or None when it
    runs in the caller's thread) and binds to it how to stop. `iterator=True`: the method
    returns an iterator without blocking; `.background()` then gives a Future of the
    list, `.asynced()` an `AsyncResults` (and it is cancellable as above).

    Typed: on an instance, the method is a `Modifiable[P, T]` with the method's own
    parameters and result, so a type checker or an editor follows `obj.method(...)`,
    `obj.method.background()(...)` (a `Future[T]`) and so on."""

    @overload
    def __init__(self, method: Callable[Concatenate[S, P], T]) -> None: ...
    @overload
    def __init__(self: modifiable[Any, ..., Any], method: None = None, *,
                 cancellable: bool = False, iterator: bool = False) -> None: ...

    def __init__(self, method: Callable[..., Any] | None = None, *, cancellable: bool = False,
                 iterator: bool = False):
        self._kind = "iterator" if iterator else "cancellable" if cancellable else "call"
        if method is not None:
            self(method)

    def __call__(self, method: Callable[Concatenate[S, P], T]) -> modifiable[S, P, T]:
        self._method = method
        functools.update_wrapper(self, method)
        self.__signature__ = _public_signature(method)  # help(Class.method) hides them too
        return self

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> modifiable[S, P, T]: ...
    @overload
    def __get__(self, obj: S, owner: type | None = None) -> Modifiable[P, T]: ...

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return Modifiable(self._method.__get__(obj, owner), kind=self._kind)  # type: ignore[attr-defined]
