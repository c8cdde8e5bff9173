"""Unauthenticated peers, by hand: a frame flood from another process, and a raw ZMTP
connection that announces a huge frame (what ZeroMQ would buffer before any check)."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import textwrap


def frame_flood(address: str, frames: int) -> subprocess.Popen:
    """Another process sends one message of `frames` empty frames to `address`, with no
    handshake, then prints "sent" and waits for stdin to close."""
    code = textwrap.dedent(f"""
        import sys, zmq
        sock = zmq.Context().socket(zmq.DEALER)
        sock.linger = 0
        sock.connect({address!r})
        sock.send_multipart([b""] * {frames})
        print("sent", flush=True)
        sys.stdin.read()
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def announce_huge_frame(address: str, size: int, send: int) -> socket.socket:
    """A TCP connection that greets as a ZMTP 3.0 DEALER, announces one frame of `size`
    bytes and sends the first `send` of them; returns the socket (still open)."""
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    greeting = b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") + b"\0" + bytes(31)
    sock.sendall(greeting)
    body = b"\x05READY" + _property(b"Socket-Type", b"DEALER") + _property(b"Identity", b"")
    sock.sendall(b"\x04" + bytes([len(body)]) + body)
    sock.sendall(b"\x02" + struct.pack(">Q", size) + bytes(send))
    return sock


def _property(name: bytes, value: bytes) -> bytes:
    return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True when the other end closes the connection within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
