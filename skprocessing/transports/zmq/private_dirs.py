"""Private directories (mode 0700) this process makes: ipc sockets, the bulk-file path.

Removed when their maker exits (atexit; a `start()` child calls `remove_private_dirs`
before its `os._exit`). A process killed with SIGKILL runs neither, so the next process
of the same user that makes a directory of the same kind removes those whose maker no
longer exists. Names carry the pid namespace and the pid: only in our own pid namespace
does a pid that does not exist mean a process that has ended.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import stat
import tempfile

__all__ = ["private_dir", "remove_dir", "remove_private_dirs"]

_made: dict[str, int] = {}      # directory -> the pid that made it
_swept: set[tuple[str, str]] = set()  # (base, kind) already swept by this process


def private_dir(kind: str, base: str | None = None) -> str:
    """A fresh directory only this user can enter, under `base` (default: the temp dir)."""
    base = base or tempfile.gettempdir()
    namespace = _pid_namespace()
    if namespace and (base, kind) not in _swept:
        _swept.add((base, kind))
        _sweep(base, kind, namespace)
    path = tempfile.mkdtemp(prefix=f"skp-{kind}-{namespace}-{os.getpid()}-", dir=base)
    _made[path] = os.getpid()
    return path


def remove_dir(directory: str) -> None:
    _made.pop(directory, None)
    shutil.rmtree(directory, ignore_errors=True)


def remove_private_dirs() -> None:
    """Remove what this process made (a forked child leaves its parent's alone)."""
    for directory, pid in list(_made.items()):
        if pid == os.getpid():
            remove_dir(directory)


atexit.register(remove_private_dirs)


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0  # unknown: names then carry 0 and are never swept


def _sweep(base: str, kind: str, namespace: int) -> None:
    pattern = re.compile(rf"skp-{re.escape(kind)}-{namespace}-(\d+)-\w+\Z")
    try:
        entries = list(os.scandir(base))
    except OSError:
        return
    for entry in entries:
        found = pattern.match(entry.name)
        if found is None or int(found[1]) == os.getpid():
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
                continue
            os.kill(int(found[1]), 0)
        except ProcessLookupError:
            shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue  # alive (perhaps another user's process under a reused pid)
