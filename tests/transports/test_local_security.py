"""The local transport only lets this user's processes talk to its listeners."""

from __future__ import annotations

import os
import subprocess

import pytest

from skprocessing.transports import get_transport

pytestmark = pytest.mark.timeout(30)

NOBODY = 65534
# The stranger needs no packages; the system interpreter is one another user may run (the
# test's own may sit under a directory only root can enter).
SYSTEM_PYTHON = "/usr/bin/python3"

# Another user's process, written as an attacker would: raw sockets, no skprocessing.
STRANGER = """
import socket, struct, sys, time
path = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect("\\0" + path[1:] if path.startswith("@") else path)
print("connected", flush=True)
payload = b"not for you"
try:
    sock.sendall(struct.pack("<IQ", 1, len(payload)) + payload)
    time.sleep(1)
except (BrokenPipeError, ConnectionResetError):
    pass  # the listener already closed it: that is the point
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as another user")
@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason=f"no {SYSTEM_PYTHON} to run as another user")
def test_a_connection_from_another_user_is_closed_unread():
    transport = get_transport()
    listener = transport.listen()
    address = listener.address[len("local://"):]
    stranger = subprocess.Popen([SYSTEM_PYTHON, "-c", STRANGER, address], user=NOBODY,
                                group=NOBODY, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd="/")
    try:
        assert listener.accept(timeout=3) is None  # refused, never handed to the caller
        out, err = stranger.communicate(timeout=10)
        assert out.strip() == "connected", err  # it did get in at the socket level
        ours = transport.connect(listener.address, timeout=5)  # this user still gets in
        accepted = listener.accept(timeout=5)
        ours.send([b"hello"])
        assert accepted.recv(timeout=5) == [b"hello"]
    finally:
        stranger.kill()
        stranger.wait()
        listener.close()


def test_a_corrupt_header_closes_the_channel_instead_of_allocating_it():
    import struct

    from skprocessing import ChannelClosed
    a, b = get_transport().pipe()
    a._sock.sendall(struct.pack("<I", 0xFFFFFFFF))  # claims four billion frames
    with pytest.raises(ChannelClosed, match="corrupt"):
        b.recv(timeout=5)
