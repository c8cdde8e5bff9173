"""The ZeroMQ transport: channels between hosts, signed, heartbeated, over pyzmq.

    transport.py   ZmqTransport (URLs and options), ZmqListener
    channel.py     ZmqChannel, PipeEnd, Inbox
    reactor.py     the one I/O thread per process that owns every socket
    protocol.py    message kinds, envelope, signing and sequence rules (the wire protocol)
    heartbeat.py   Liveness settings and the per-session Link
    security.py    keys, HMAC signer, replay guard, bind policy, CurveZMQ
    agent.py       `python -m skprocessing worker URL`: a worker host joining a head

Quick start (one host): `get_transport("tcp://127.0.0.1")`; across hosts, give both sides
the same key (`SKPROCESSING_KEY`, `key=` or `?key_file=`) and bind `tcp://0.0.0.0:PORT`.
"""

from .transport import ZmqListener, ZmqTransport

__all__ = ["ZmqTransport", "ZmqListener"]
