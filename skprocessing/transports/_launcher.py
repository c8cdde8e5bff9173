"""The launcher: a clean, single-threaded process that forks our children.

Why: `fork` from the user's process is fast but unsafe once it has threads (a pyzmq
context, a logging handler, a thread pool): a child can inherit a lock held by a thread
that does not exist in it. `spawn` is safe but pays a fresh interpreter and imports per
process. The launcher is made once per parent process and from then on forks on request:
children start at fork speed from a process that never has a second thread. Unlike
multiprocessing's forkserver it does not re-run the user's `__main__` in every child; the
serializer carries what the child needs.

How the launcher itself is made (`SKPROCESSING_LAUNCHER=auto|fork|spawn`, default auto):
- fork, when the parent has exactly one OS thread at that moment (counted in
  /proc/self/task, so C threads count too): the only state in which fork is safe, and
  the first child starts in milliseconds. See `_ForkedLauncher` for what it cleans up.
- spawn otherwise: a fresh interpreter that imports skprocessing and its default
  serializer once.

Protocol on the parent <-> launcher socket (the parent holds a lock around each request):

    parent -> launcher   header <u64 body_len, u32 n_arg_fds, u32 n_stdio_fds>
                         + SCM_RIGHTS fds [status_w, *arg_fds, *stdio_fds]
                         body: pickle of (sys_path | None, cwd, entry module), read by the launcher,
                         then pickle of (entry, args) with fds as persistent ids, read by the child
    launcher -> parent   <i64 pid>   (negative: -errno of a failed fork)
    launcher -> status_w <i32 exitcode> when it reaps the child, then closes status_w

The launcher kills (SIGKILL) every child still running when the parent's socket closes:
a parent that exits or crashes leaves no orphans. Children die with the launcher too
(PR_SET_PDEATHSIG on Linux).
"""

from __future__ import annotations

import atexit
import gc
import importlib
import io
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from typing import Any

from .._deadline import Deadline
from ..errors import TransportError
from ._wait import readable
from .base import ProcessHandle

_HEADER = struct.Struct("<QII")
_PID = struct.Struct("<q")
_STATUS = struct.Struct("<i")
_MAX_FDS = 250


# -- fd-carrying objects --------------------------------------------------------------------
class PassedByFd(ABC):
    """What travels to a launched child as a file descriptor (a socket, shared memory)."""

    @abstractmethod
    def _export_fd(self) -> tuple[int, Any]:
        """(the descriptor to pass, picklable state to rebuild with)."""

    @classmethod
    @abstractmethod
    def _import_fd(cls, fd: int, state: Any) -> PassedByFd:
        """Rebuild in the child from the passed descriptor and the state."""


class _FdPickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, fds: list[int]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.fds = fds

    def persistent_id(self, obj: Any) -> Any:
        if not isinstance(obj, PassedByFd):
            return None
        fd, state = obj._export_fd()
        self.fds.append(fd)
        return (type(obj), len(self.fds) - 1, state)


class _FdUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, fds: list[int]):
        super().__init__(file)
        self.fds = fds

    def persistent_load(self, pid: Any) -> Any:
        cls, index, state = pid
        return cls._import_fd(self.fds[index], state)


# -- parent side ----------------------------------------------------------------------------

class LaunchedProcess(ProcessHandle):
    """A child forked by the launcher. Its exit code arrives on a status pipe."""

    def __init__(self, pid: int, status_fd: int):
        self.pid = pid
        self._status_fd = status_fd
        self._exitcode: int | None = None
        self._lock = threading.Lock()

    def _collect(self, timeout: float | None) -> bool:
        # Another thread may be blocked in wait(); wait for its lock no longer than asked.
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            return self._exitcode is not None
        try:
            if self._exitcode is not None:
                return True
            if not readable([self._status_fd], timeout):
                return False
            data = os.read(self._status_fd, _STATUS.size)
            # A launcher that died without reporting killed its children with it.
            self._exitcode = _STATUS.unpack(data)[0] if len(data) == _STATUS.size else -signal.SIGKILL
            os.close(self._status_fd)
            return True
        finally:
            self._lock.release()

    def wait(self, timeout: float | None = None) -> int | None:
        self._collect(timeout)
        return self._exitcode

    def _signal(self, signum: int) -> None:
        if not self._collect(0):  # (reaped: the pid may belong to someone else now)
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def cancel(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def __del__(self):
        if self._exitcode is None:
            try:
                os.close(self._status_fd)
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"<LaunchedProcess pid={self.pid} exitcode={self._exitcode}>"


class Launcher:
    """The parent's handle on its launcher process; `start()` forks a child there."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        mode = os.environ.get(MODE_VAR, "auto")
        if mode not in ("auto", "fork", "spawn"):
            raise ValueError(f"{MODE_VAR} must be auto, fork or spawn, not {mode!r}")
        if mode == "fork" or (mode == "auto" and single_threaded()):
            self.mode, self._process = "fork", _ForkedLauncher(ours, theirs)
        else:
            self.mode, self._process = "spawn", _spawn_launcher(theirs)
        theirs.close()
        self._sock = ours
        self._lock = threading.Lock()
        self._sent_path: list[str] | None = None
        self.pid = os.getpid()

    def start(self, entry: Any, args: tuple) -> LaunchedProcess:
        fds: list[int] = []
        body = io.BytesIO()
        with self._lock:
            path = None if sys.path == self._sent_path else list(sys.path)
            try:
                pickle.dump((path, os.getcwd(), getattr(entry, "__module__", None)), body)
                _FdPickler(body, fds).dump((entry, args))
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                raise TransportError(f"cannot pass these arguments to a new process: {exc}") from exc
            stdio = [fd for fd in (1, 2) if _is_open(fd)]
            if len(fds) + len(stdio) + 1 > _MAX_FDS:
                raise TransportError(f"too many channels for one process ({len(fds)})")
            status_r, status_w = os.pipe()
            try:
                header = _HEADER.pack(body.getbuffer().nbytes, len(fds), len(stdio))
                socket.send_fds(self._sock, [header], [status_w, *fds, *stdio])
                self._sock.sendall(body.getbuffer())
                pid = _PID.unpack(_recv_exact(self._sock, _PID.size))[0]
            except OSError as exc:
                os.close(status_r)
                _forget_dead_launcher(self)
                raise TransportError(f"the launcher process is gone ({exc}); the next start "
                                     f"makes a new one") from exc
            finally:
                os.close(status_w)
            self._sent_path = list(sys.path)
        if pid < 0:
            os.close(status_r)
            raise TransportError(f"fork failed: {os.strerror(-pid)}")
        return LaunchedProcess(pid, status_r)

    def close(self, timeout: float = 5.0) -> None:
        """Close the socket: the launcher kills its remaining children and exits."""
        self._sock.close()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


MODE_VAR = "SKPROCESSING_LAUNCHER"


def single_threaded() -> bool:
    """True when this process has exactly one OS thread (C threads included), the only
    state in which a fork is safe."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False  # no /proc: we cannot know, so we do not fork


def _deaden_inherited_fds(keep: int) -> None:
    read_end, dead = os.pipe()
    os.close(read_end)  # writes to `dead` now fail with EPIPE, reads with EBADF
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # as the spawned launcher's stdin
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in (keep, dead, null):
            try:
                os.dup2(dead, fd)
            except OSError:
                pass  # the listing's own descriptor, already closed
    os.close(null)
    os.close(dead)


def _standard_streams() -> None:
    """sys.stdin/stdout/stderr on fds 0, 1 and 2, as in a fresh interpreter. The parent's
    may write elsewhere (pytest's capture writes to its own descriptor), and each child
    gets the parent's current fds 1 and 2 put there."""
    sys.stdin = sys.__stdin__ = open(0, closefd=False)
    sys.stdout = sys.__stdout__ = open(1, "w", closefd=False)
    sys.stderr = sys.__stderr__ = open(2, "w", closefd=False, buffering=1)


def _spawn_launcher(theirs: socket.socket) -> subprocess.Popen:
    """A launcher in a fresh interpreter: safe whatever threads this process has."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    code = "import sys; from skprocessing.transports._launcher import serve; serve(int(sys.argv[1]))"
    return subprocess.Popen([sys.executable, "-c", code, str(theirs.fileno())],
                            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env)


class _ForkedLauncher:
    """A launcher forked from this process while it is single-threaded: the first child
    starts in about a millisecond instead of after a fresh interpreter's start-up.

    The fork inherits the parent's objects and file descriptors. The launcher points every
    inherited descriptor but its socket at a dead pipe: the parent's sockets, listeners and
    files are released (a port the parent closes is free again), yet their numbers stay
    taken, so a stale object in a child (a module-level connection) fails with EPIPE/EBADF
    instead of writing into a channel that reused its number. It also freezes the garbage
    collector, so no inherited object is ever finalized, and drops the user's signal handlers.
    """

    def __init__(self, ours: socket.socket, theirs: socket.socket):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()  # or the launcher's children would print it a second time
            except (AttributeError, ValueError, OSError):
                pass
        # Ctrl-C is held back over the fork: Python runs at-fork hooks (logging's among
        # them) in the parent, and a KeyboardInterrupt raised inside one is printed and
        # dropped, so the program would go on as if Ctrl-C had not been pressed. Held, it
        # is raised here, once the fork is over.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        pid = -1
        try:
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    gc.freeze()
                    _deaden_inherited_fds(keep=theirs.fileno())
                    _standard_streams()
                    for signum in signal.valid_signals():
                        if callable(signal.getsignal(signum)):
                            signal.signal(signum, signal.SIG_DFL)
                    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's to handle
                    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                    serve(theirs.fileno())
                    code = 0
                except BaseException:
                    import traceback
                    traceback.print_exc()
                finally:
                    os._exit(code)
            self.pid = pid
            self.returncode: int | None = None
        finally:
            if pid != 0:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def wait(self, timeout: float | None = None) -> int:
        """Reap the launcher (like `Popen.wait`)."""
        deadline = Deadline(timeout)
        while self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                break
            if deadline.expired():
                raise subprocess.TimeoutExpired(f"launcher {self.pid}", timeout)
            time.sleep(0.005)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is not None:
            return  # reaped: the pid may belong to someone else now
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _recv_into(sock: socket.socket, view: memoryview) -> None:
    """Fill `view` from the socket: each byte is written once, where it belongs."""
    got = 0
    while got < len(view):
        count = sock.recv_into(view[got:])
        if not count:
            raise ConnectionError("launcher closed its socket")
        got += count


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray(size)
    _recv_into(sock, memoryview(data))
    return bytes(data)


def _recv_body(sock: socket.socket, size: int) -> io.BytesIO:
    """A request body of `size` bytes, read straight into the buffer the child unpickles
    from: linear in the size and one allocation of it (a 500 MB attribute is one 500 MB
    buffer, not a growing string copied at every chunk)."""
    body = io.BytesIO()
    if size:
        body.seek(size - 1)
        body.write(b"\0")  # sizes BytesIO's own buffer once
        body.seek(0)
        with body.getbuffer() as view:
            _recv_into(sock, view)
    return body


_launcher: Launcher | None = None
_launcher_lock = threading.Lock()


def get_launcher() -> Launcher:
    """This process's launcher, started on first use (and again after a fork)."""
    global _launcher
    with _launcher_lock:
        if _launcher is None or _launcher.pid != os.getpid():
            _launcher = Launcher()
        return _launcher


def _forget_dead_launcher(dead: Launcher) -> None:
    global _launcher
    with _launcher_lock:
        if _launcher is dead:
            _launcher = None
    dead._sock.close()
    try:
        dead._process.wait(0)
    except subprocess.TimeoutExpired:
        dead._process.kill()


def _close_launcher() -> None:
    if _launcher is not None and _launcher.pid == os.getpid():
        _launcher.close()


def _forget_launcher_in_child() -> None:
    # A forked copy of this process must not talk on its parent's launcher socket, and the
    # lock may have been copied while held (the launcher itself is forked under it).
    global _launcher, _launcher_lock
    _launcher_lock = threading.Lock()
    if _launcher is not None:
        _launcher._sock.close()
        _launcher = None


atexit.register(_close_launcher)
os.register_at_fork(after_in_child=_forget_launcher_in_child)


# -- launcher side --------------------------------------------------------------------------

def serve(fd: int) -> None:
    """The launcher's main loop: fork on request, reap, report; exit when the parent goes."""
    sock = socket.socket(fileno=fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, int] = {}  # pid -> status_w
    _preload()
    while True:
        ready = readable([sock, wake_r], None)
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(children, block=False)
        if sock in ready:
            request = _read_request(sock)
            if request is None:
                break
            _fork_child(sock, request, children, (wake_r, wake_w))
    for pid in children:
        _kill(pid)
    _reap(children, block=True)


# What every child needs anyway, imported once here rather than once per child. Named, not
# imported: what the children run is the business of this launcher's users, the layers
# above (as multiprocessing's forkserver preload is its caller's).
PRELOAD = "skprocessing._warm:warm"


def _preload() -> None:
    module, _, function = PRELOAD.partition(":")
    getattr(importlib.import_module(module), function)()
    try:
        import ctypes
        globals()["_libc"] = ctypes.CDLL(None, use_errno=True)
    except OSError:
        pass


def _read_request(sock: socket.socket) -> tuple | None:
    try:
        msg, fds, _, _ = socket.recv_fds(sock, _HEADER.size, _MAX_FDS)
    except OSError:
        return None
    if not msg:
        return None
    msg += _recv_exact(sock, _HEADER.size - len(msg))
    size, n_args, n_stdio = _HEADER.unpack(msg)
    body = _recv_body(sock, size)
    path, cwd, entry_module = pickle.load(body)
    if path is not None:
        sys.path[:] = path  # later children inherit it
    return body, cwd, entry_module, fds[0], fds[1:1 + n_args], fds[1 + n_args:1 + n_args + n_stdio]


def _fork_child(sock: socket.socket, request: tuple, children: dict[int, int],
                wake: tuple[int, int]) -> None:
    body, cwd, entry_module, status_w, arg_fds, stdio_fds = request
    launcher_pid = os.getpid()
    try:
        pid = os.fork()
    except OSError as exc:
        pid = -exc.errno
    if pid == 0:
        _child_main(launcher_pid, sock, body, cwd, arg_fds, stdio_fds, [status_w, *children.values(), *wake])
    for fd in (*arg_fds, *stdio_fds):
        os.close(fd)
    if pid > 0:
        children[pid] = status_w
    else:
        os.close(status_w)
    sock.sendall(_PID.pack(pid))
    _warm(entry_module)


def _warm(module: str | None) -> None:
    """Import our own entry modules here once, so the next child starts with them loaded.
    Only skprocessing's: a user module could start threads at import, and the launcher must
    stay single-threaded."""
    if module and module.startswith("skprocessing.") and module not in sys.modules:
        try:
            importlib.import_module(module)
        except Exception:
            pass  # the child imports it itself and reports any error there


def _child_main(launcher_pid: int, sock: socket.socket, body: io.BytesIO, cwd: str, arg_fds: list[int], stdio_fds: list[int],
                close_fds: list[int]) -> None:
    code = 1
    try:
        sock.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in close_fds:
            os.close(fd)
        for target, fd in zip((1, 2), stdio_fds):
            os.dup2(fd, target)
            os.close(fd)
        libc = globals().get("_libc")
        if libc is not None:
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the launcher
            if os.getppid() != launcher_pid:
                os._exit(1)  # the launcher died before prctl took effect: no orphan
        if cwd != os.getcwd():
            os.chdir(cwd)
        entry, args = _FdUnpickler(body, arg_fds).load()
        entry(*args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        _run_atexit_handlers()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _run_atexit_handlers() -> None:
    # The child ends as an interpreter does, minus the teardown of the state it shares
    # with the launcher (hence os._exit after this): its atexit handlers run, so a backend
    # with an I/O thread (ZeroMQ's reactor) delivers what the entry sent before returning.
    # Handlers inherited from the launcher check os.getpid() and do nothing here.
    try:
        atexit._run_exitfuncs()  # (CPython's; what an ordinary exit calls)
    except BaseException:
        pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(children: dict[int, int], block: bool) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        status_w = children.pop(pid, None)
        if status_w is not None:
            try:
                os.write(status_w, _STATUS.pack(os.waitstatus_to_exitcode(status)))
            except OSError:
                pass
            os.close(status_w)
