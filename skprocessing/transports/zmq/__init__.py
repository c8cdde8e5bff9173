"""The ZeroMQ transport: channels between hosts, signed, heartbeated, over pyzmq.

    transport.py   ZmqTransport: URLs and options, pipe/start/wait, what crosses hosts
    listener.py    ZmqListener (a ROUTER; one channel per peer), address helpers
    channel.py     ZmqChannel, PipeEnd (a pipe end that travels by address)
    inbox.py       Inbox: the reactor-to-user handoff, waited on without syscalls
    reactor.py     the one I/O thread per process that owns every socket
    inbound.py     the checks every received message passes, in order
    ports.py       a socket and its sessions; the socket options and why
    protocol.py    the wire protocol: message kinds, envelope, signing, sequence, heartbeats
    heartbeat.py   Liveness settings and the per-session Link
    security.py    keys, HMAC signer, replay guard, bind policy, CurveZMQ

The worker host (`python -m skprocessing worker URL`) is not here: it is the Pool's, and
uses only the transport interface (`core/pool/worker_host.py`).

Quick start (one host): `get_transport("tcp://127.0.0.1")`; across hosts, give both sides
the same key (`SKPROCESSING_KEY`, `key=` or `?key_file=`) and bind `tcp://0.0.0.0:PORT`.
"""

from .transport import ZmqListener, ZmqTransport

__all__ = ["ZmqTransport", "ZmqListener"]
