"""A hand-driven protocol peer on a raw pyzmq DEALER: it can forge, tamper and replay."""

from __future__ import annotations

import time

import zmq

from skprocessing.transports.zmq.protocol import (DATA, HELLO, NO_SESSION, PING, WELCOME,
                                                  new_session, pack_envelope, unpack_envelope)
from skprocessing.transports.zmq.security import Signer


class RawPeer:
    def __init__(self, address: str, key: bytes, routing_id: bytes | None = None):
        self.context = zmq.Context()
        self.sock = self.context.socket(zmq.DEALER)
        self.sock.linger = 0
        self.session = routing_id or new_session()
        self.sock.setsockopt(zmq.ROUTING_ID, self.session)  # (it proves nothing: see protocol.py)
        self.sock.connect(address)
        self.signer = Signer(key)
        self.prefix = self.session + NO_SESSION
        self.seq = 0

    def hello(self, timeout: float = 5.0) -> list[bytes]:
        """Do the handshake; returns the HELLO frames (for replaying later)."""
        envelope = pack_envelope(HELLO, 0, (), {"t": time.time(), "ticket": None})
        frames = [self.session + self.signer.sign(self.prefix, envelope, ()), envelope]
        self.sock.send_multipart(frames)
        assert self.sock.poll(timeout * 1000), "no WELCOME"
        signature, envelope, *_ = self.sock.recv_multipart()
        assert self.signer.verify(signature, self.prefix, envelope, [])
        kind, _, extra = unpack_envelope(envelope, [])
        assert kind == WELCOME
        self.prefix = self.session + extra["s"]
        self.welcome = extra
        self.send(self.message([], kind=PING))  # the answer that opens the session
        return frames

    def message(self, payload: list[bytes], kind: int = DATA, seq: int | None = None) -> list[bytes]:
        """A correctly signed message (not sent)."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        envelope = pack_envelope(kind, seq, payload, None)
        return [self.session + self.signer.sign(self.prefix, envelope, payload), envelope, *payload]

    def send(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def close(self) -> None:
        self.sock.close(0)
        self.context.term()
