"""Process-tree and socket facts from /proc (no psutil): descendants, parents, listening
TCP sockets by owning process."""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable


def parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = parent(int(entry))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def _listen_table() -> dict[int, str]:
    """inode -> "host:port" of every listening TCP socket in this network namespace."""
    table = {}
    for path, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            hex_host, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_host)
            # /proc prints the address as 32-bit words in host byte order
            raw = b"".join(struct.pack("<I", struct.unpack(">I", raw[i:i + 4])[0])
                           for i in range(0, len(raw), 4))
            host = socket.inet_ntop(family, raw)
            if host.startswith("::ffff:"):
                host = host[7:]
            if host == "::1":
                host = "127.0.0.1(::1)"
            table[int(fields[9])] = f"{host}:{int(hex_port, 16)}"
    return table


def listening(pids: set[int]) -> list[tuple[int, str]]:
    """(pid, address) of every listening TCP socket the processes `pids` hold."""
    table = _listen_table()
    return [(pid, table[inode]) for pid in sorted(pids) for inode in _socket_inodes(pid)
            if inode in table]


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
