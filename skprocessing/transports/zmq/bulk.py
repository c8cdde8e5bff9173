"""The same-host bulk path: large payload frames through private shared-memory files.

Why: on one host, HMAC-SHA256 costs about 2 ms per 4 MiB to sign and as much again to
verify (~2 GB/s with SHA-NI), on top of two socket copies through ZeroMQ's I/O threads.
With two workers and the head sharing two cores that is more CPU than the local
transport spends in all, so no scheduling of it (threads, overlap) reaches the local
transport's speed. When both ends of a session see the same filesystem under the same
user, a large frame is instead written to a file in a private directory of the
receiver, and only its name (signed, numbered) travels through the socket.

Who may use it, and why it is safe:
- The receiving process makes one directory (on its first ROUTER session), mode 0700,
  under /dev/shm, with a file `id` holding 16 random bytes. Every WELCOME it sends
  (signed, like every message) offers `{"d": path, "n": those bytes}`.
- The DEALER takes the offer only if it can open that directory without following a
  link, the directory belongs to its own user with no access for anyone else, and its
  `id` holds the same bytes: then it is the same directory on the same host and the
  peer is a process of the same user. Otherwise (another host, another user, another
  mount namespace) nothing changes: every frame goes through the socket, signed.
- A DATA message then carries, for each large frame, a frame with the file's name and
  `extra["b"] = [[index, size, reuse], ...]`, all covered by the message's HMAC and
  sequence number, so a reference cannot be forged or replayed. Only the owner can
  create, change or replace a file in the directory: the content is as private, and
  as trustworthy, as the local transport's Unix socket between processes of one user
  (which carries no MAC either; its peers are checked by user id the same way).
- The receiver's reactor opens the name (a strict pattern, starting with the sender's
  session id the receiver chose, so a session can name only its own files) in its
  directory without following links, checks it is a regular file of its own user, mode
  0600, of the signed size; the thread that receives the message opens it again, checks
  it is the same file, and reads it (an unread message holds no descriptor). Then the file is
  unlinked, or, when the sender marked it `reuse`, renamed to `<name>.free`: the sender
  renames it back and overwrites it for a later frame, so a steady stream of results
  allocates, zeroes and frees no shared memory (on a 2-core VM that was a third of
  the receiver's time). A sender keeps at most `_KEEP` such files; the receiver removes
  a sender's files when its session ends, and the directory at exit. A killed process
  runs no exit handler: the next process of the user that makes a directory removes
  those of processes (in its pid namespace) that no longer exist.

Only DEALER -> ROUTER (worker -> head: results), the direction that carries the bulk
of a pool's bytes. `SKPROCESSING_ZMQ_SHM=0` turns the path off.
"""

from __future__ import annotations

import hmac
import mmap
import os
import re
import stat
import threading
from typing import Any

from .private_dirs import private_dir

__all__ = ["BULK_MIN", "BulkDir", "BulkFile", "BulkFrames", "BulkWriter", "BulkError", "shared_dir",
           "sender_prefix", "forget_sender", "enabled", "resolve"]

BULK_MIN = 1 << 20  # smaller frames cost less through the socket than as a file
_READ_MAX = 1 << 28  # larger files are mapped rather than read into memory
_KEEP = 8  # files a sender keeps for reuse (about its credits plus what is being read)
_ENV = "SKPROCESSING_ZMQ_SHM"
_NAME = re.compile(rb"[0-9a-f]{32}\Z")
_FREE = ".free"
_ID = "id"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_REUSE_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class BulkError(Exception):
    """A bulk reference that cannot be honoured (the channel then closes: data was lost)."""


def enabled() -> bool:
    return os.environ.get(_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


# -- receiving side (the ROUTER) ----------------------------------------------------------

class BulkDir:
    """The receiving side's private directory: one per process (see `shared_dir`)."""

    def __init__(self) -> None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self.path = private_dir("bulk", base)  # 0700; removed at exit, swept if its maker died
        self.nonce = os.urandom(16)
        fd = os.open(os.path.join(self.path, _ID), _CREATE_FLAGS, 0o600)
        with open(fd, "wb") as f:
            f.write(self.nonce)

    def offer(self) -> dict[str, Any]:
        return {"d": self.path, "n": self.nonce}

    def take(self, name: Any, size: Any, reuse: Any, sender: str) -> BulkFile:
        """File `name` of `sender` (its session's prefix), checked and open, for
        `BulkFile.read` (reactor thread)."""
        name = bytes(name)
        if (not _NAME.match(name) or not name.startswith(sender.encode())
                or type(size) is not int or size <= 0):
            raise BulkError("malformed bulk reference")
        path = os.path.join(self.path, name.decode())
        fd, identity = _open_checked(path, size)
        os.close(fd)  # reopened by the reader: unread messages must not hold descriptors
        return BulkFile(identity, size, path, bool(reuse))

    def forget(self, sender: str) -> None:
        """Remove what is left of a sender whose session ended (files it kept for reuse,
        files of messages that will never be read). Files of messages already delivered
        stay until they are read (`_unread`)."""
        try:
            with os.scandir(self.path) as entries:
                for entry in entries:
                    if entry.name.startswith(sender) and entry.path not in _unread:
                        _unlink(entry.path)
        except OSError:
            pass


_shared: tuple[int, BulkDir] | None = None  # (pid, directory): a forked child makes its own
_shared_lock = threading.Lock()


def shared_dir() -> BulkDir | None:
    """This process's directory (made on first use; again if it was removed), or None
    when the path is off or /dev/shm (or the temp dir) is not writable."""
    global _shared
    if not enabled():
        return None
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid() or not os.path.isdir(_shared[1].path):
            try:
                _shared = (os.getpid(), BulkDir())
            except OSError:
                return None
        return _shared[1]


def forget_sender(sender: str) -> None:
    """Remove the files a sender left in this process's directory (its session ended)."""
    shared = _shared
    if shared is not None and shared[0] == os.getpid():
        shared[1].forget(sender)


def sender_prefix(session: bytes) -> str:
    """The file name prefix of a sender: the session id the receiver chose for it (random,
    not the peer's routing id), so each session's files are known and no peer can name
    another's."""
    return session[:8].hex()


def _open_checked(path: str, size: int, identity: tuple[int, int] | None = None
                  ) -> tuple[int, tuple[int, int]]:
    """(an open descriptor, (st_dev, st_ino)) for a regular 0600 file of this user of
    `size` bytes, not a link (nor a FIFO: O_NONBLOCK), and the very file seen before when
    `identity` is given. Anything else is removed and raises BulkError."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        raise BulkError(f"bulk file missing ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid()
                or info.st_mode & 0o077 or info.st_size != size
                or (identity is not None and (info.st_dev, info.st_ino) != identity)):
            raise BulkError("bulk file of the wrong owner, mode, size or identity")
    except BaseException:
        os.close(fd)
        _unlink(path)
        raise
    return fd, (info.st_dev, info.st_ino)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


_unread: set[str] = set()  # files of delivered messages not read yet: kept by `forget`


class BulkFile:
    """A received bulk frame not read yet. The reactor only checks the file; the thread
    that receives the message reads it (`resolve`), so the copy, the costly part, runs
    outside the reactor and in parallel with it."""

    __slots__ = ("identity", "size", "path", "reuse", "done")

    def __init__(self, identity: tuple[int, int], size: int, path: str, reuse: bool):
        self.identity, self.size, self.path, self.reuse = identity, size, path, reuse
        self.done = False
        _unread.add(path)

    def read(self) -> bytes | memoryview:
        """The content: `bytes`, or a read-only mapping for a frame too large to copy."""
        self.done = True
        _unread.discard(self.path)
        fd, _ = _open_checked(self.path, self.size, self.identity)
        try:
            if self.size > _READ_MAX:
                self.reuse = False  # the mapping keeps using the file's pages
                return memoryview(mmap.mmap(fd, self.size, mmap.MAP_SHARED, mmap.PROT_READ))
            # Read into a buffer, then make bytes of it (what a deserializer keeps as is).
            # One copy more than os.read, yet measured faster in a pool's head: fewer of
            # its large allocations come back as fresh pages (a page fault each 4 KiB).
            buffer = bytearray(self.size)
            if os.readv(fd, [buffer]) != self.size:
                raise OSError(f"bulk file shorter than announced ({self.size} bytes)")
            return bytes(buffer)
        finally:
            os.close(fd)
            self._release()

    def _release(self) -> None:
        if self.reuse:
            try:
                os.rename(self.path, self.path + _FREE)  # the sender may overwrite it now
                return
            except OSError:
                pass
        _unlink(self.path)

    def __del__(self) -> None:
        if not self.done:  # a message nobody received
            self.done = True
            _unread.discard(self.path)
            _unlink(self.path)


class BulkFrames(list):
    """The frames of a message with bulk frames still to read (see `resolve`)."""


def resolve(frames: BulkFrames) -> list:
    """`frames` with every `BulkFile` read (in the receiving thread)."""
    return [f.read() if type(f) is BulkFile else f for f in frames]


# -- sending side (the DEALER) ------------------------------------------------------------

class BulkWriter:
    """The sending side: writes large frames into the peer's directory."""

    def __init__(self, fd: int, prefix: str):
        self._fd = fd
        self._prefix = prefix
        self._count = 0
        self._kept: list[str] = []  # names this writer may reuse once the peer frees them
        self._lock = threading.Lock()

    @classmethod
    def accept(cls, offer: Any, session: bytes) -> BulkWriter | None:
        """A writer when `offer` names a directory this process shares with the peer."""
        if not enabled() or not isinstance(offer, dict):
            return None
        path, nonce = offer.get("d"), offer.get("n")
        if not isinstance(path, str) or not isinstance(nonce, bytes) or len(nonce) != 16:
            return None
        try:
            fd = os.open(path, _DIR_FLAGS)
        except OSError:
            return None  # another host, or another mount namespace
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077:
                idfd = os.open(_ID, _READ_FLAGS, dir_fd=fd)
                try:
                    seen = os.read(idfd, 64)
                finally:
                    os.close(idfd)
                if hmac.compare_digest(seen, nonce):
                    return cls(fd, sender_prefix(session))
        except OSError:
            pass
        os.close(fd)
        return None

    def put(self, frame: Any) -> tuple[str, bool] | None:
        """Write `frame` to a file: (its name, whether the peer should keep it for reuse),
        or None (send the frame inline then)."""
        with self._lock:
            fd, name, reuse = self._claim()
        if fd is None:
            return None  # the directory is gone (the peer closed): the socket decides
        try:
            view = memoryview(frame).cast("B")
            done = 0
            while done < len(view):
                done += os.pwrite(fd, view[done:], done)
            os.ftruncate(fd, len(view))  # a reused file may have been larger
            return name, reuse
        except OSError:
            self.discard([name])
            return None
        finally:
            os.close(fd)

    def _claim(self) -> tuple[int | None, str, bool]:
        for name in list(self._kept):  # a file the peer has finished reading: overwrite it
            try:
                os.rename(name + _FREE, name, src_dir_fd=self._fd, dst_dir_fd=self._fd)
            except OSError:
                if not _exists_at(name, self._fd):  # removed, not being read: forget it
                    self._kept.remove(name)
                continue
            try:
                return os.open(name, _REUSE_FLAGS, dir_fd=self._fd), name, True
            except OSError:
                self._kept.remove(name)
                return None, name, False
        self._count += 1
        name = f"{self._prefix}{self._count:016x}"
        reuse = len(self._kept) < _KEEP
        try:
            fd = os.open(name, _CREATE_FLAGS, 0o600, dir_fd=self._fd)
        except OSError:
            return None, name, False
        if reuse:
            self._kept.append(name)
        return fd, name, reuse

    def discard(self, names: list[str]) -> None:
        """Remove files written for a message that was not sent."""
        with self._lock:
            for name in names:
                if name in self._kept:
                    self._kept.remove(name)
                _unlink_at(name, self._fd)

    def close(self) -> None:
        """Remove the files kept for reuse that the peer has freed (those still being
        read stay; they go with the peer's directory)."""
        with self._lock:
            kept, self._kept = self._kept, []
            for name in kept:
                _unlink_at(name + _FREE, self._fd)
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _unlink_at(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def _exists_at(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False
    except OSError:
        return True  # unknown: keep it
