"""Keys, message signing, replay protection and the bind policy of the ZeroMQ transport.

Tasks are code, so a network transport must never hand on a message it cannot
authenticate. Every message carries an HMAC-SHA256 over all of its frames (see
`protocol.py` for what exactly is signed); the signature is checked with a constant-time
compare before anything else reads the message.

Key sources, first found wins; each is read through `normalise_key` (surrounding
whitespace, such as the newline `print(...) > skprocessing.key` writes, is not part of
the key), so the same key reaches every side whichever way it is given:
    1. `key=` given to `ZmqTransport` (bytes or str)
    2. `key_file=` (URL option `?key_file=/path`, the agent's `--key-file`): the file
    3. the environment variable `SKPROCESSING_KEY`
    4. in a child started by `ZmqTransport.start()`: the parent transport's key, handed
       over the launcher's private socket (so `get_transport(url)` in a child just works)

Without a key the transport works on loopback, `ipc://` and `inproc://` only, and signs
with a random key made once per process (`process_key()`): processes started by
`ZmqTransport.start` inherit it, any other local process (another user's included)
cannot talk to it. To join from a process not started that way, even on this host, give
both sides a key. Binding or connecting beyond loopback without a key is refused, and so
is binding beyond loopback with a weak key (`weak_key`: shorter than `MIN_KEY_BYTES`, or
a few characters repeated); on loopback any key is accepted.

CurveZMQ (`curve=True`, URL option `?curve=1`, agent `--curve`) adds encryption: the
server key pair is derived from the shared key, so nothing more has to be distributed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
import time
import zmq
import zmq.utils.z85

from ...errors import TransportError, TransportRefused

__all__ = ["KEY_ENV", "load_key", "normalise_key", "generate_key", "check_reach", "is_loopback", "Signer", "apply_curve",
           "SessionGuard", "curve_keys", "HOW_TO_MAKE_A_KEY", "inherit_key", "process_key",
           "weak_key", "MIN_KEY_BYTES"]

KEY_ENV = "SKPROCESSING_KEY"

HOW_TO_MAKE_A_KEY = (
    "make a key once and give it to the head and to every worker host:\n"
    "    python -c \"import secrets; print(secrets.token_hex(32))\" > skprocessing.key\n"
    "    chmod 600 skprocessing.key\n"
    "then give the same key to every side: on the head key=open('skprocessing.key').read()\n"
    "(or the URL option ?key_file=skprocessing.key), on a worker host\n"
    "    python -m skprocessing worker tcp://HEAD:PORT --key-file skprocessing.key\n"
    f"or set the environment variable {KEY_ENV} to the file's text everywhere\n"
    "(surrounding whitespace, such as the file's final newline, is ignored)")


def generate_key() -> bytes:
    """A fresh random key (64 hex characters, as bytes)."""
    return secrets.token_hex(32).encode()


def normalise_key(key: bytes | str) -> bytes:
    """The key as every source gives it: bytes (text as UTF-8), without surrounding
    whitespace. Every place a key is read goes through this one function."""
    data = key.encode() if isinstance(key, str) else bytes(key)
    return data.strip()


def load_key(key: bytes | str | None = None, key_file: str | None = None,
             environ: dict[str, str] | None = None) -> bytes | None:
    """The key from the first source that has one (see the module docstring), or None."""
    if key is not None and len(key):
        data = normalise_key(key)
        if not data:
            raise TransportError(f"the key given is only whitespace; {HOW_TO_MAKE_A_KEY}")
        return data
    if key_file:
        try:
            with open(os.path.expanduser(key_file), "rb") as f:
                data = normalise_key(f.read())
        except OSError as exc:
            raise TransportError(f"cannot read the key file {key_file}: {exc}") from exc
        if not data:
            raise TransportError(f"the key file {key_file} is empty; {HOW_TO_MAKE_A_KEY}")
        return data
    value = normalise_key((os.environ if environ is None else environ).get(KEY_ENV, ""))
    return value or _inherited_key


_inherited_key: bytes | None = None  # the parent's configured key (start() children)
_inherited_signing: bytes | None = None  # the parent's signing key, configured or not
_process_key: bytes | None = None


def process_key() -> bytes:
    """The key used when none is configured: the parent's (if started by
    `ZmqTransport.start`), else one made at random for this process."""
    global _process_key
    if _inherited_signing is not None:
        return _inherited_signing
    if _process_key is None:
        _process_key = generate_key()
    return _process_key


def inherit_key(configured: bytes | None, signing: bytes) -> None:
    """Set the keys a child falls back to (called first when a `start()` child unpickles)."""
    global _inherited_key, _inherited_signing
    _inherited_key, _inherited_signing = configured, signing


def is_loopback(address: str) -> bool:
    """True for `ipc://`, `inproc://` and `tcp://` addresses that stay on this host."""
    scheme, _, rest = address.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    host = rest.rsplit(":", 1)[0].strip("[]")
    if ";" in host:  # tcp://src;dst: the destination decides
        host = host.split(";", 1)[1]
    if host in ("*", ""):
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:  # a host name: loopback only if every address it names is
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


MIN_KEY_BYTES = 16
_MIN_DISTINCT = 8  # a key of fewer different bytes is a word or a pattern, not a secret


def weak_key(key: bytes) -> str | None:
    """Why `key` is too weak to guard a port other hosts reach, or None. (Length and
    variety only: a long phrase passes; the advice is a random key, see HOW_TO_MAKE_A_KEY.)"""
    if len(key) < MIN_KEY_BYTES:
        return f"it is {len(key)} bytes long, fewer than {MIN_KEY_BYTES}"
    if len(set(key)) < _MIN_DISTINCT:
        return f"it repeats {len(set(key))} different characters (fewer than {_MIN_DISTINCT})"
    return None


def check_reach(address: str, key: bytes | None, verb: str) -> None:
    """Refuse to `verb` ("bind"/"connect") beyond loopback without a key, and to bind
    there with a weak one (anyone who can guess it can run code in this process)."""
    weakness = weak_key(key) if key is not None and verb == "bind" else None
    if key is not None and weakness is None:
        return  # (a host name given with a key is not resolved here)
    if is_loopback(address):
        return
    if key is None:
        raise TransportRefused(
            f"refusing to {verb} {address} without a key: it is reachable from other hosts, "
            f"and messages carry code. To fix it, {HOW_TO_MAKE_A_KEY}")
    raise TransportRefused(
        f"refusing to bind {address} with this key: {weakness}, so other hosts could guess "
        f"it, and messages carry code. To fix it, {HOW_TO_MAKE_A_KEY}")


class Signer:
    """HMAC-SHA256 over a session prefix, the envelope and every payload frame."""

    def __init__(self, key: bytes):
        self._base = hmac.new(key, digestmod=hashlib.sha256)

    def sign(self, prefix: bytes, envelope: bytes, frames) -> bytes:
        mac = self._base.copy()
        mac.update(prefix)
        mac.update(envelope)
        for frame in frames:
            mac.update(frame)  # hashlib releases the GIL for large frames
        return mac.digest()

    def verify(self, signature, prefix: bytes, envelope, frames) -> bool:
        expected = self.sign(prefix, envelope, frames)
        return hmac.compare_digest(expected, bytes(signature))


class SessionGuard:
    """Refuses a HELLO seen before or too old: a captured handshake cannot be replayed.

    A HELLO carries its session id (fresh random bytes) and its wall-clock time. Sessions
    are remembered for `window` seconds; a HELLO older than that is refused, so the
    memory stays bounded. Clocks of the hosts must agree within `window`.
    """

    def __init__(self, window: float = 600.0):
        self.window = window
        self._seen: dict[bytes, float] = {}

    def admit(self, session: bytes, sent_at: float, now: float | None = None) -> str | None:
        """None when the session may start, else the reason it may not."""
        now = time.time() if now is None else now
        if abs(now - sent_at) > self.window:
            return f"stale handshake (timestamp off by {now - sent_at:.0f}s: a replay, or clock skew)"
        if session in self._seen:
            return "handshake replayed (session already seen)"
        if len(self._seen) > 4096:
            self._seen = {s: t for s, t in self._seen.items() if now - t <= self.window}
        self._seen[session] = now
        return None


def curve_keys(key: bytes) -> tuple[bytes, bytes]:
    """(server public, server secret), Z85, derived from the shared key."""
    if not zmq.has("curve"):
        raise TransportError("this libzmq was built without CurveZMQ; install pyzmq wheels "
                             "(bundled libzmq with libsodium) or drop the curve option")
    seed = hmac.new(key, b"skprocessing curve server key", hashlib.sha256).digest()
    secret = zmq.utils.z85.encode(seed)
    return zmq.curve_public(secret), secret


def apply_curve(sock: zmq.Socket, key: bytes, server: bool) -> None:
    """Turn on CurveZMQ on `sock` (before bind/connect)."""
    public, secret = curve_keys(key)
    if server:
        sock.curve_server = True
        sock.curve_secretkey = secret
        sock.curve_publickey = public
    else:
        # Clients use a throwaway key pair: who they are is proven by the HMAC key.
        client_public, client_secret = zmq.curve_keypair()
        sock.curve_serverkey = public
        sock.curve_publickey = client_public
        sock.curve_secretkey = client_secret
