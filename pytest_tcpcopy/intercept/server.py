"""The intercept's event loop: the copier listener, the copier connections, and segment forwarding.

Every SUT segment from the queue goes to ``handle_segment``: looked up by its full 4-tuple, then
appended to its owner's pending batch, which is flushed as RECORDS frames after each queue read
pass (at most ``_READ_BUDGET`` segments, ~1 ms under load) and whenever it reaches ``_BATCH``.
Unowned SYN-ACKs and RSTs wait in the delay buffer; other unowned segments are counted and gone.

A copier that breaks the protocol gets an ERROR frame with the reason and is closed, with a log
line; the other copiers never notice. A copier that stops reading is closed once its backlog
passes ``_MAX_BACKLOG`` bytes, so one stuck copier cannot eat the intercept's memory.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import time
from dataclasses import asdict, dataclass
from typing import Protocol

from ..channel.protocol import (
    Bye,
    Capability,
    Channel,
    Error,
    Heartbeat,
    ProtocolError,
    Register,
    Role,
    Unregister,
    encode,
    encode_records,
)
from ..collector import rare_collections
from ..endpoint import Endpoint, open_listener
from ..errors import EnvironmentProblem
from ..kernel.codecs import segment_key
from .routing import RouteTable, pair_key

log = logging.getLogger(__name__)

_READ_BUDGET = 256  # queue segments per read pass before flushing and serving copiers
_BATCH = 256  # pending records per copier that force a flush inside a pass
_MAX_BACKLOG = 64 << 20  # unsent bytes after which a copier is considered stuck
_HEARTBEAT_EVERY = 1.0
_GC_YOUNG_THRESHOLD = 100_000  # see serve()
# Under load, pause briefly after a read pass so segments pile up in the queue: with nobody
# waiting on the netlink socket, the kernel need not wake us per segment (a cost the SUT's
# sending thread pays), and the next pass reads a bigger batch. Adds <= 0.3 ms latency.
_COALESCE_FROM = 16
_COALESCE_PAUSE = 0.0003


class SegmentSource(Protocol):
    """Where SUT segments come from: the NFQUEUE reader (queue.ResponseQueue) in production."""

    def fileno(self) -> int: ...

    def read(self, budget: int) -> int: ...


@dataclass  # no slots=True: server.pxd makes it a Cython dataclass, which takes none
class Counters:
    queued: int = 0  # segments handed to us by the queue
    forwarded: int = 0  # records sent (or buffered) to their owner
    parked: int = 0  # unowned SYN-ACK/RST put in the delay buffer
    unowned: int = 0  # dropped: no owner, not parkable (or the delay buffer was full)
    expired: int = 0  # dropped: parked and never claimed
    malformed: int = 0  # dropped: not an IPv4/IPv6 TCP segment we can read
    lost: int = 0  # records of copiers that were closed before they could be sent
    copiers: int = 0  # copier connections accepted
    refused: int = 0  # copier connections closed for breaking the protocol or not reading

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Copier:
    """One copier connection: its channel state, pending records and unsent bytes."""

    __slots__ = ("channel", "outbuf", "peer", "pending", "sock", "writing")

    def __init__(self, sock: socket.socket, peer: str, channel: Channel) -> None:
        self.sock = sock
        self.peer = peer
        self.channel = channel
        self.pending: list[bytes] = []
        self.outbuf = bytearray()
        self.writing = False

    def __repr__(self) -> str:
        if self.channel.peer is None:
            return f"copier at {self.peer}"
        return f"copier {self.channel.peer.name!r} at {self.peer}"


class InterceptServer:
    """Listens for copiers on ``listen`` and routes segments fed to ``handle_segment``."""

    def __init__(self, listen: Endpoint, *, name: str = "intercept", capture_payload: bool = False,
                 delay_limit: float = 2.0) -> None:
        self.capture_payload = capture_payload
        self.counters = Counters()
        self.routes: RouteTable[_Copier] = RouteTable(delay_limit=delay_limit)
        self._owners = self.routes.owners  # the same dict, read per segment
        self._capabilities = Capability.RESPONSE_PAYLOAD if capture_payload else Capability.NONE
        self._name = name
        self._copiers: set[_Copier] = set()
        self._dirty: set[_Copier] = set()
        self._stopping = False
        self._sel = selectors.DefaultSelector()
        try:
            self._listener = open_listener(listen, 64)
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot listen for copiers on {listen}: {exc.strerror or exc}; is another intercept using it? "
                "pick another with --listen"
            ) from None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    @property
    def address(self) -> Endpoint:
        host, port = self._listener.getsockname()[:2]
        return Endpoint.parse(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")

    def handle_segment(self, segment: bytes) -> None:
        """Route one SUT segment (raw IP bytes) to the copier that registered its 4-tuple."""
        counters = self.counters
        counters.queued += 1
        found = segment_key(segment)
        if found is None:
            counters.malformed += 1
            return
        key, tcp = found
        if not self.capture_payload:
            segment = segment[: tcp + ((segment[tcp + 12] >> 4) << 2)]
        owner = self._owners.get(key)
        if owner is None:
            if self.routes.park(key, segment, segment[tcp + 13], time.monotonic()):
                counters.parked += 1
            else:
                counters.unowned += 1
            return
        owner.pending.append(segment)
        counters.forwarded += 1
        if len(owner.pending) >= _BATCH:
            self._flush(owner)
        else:
            self._dirty.add(owner)

    def stop(self) -> None:
        """Ask ``serve`` to return; safe from a signal handler or another thread."""
        self._stopping = True
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    def serve(self, source: SegmentSource | None) -> None:
        """Run until ``stop()``: accept copiers, read their frames, pump the source, flush."""
        sel = self._sel
        sel.register(self._listener, selectors.EVENT_READ, self._accept)
        sel.register(self._wake_r, selectors.EVENT_READ, self._drain_wake)
        pumped = 0

        def pump() -> None:
            nonlocal pumped
            pumped = source.read(_READ_BUDGET)

        if source is not None:
            sel.register(source, selectors.EVENT_READ, pump)
        # Every queued segment makes a few short-lived objects: with the default young-generation
        # threshold (700) the collector would run every few hundred segments, traversing what the
        # start-up left and the live routes again and again (about 5 % of the intercept).
        with rare_collections(_GC_YOUNG_THRESHOLD):
            next_beat = time.monotonic() + _HEARTBEAT_EVERY
            while not self._stopping:
                if pumped >= _COALESCE_FROM:
                    time.sleep(_COALESCE_PAUSE)
                pumped = 0
                now = time.monotonic()
                expiry = self.routes.next_expiry()
                deadline = next_beat if expiry is None else min(next_beat, expiry)
                for key, mask in sel.select(max(0.0, deadline - now)):
                    target = key.data
                    if isinstance(target, _Copier):
                        if mask & selectors.EVENT_WRITE:
                            self._write(target)
                        if mask & selectors.EVENT_READ:
                            self._read(target)
                    else:
                        target()
                self._flush_dirty()
                now = time.monotonic()
                self.counters.expired += self.routes.expire(now)
                if now >= next_beat:
                    beat = encode(Heartbeat())
                    for copier in list(self._copiers):
                        self._send(copier, beat)
                    next_beat = now + _HEARTBEAT_EVERY

    def close(self) -> None:
        """Say BYE to every copier and release the sockets."""
        self._flush_dirty()
        bye = encode(Bye())
        for copier in list(self._copiers):
            try:
                copier.sock.setblocking(True)
                copier.sock.settimeout(0.5)
                copier.sock.sendall(bytes(copier.outbuf) + bye)
            except OSError:
                pass
            self._drop(copier)
        self._sel.close()
        self._listener.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _drain_wake(self) -> None:
        try:
            os.read(self._wake_r, 64)
        except BlockingIOError:
            pass

    def _accept(self) -> None:
        while True:
            try:
                sock, addr = self._listener.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            host, port = addr[:2]
            copier = _Copier(sock, f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                             Channel(Role.INTERCEPT, self._name, self._capabilities))
            self._copiers.add(copier)
            self.counters.copiers += 1
            self._sel.register(sock, selectors.EVENT_READ, copier)
            self._send(copier, copier.channel.hello())
            log.info("%r connected", copier)

    def _read(self, copier: _Copier) -> None:
        if copier not in self._copiers:
            return
        try:
            data = copier.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("%r: connection lost: %s", copier, exc)
            self._drop(copier)
            return
        if not data:
            log.info("%r disconnected", copier)
            self._drop(copier)
            return
        try:
            events = copier.channel.receive(data)
        except ProtocolError as exc:
            self._refuse(copier, str(exc))
            return
        for event in events:
            if isinstance(event, Register):
                for client, target in event.pairs:
                    parked = self.routes.register(pair_key(client, target), copier)
                    if parked:
                        copier.pending.extend(parked)
                        self.counters.forwarded += len(parked)
                        self._dirty.add(copier)
            elif isinstance(event, Unregister):
                for client, target in event.pairs:
                    self.routes.unregister(pair_key(client, target), copier)
            elif isinstance(event, Bye):
                log.info("%r said BYE", copier)
                self._drop(copier)
                return
            elif isinstance(event, Error):
                log.warning("%r reported an error: %s", copier, event.reason)
                self._drop(copier)
                return

    def _refuse(self, copier: _Copier, reason: str) -> None:
        log.warning("%r broke the protocol, closing it: %s", copier, reason)
        self.counters.refused += 1
        try:
            copier.sock.send(encode(Error(reason)))
        except OSError:
            pass
        self._drop(copier)

    def _flush_dirty(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for copier in dirty:
            if copier.pending:
                self._flush(copier)

    def _flush(self, copier: _Copier) -> None:
        records, copier.pending = copier.pending, []
        self._send(copier, encode_records(records))

    def _send(self, copier: _Copier, data: bytes) -> None:
        if copier not in self._copiers:
            return
        if not copier.outbuf:
            try:
                sent = copier.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                log.warning("%r: send failed: %s", copier, exc)
                self._drop(copier)
                return
            data = data[sent:]
            if not data:
                return
        copier.outbuf += data
        if len(copier.outbuf) > _MAX_BACKLOG:
            self.counters.refused += 1
            log.warning("%r is not reading its records (%d bytes unsent); closing it", copier, len(copier.outbuf))
            self._drop(copier)
            return
        if not copier.writing:
            copier.writing = True
            self._sel.modify(copier.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, copier)

    def _write(self, copier: _Copier) -> None:
        if copier not in self._copiers:
            return
        try:
            sent = copier.sock.send(copier.outbuf)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("%r: send failed: %s", copier, exc)
            self._drop(copier)
            return
        del copier.outbuf[:sent]
        if not copier.outbuf:
            copier.writing = False
            self._sel.modify(copier.sock, selectors.EVENT_READ, copier)

    def _drop(self, copier: _Copier) -> None:
        if copier not in self._copiers:
            return
        self._copiers.discard(copier)
        self._dirty.discard(copier)
        self.counters.lost += len(copier.pending)
        self.routes.drop_owner(copier)
        self._sel.unregister(copier.sock)
        copier.sock.close()
