"""The local transport only lets this user's processes talk to its listeners."""

from __future__ import annotations

import os
import time

import pytest

from skprocessing.transports import get_transport

pytestmark = pytest.mark.timeout(30)

NOBODY = 65534


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user (setuid)")
def test_a_connection_from_another_user_is_closed_unread():
    transport = get_transport()
    listener = transport.listen()
    pid = os.fork()
    if pid == 0:  # the stranger: another uid, sending bytes that would be deserialized
        code = 1
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            channel = transport.connect(listener.address, timeout=5)
            channel.send([b"\x02cerial", b"not for you"])
            time.sleep(1)
            code = 0
        finally:
            os._exit(code)
    try:
        assert listener.accept(timeout=3) is None  # refused, not handed to the caller
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0  # it did connect and send
        ours = transport.connect(listener.address, timeout=5)  # this user still gets in
        accepted = listener.accept(timeout=5)
        ours.send([b"hello"])
        assert accepted.recv(timeout=5) == [b"hello"]
    finally:
        listener.close()
