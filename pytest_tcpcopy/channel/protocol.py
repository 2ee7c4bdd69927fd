"""The copier <-> intercept wire protocol, sans-IO: bytes in -> events out, events in -> bytes out.

Owns the frame layout (docs/protocol.md is its prose twin), the event types, and the per-connection
rules (HELLO first, matching versions, opposite roles, which frames each side may send). It never
touches a socket, so the shells (channel/client.py, intercept/server.py) stay thin and every rule is
testable in memory. Any bad input from the peer raises ``ProtocolError`` and nothing else; the shell
answers with an ERROR frame and closes that one connection.

Every frame is a 4-byte header ``!BBH`` (type, flags, body length) and a body of at most 65,535
bytes. The header and the HELLO body are frozen across protocol versions, so two peers of different
versions can always read each other's HELLO and say what is wrong.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from ..endpoint import Endpoint
from ..errors import TcpcopyError
from ..framing import FrameSplitter
from ..kernel.codecs import decode_records, record_bodies

DEFAULT_PORT = 36524
MAGIC = b"TCPC"
PROTOCOL_VERSION = 1
MAX_BODY = 0xFFFF
MAX_NAME = 255

_HEADER = struct.Struct("!BBH")
_HELLO = struct.Struct("!4sBBI")
_PAIR4 = struct.Struct("!B4sH4sH")
_PAIR6 = struct.Struct("!B16sH16sH")


class ProtocolError(TcpcopyError):
    """The peer sent bytes that break the protocol; the connection cannot continue."""


class FrameType(enum.IntEnum):
    HELLO = 1
    REGISTER = 2
    UNREGISTER = 3
    RECORDS = 4
    HEARTBEAT = 5
    ERROR = 6
    BYE = 7


class Role(enum.IntEnum):
    COPIER = 1
    INTERCEPT = 2


class Capability(enum.IntFlag):
    """What a side offers (intercept) or asks for (copier) in its HELLO."""

    NONE = 0
    RESPONSE_PAYLOAD = 1  # RECORDS carry the segment payload, not only the IP+TCP headers


@dataclass(frozen=True, slots=True)
class Hello:
    role: Role
    name: str
    capabilities: Capability = Capability.NONE
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Register:
    """Client 4-tuples (replayed client, target) whose SUT segments belong to the sender."""

    pairs: tuple[tuple[Endpoint, Endpoint], ...]


@dataclass(frozen=True, slots=True)
class Unregister:
    pairs: tuple[tuple[Endpoint, Endpoint], ...]


@dataclass(frozen=True, slots=True)
class Records:
    """SUT segments: each the raw IP+TCP headers, plus the payload when it was captured.

    The IP header's total length (IPv4) or payload length (IPv6) still gives the original size.
    """

    records: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


@dataclass(frozen=True, slots=True)
class Error:
    reason: str


@dataclass(frozen=True, slots=True)
class Bye:
    pass


Event = Hello | Register | Unregister | Records | Heartbeat | Error | Bye


def _frame(kind: FrameType, body: bytes = b"") -> bytes:
    return _HEADER.pack(kind, 0, len(body)) + body


def _encode_pairs(kind: FrameType, pairs: Iterable[tuple[Endpoint, Endpoint]]) -> bytes:
    frames: list[bytes] = []
    body = bytearray()
    for client, target in pairs:
        if len(client.addr) != len(target.addr) or len(client.addr) not in (4, 16):
            raise ValueError(f"client {client} and target {target} must both be IPv4 or both IPv6")
        if len(client.addr) == 4:
            entry = _PAIR4.pack(4, client.addr, client.port, target.addr, target.port)
        else:
            entry = _PAIR6.pack(6, client.addr, client.port, target.addr, target.port)
        if len(body) + len(entry) > MAX_BODY:
            frames.append(_frame(kind, bytes(body)))
            body.clear()
        body += entry
    if body:
        frames.append(_frame(kind, bytes(body)))
    return b"".join(frames)


def encode_records(records: Iterable[bytes]) -> bytes:
    """RECORDS frames for ``records``, split so that no frame body exceeds MAX_BODY."""
    return b"".join([_frame(FrameType.RECORDS, body) for body in record_bodies(records, MAX_BODY)])


def encode(event: Event) -> bytes:
    """The bytes of one event (several frames when a batch does not fit in one)."""
    if isinstance(event, Records):
        return encode_records(event.records)
    if isinstance(event, Register):
        return _encode_pairs(FrameType.REGISTER, event.pairs)
    if isinstance(event, Unregister):
        return _encode_pairs(FrameType.UNREGISTER, event.pairs)
    if isinstance(event, Hello):
        name = event.name.encode("utf-8")
        if len(name) > MAX_NAME:
            raise ValueError(f"HELLO name is {len(name)} bytes, at most {MAX_NAME} allowed")
        head = _HELLO.pack(MAGIC, event.version, event.role, int(event.capabilities))
        return _frame(FrameType.HELLO, head + name)
    if isinstance(event, Heartbeat):
        return _frame(FrameType.HEARTBEAT)
    if isinstance(event, Error):
        return _frame(FrameType.ERROR, event.reason.encode("utf-8")[:1024])
    if isinstance(event, Bye):
        return _frame(FrameType.BYE)
    raise TypeError(f"not a protocol event: {event!r}")


def _decode_hello(body: bytes) -> Hello:
    if len(body) < _HELLO.size or len(body) > _HELLO.size + MAX_NAME:
        raise ProtocolError(f"HELLO body of {len(body)} bytes; expected {_HELLO.size}..{_HELLO.size + MAX_NAME}")
    magic, version, role, caps = _HELLO.unpack_from(body)
    if magic != MAGIC:
        raise ProtocolError(f"bad magic {magic!r} in HELLO: the peer is not a pytest-tcpcopy channel")
    try:
        name = body[_HELLO.size :].decode("utf-8")
        return Hello(Role(role), name, Capability(caps), version)
    except ValueError as exc:
        raise ProtocolError(f"bad HELLO: {exc}") from None


def _decode_pairs(kind: FrameType, body: bytes) -> tuple[tuple[Endpoint, Endpoint], ...]:
    if not body:
        raise ProtocolError(f"empty {kind.name} frame")
    pairs = []
    pos, end = 0, len(body)
    while pos < end:
        family = body[pos]
        layout = _PAIR4 if family == 4 else _PAIR6 if family == 6 else None
        if layout is None:
            raise ProtocolError(f"{kind.name} entry at byte {pos} has address family {family}; expected 4 or 6")
        if pos + layout.size > end:
            raise ProtocolError(f"{kind.name} entry at byte {pos} is cut short")
        _, caddr, cport, taddr, tport = layout.unpack_from(body, pos)
        pairs.append((Endpoint(caddr, cport), Endpoint(taddr, tport)))
        pos += layout.size
    return tuple(pairs)


def _decode(kind: int, body: bytes) -> Event:
    if kind == FrameType.RECORDS:
        try:
            return Records(decode_records(body))
        except ValueError as exc:
            raise ProtocolError(str(exc)) from None
    if kind == FrameType.REGISTER:
        return Register(_decode_pairs(FrameType.REGISTER, body))
    if kind == FrameType.UNREGISTER:
        return Unregister(_decode_pairs(FrameType.UNREGISTER, body))
    if kind == FrameType.HELLO:
        return _decode_hello(body)
    if kind == FrameType.ERROR:
        return Error(body.decode("utf-8", errors="replace"))
    if kind in (FrameType.HEARTBEAT, FrameType.BYE):
        if body:
            raise ProtocolError(f"{FrameType(kind).name} frame must be empty, has {len(body)} bytes")
        return Heartbeat() if kind == FrameType.HEARTBEAT else Bye()
    raise ProtocolError(f"unknown frame type {kind}")


class FrameReader(FrameSplitter[Event]):
    """Turns a byte stream into events; any amount of bytes may be fed at a time.

    After a ProtocolError the stream is unusable and every later ``feed`` raises again.
    """

    def __init__(self) -> None:
        super().__init__(_HEADER, _KNOWN, MAX_BODY, _decode, ProtocolError, lambda kind: FrameType(kind).name)


_KNOWN = frozenset(FrameType)

# Which events each role may receive after the HELLO exchange.
_ACCEPTS: dict[Role, tuple[type, ...]] = {
    Role.INTERCEPT: (Register, Unregister, Heartbeat, Error, Bye),
    Role.COPIER: (Records, Heartbeat, Error, Bye),
}


class Channel:
    """One end of a copier <-> intercept connection: the HELLO exchange and the frame rules.

    ``hello()`` gives the bytes of our HELLO, to send first. ``receive(data)`` returns the peer's
    events; the peer's HELLO is consumed and kept in ``peer``. Raises ProtocolError when the peer
    breaks a rule: a frame before HELLO, a version or role mismatch, a frame its role may not send,
    anything after BYE.
    """

    def __init__(self, role: Role, name: str, capabilities: Capability = Capability.NONE) -> None:
        self.local = Hello(role, name, capabilities)
        self.peer: Hello | None = None
        self.closed = False
        self._reader = FrameReader()

    def hello(self) -> bytes:
        return encode(self.local)

    def receive(self, data: bytes) -> list[Event]:
        events = self._reader.feed(data)
        out: list[Event] = []
        for event in events:
            if self.closed:
                raise ProtocolError(f"{type(event).__name__} after BYE")
            if self.peer is None:
                self._check_hello(event)
                continue
            if isinstance(event, Hello):
                raise ProtocolError("a second HELLO on the same connection")
            if not isinstance(event, _ACCEPTS[self.local.role]):
                raise ProtocolError(
                    f"a {self.peer.role.name.lower()} may not send {type(event).__name__} frames"
                )
            if isinstance(event, Bye):
                self.closed = True
            out.append(event)
        return out

    def _check_hello(self, event: Event) -> None:
        if isinstance(event, Error):
            raise ProtocolError(f"peer refused the channel: {event.reason}")
        if not isinstance(event, Hello):
            raise ProtocolError(f"expected HELLO first, got {type(event).__name__}")
        if event.version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"protocol version mismatch: {event.name!r} speaks version {event.version}, "
                f"{self.local.name!r} speaks version {PROTOCOL_VERSION}; run the same pytest-tcpcopy "
                "release on both sides"
            )
        if event.role == self.local.role:
            raise ProtocolError(f"peer {event.name!r} is also a {event.role.name.lower()}")
        self.peer = event
