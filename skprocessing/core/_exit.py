"""Work a process must finish before it exits: the core's, run by the core's own entries.

A process the core starts (a Skprocess child, a pool worker, a Share coordinator) runs one
of the core's entry functions, decorated with `@process_entry`: when the entry returns or
raises, the hooks registered here run, last registered first, before the transport ends
the process, or goes on with a process that outlives the entry (a backend whose
processes are threads or long-lived workers: on a thread they run and stay registered,
for the interpreter's own exit). A Share client registers one to send the
writes it still batches. An ordinary interpreter exit runs them from `atexit`, before
the handlers registered earlier (a transport's, which deliver what the hooks sent).
"""

from __future__ import annotations

import atexit
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["at_process_exit", "run_exit_hooks", "process_entry", "owns_process", "end_process_now"]

Entry = TypeVar("Entry", bound=Callable[..., Any])

_hooks: list[Callable[[], None]] = []
_lock = threading.Lock()


def at_process_exit(hook: Callable[[], None]) -> None:
    """Run `hook()` once before this process exits. Registering a hook again keeps its
    first place. Hooks are inherited by forked children: a hook that holds per-process
    state checks `os.getpid()` itself. A hook that raises is reported on stderr; the
    others still run."""
    with _lock:
        if hook not in _hooks:
            _hooks.append(hook)
        # Registered (again) last, so it runs before every atexit handler registered
        # until now: a transport that a hook still sends through is torn down after it.
        atexit.unregister(run_exit_hooks)
        atexit.register(run_exit_hooks)


def run_exit_hooks(forget: bool = True) -> None:
    """Run every registered hook, last registered first, and forget them; with `forget`
    False (an entry ended on a thread of a process that goes on) keep them for the
    process's own exit."""
    if not forget:
        with _lock:
            hooks = list(_hooks)
        for hook in reversed(hooks):
            _call(hook)
        return
    while True:
        with _lock:
            if not _hooks:
                return
            hook = _hooks.pop()
        _call(hook)


def _call(hook: Callable[[], None]) -> None:
    try:
        hook()
    except Exception:
        import traceback
        print("skprocessing: an exit hook failed:", file=sys.stderr)
        traceback.print_exc()


_entries = threading.local()
_owner = False  # an entry runs on this interpreter's main thread: the process is the entry's


def process_entry(entry: Entry) -> Entry:
    """Mark a function the core passes to `Transport.start()`: the exit hooks run after it
    (after the outermost one, when an entry calls another: a pool worker running a remote
    process's engine goes on after it)."""
    @functools.wraps(entry)
    def run(*args: Any, **kwargs: Any) -> Any:
        global _owner
        depth = getattr(_entries, "depth", 0)
        _entries.depth = depth + 1
        owner = threading.current_thread() is threading.main_thread()
        if depth == 0 and owner:
            _owner = True
        try:
            return entry(*args, **kwargs)
        finally:
            _entries.depth = depth
            if depth == 0:  # (on a backend's thread the process goes on: keep the hooks)
                run_exit_hooks(forget=owner)
    return run  # type: ignore[return-value]


def owns_process() -> bool:
    """True when an entry of the core runs on this interpreter's main thread, so the OS
    process is the entry's own: it may set signal handlers and end itself. False in the
    user's own program, and for an entry that a backend runs on a thread of a process it
    shares (threads standing in for processes): such an entry leaves the process alone."""
    return _owner


def end_process_now() -> bool:
    """End this process at once (as SIGKILL: no hooks, no flush) if an entry owns it; else
    return False and let the caller stop its own work (its backend has declared the
    "process" dead and closed its channels)."""
    if not _owner:
        return False
    os.kill(os.getpid(), signal.SIGKILL)
    return True  # (not reached)


def _reset_lock() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_reset_lock)
