"""The coordinator: the one process that owns a Share's objects.

    owner ──control channel──┐
                             ▼
    clients ──connect()──> Listener ─(accept thread)─> new sessions ─┐
                                                                     ▼
                     main loop: wait(all channels) → drain → apply → answer
                                            │
                                          Store (the authoritative objects)

Ordering. Each client's messages are applied in the order it sent them, and the loop is
the only thread touching the store, so every operation happens at one point in a single
order. Pipelined writes (no answer wanted) are applied as soon as they are read. An
answered request is read in one loop turn and answered in the next, after one more sweep
of every channel: anything any process finished sending before that request was sent is
in some channel's buffer by then, so it is applied first. That is what lets a process
that sends writes, then tells another process "done", have those writes seen by the
other's next read, with no acknowledgement per write. (A client waits for each answer
before sending more, so an answered request is always the last message in its channel.)

The coordinator ends when the owner says stop, or when the owner's control channel
closes (the owner is gone).
"""

from __future__ import annotations

import threading
import traceback
from typing import Any

from ...errors import ChannelClosed
from ...serializers.codec import Codec
from ...transports import get_transport
from ...transports.base import Channel, Frames, Listener, Transport
from ._handler import Handler, Session
from ._store import Store, register_store

__all__ = ["main", "READY", "FAILED", "STOP"]

READY, FAILED, STOP = b"R", b"F", b"S"  # control-channel messages (raw frames)
_IDLE = 1.0  # seconds between checks of the stop flag when nothing happens


def main(transport_spec: Any, codec_token: Any, control: Channel, address: str | None,
         share_key: str) -> None:
    """Entry point of the coordinator process (started with `Transport.start`)."""
    try:
        transport = get_transport(transport_spec)
        codec = Codec.from_token(codec_token)
        listener = transport.listen(address)
    except Exception:
        control.send([FAILED, traceback.format_exc().encode()])
        return
    store = Store()
    register_store(share_key, store)
    coordinator = Coordinator(transport, listener, Handler(store, codec), control)
    control.send([READY, listener.address.encode()])
    coordinator.run()


class Coordinator:
    """The main loop; see the module docstring."""

    def __init__(self, transport: Transport, listener: Listener, handler: Handler, control: Channel):
        self.transport = transport
        self.listener = listener
        self.handler = handler
        self.control = control
        self.sessions: dict[Channel, Session] = {}
        self.incoming: list[Channel] = []
        self.incoming_lock = threading.Lock()
        self.wake_r, self.wake_w = transport.pipe()
        self.stopping = False

    def run(self) -> None:
        accepter = threading.Thread(target=self._accept_loop, name="share-accept", daemon=True)
        accepter.start()
        held: list[tuple[Session, Frames]] = []
        try:
            while not self.stopping:
                channels = [self.control, self.wake_r, *self.sessions]
                ready = self.transport.wait(channels, 0.0 if held else _IDLE)
                fresh: list[tuple[Session, Frames]] = []
                for channel in ready:
                    self._serve(channel, fresh)
                for session, frames in held:
                    self._answer(session, frames)
                held = fresh
        finally:
            self.stopping = True
            self._shut()

    def _serve(self, channel: Channel, fresh: list[tuple[Session, Frames]]) -> None:
        if channel is self.control:
            self._on_control()
        elif channel is self.wake_r:
            self._adopt_incoming()
        else:
            self._drain(self.sessions[channel], fresh)

    def _drain(self, session: Session, fresh: list[tuple[Session, Frames]]) -> None:
        """Apply every pipelined message waiting on this channel; hold an answered one."""
        channel = session.channel
        handle = self.handler.handle
        try:
            while channel.poll(0):
                frames = channel.recv()
                if frames[0][0] & 0x80:  # REPLY: answered next turn, after one more sweep
                    fresh.append((session, frames))
                else:
                    handle(session, frames)
        except ChannelClosed:
            self._drop(session)  # a client gone mid-message: nothing half-applied

    def _answer(self, session: Session, frames: Frames) -> None:
        answer = self.handler.handle(session, frames)
        if answer is None or session.channel not in self.sessions:
            return
        try:
            session.channel.send(answer)
        except ChannelClosed:
            self._drop(session)

    def _drop(self, session: Session) -> None:
        self.sessions.pop(session.channel, None)
        session.channel.close()

    def _on_control(self) -> None:
        try:
            frames = self.control.recv(0)
        except ChannelClosed:
            frames = [STOP]  # the owner is gone
        if frames and bytes(frames[0]) == STOP:
            self.stopping = True

    # -- connections -------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        # Listener.accept blocks, so new clients are accepted here and handed to the loop.
        while not self.stopping:
            try:
                channel = self.listener.accept(timeout=_IDLE)
            except Exception:
                return  # the listener was closed: the coordinator is ending
            if channel is None:
                continue
            with self.incoming_lock:
                self.incoming.append(channel)
            try:
                self.wake_w.send([b""])
            except ChannelClosed:
                return

    def _adopt_incoming(self) -> None:
        while self.wake_r.poll(0):
            self.wake_r.recv()
        with self.incoming_lock:
            new, self.incoming = self.incoming, []
        for channel in new:
            self.sessions[channel] = Session(channel)

    def _shut(self) -> None:
        for channel in (self.listener, *self.sessions, self.wake_r, self.wake_w):
            try:
                channel.close()
            except Exception:
                pass
        try:
            self.control.send([STOP])  # tells a waiting owner the loop has ended
        except ChannelClosed:
            pass
