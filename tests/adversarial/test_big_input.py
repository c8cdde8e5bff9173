"""Big inputs cost time and memory in proportion to their size: an Skprocess with a
300 MB attribute starts (the launcher once read the request by `data += chunk`, quadratic:
200 MB took 66 s, 500 MB never finished), and the launcher holds one copy of a request
while it reads it, not two."""

from __future__ import annotations

import hashlib
import socket
import threading
import tracemalloc

import pytest

from skprocessing import Skprocess
from skprocessing.transports._launcher import _recv_body

BIG = 300 << 20


class Digest(Skprocess):
    """Carries a big attribute to the child and reports what arrived there."""

    def __init__(self, blob: bytes):
        self.blob = blob
        self.process_config.runs = 1

    def __run__(self):
        pass

    def __result__(self):
        return len(self.blob), hashlib.sha256(self.blob).hexdigest()


@pytest.mark.timeout(150)
def test_a_300_mb_attribute_reaches_the_child_intact():
    blob = bytes(range(256)) * (BIG // 256)
    expected = (len(blob), hashlib.sha256(blob).hexdigest())
    process = Digest(blob)
    process.start()
    assert process.wait(timeout=140), "the process with a 300 MB attribute did not finish"
    assert process.result() == expected


@pytest.mark.timeout(60)
def test_the_request_body_is_read_into_one_buffer_of_its_size():
    size = 64 << 20
    ours, theirs = socket.socketpair()
    payload = bytes(range(256)) * (size // 256)

    def send_in_small_pieces():
        view = memoryview(payload)
        for at in range(0, size, 1 << 16):
            theirs.sendall(view[at:at + (1 << 16)])

    sender = threading.Thread(target=send_in_small_pieces, daemon=True)
    sender.start()
    tracemalloc.start()
    try:
        body = _recv_body(ours, size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        sender.join(30)
        ours.close()
        theirs.close()
    assert body.getbuffer() == payload
    # One buffer of the body's size (a growing copy peaks at twice the size).
    assert peak < size * 1.1, f"reading a {size >> 20} MB body peaked at {peak >> 20} MB"
