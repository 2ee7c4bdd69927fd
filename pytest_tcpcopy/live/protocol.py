"""The mirror agent -> test runner wire protocol, sans-IO: events in -> bytes out, bytes in -> events.

Owns the frame layout (docs/mirror.md is its prose twin), the event types and the receiver's rules:
HELLO first with a matching version, then PACKETS and STATS frames, BYE last. It never touches a
socket. Any bad input raises ``MirrorProtocolError`` and nothing else; the receiving shell logs the
reason, sends an ERROR frame and closes that one connection.

Every frame is a 6-byte header ``!BBI`` (type, flags, body length) and a body of at most
``MAX_BODY`` bytes. The header and the HELLO body's first 5 bytes (magic, version) are frozen
across versions, so peers of different releases can always say what is wrong.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from dataclasses import astuple, dataclass

from ..errors import TcpcopyError
from ..framing import FrameSplitter

DEFAULT_PORT = 36525
MAGIC = b"TCPM"
PROTOCOL_VERSION = 1
LINKTYPE_RAW = 101  # PACKETS records hold IP packets, no link header
MAX_BODY = 4 << 20
MAX_TEXT = 255

_HEADER = struct.Struct("!BBI")
_HELLO = struct.Struct("!4sBHIH")  # magic, version, link type, snap length, port count
_PORT = struct.Struct("!H")
_RECORD = struct.Struct("!qI")  # timestamp in ns since the epoch, captured length
_STATS = struct.Struct("!5Q")
HEADER_SIZE = _HEADER.size
RECORD_OVERHEAD = _RECORD.size


class MirrorProtocolError(TcpcopyError):
    """The peer sent bytes that break the mirror protocol; the connection cannot continue."""


class FrameType(enum.IntEnum):
    HELLO = 1
    PACKETS = 2
    STATS = 3
    BYE = 4
    ERROR = 5  # the only frame a runner sends to an agent


@dataclass(frozen=True, slots=True)
class Hello:
    """Who the agent is and what it captures: IP packets (``linktype``) cut to ``snaplen`` bytes."""

    name: str
    iface: str
    ports: tuple[int, ...]
    snaplen: int
    linktype: int = LINKTYPE_RAW
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Packets:
    """Captured IP packets as (timestamp in ns since the epoch, captured bytes), in capture order."""

    records: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class Stats:
    """The agent's counters since it started (all its connections together)."""

    captured: int  # IP packets taken from the interface
    kernel_dropped: int  # lost in the kernel: the capture socket's buffer was full
    buffer_dropped: int  # lost in the agent: its buffer was full, or a connection broke mid-frame
    sent: int  # packets written to runners
    connections: int  # connections made to runners


@dataclass(frozen=True, slots=True)
class Bye:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Error:
    reason: str


Event = Hello | Packets | Stats | Bye | Error


def _frame(kind: FrameType, body: bytes = b"") -> bytes:
    return _HEADER.pack(kind, 0, len(body)) + body


def _text(value: str, what: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > MAX_TEXT:
        raise ValueError(f"{what} is {len(raw)} bytes, at most {MAX_TEXT} allowed")
    return raw


def encode_packets(records: Iterable[tuple[int, bytes]], max_body: int = MAX_BODY) -> bytes:
    """PACKETS frames for ``records``, split so that no body exceeds ``max_body`` bytes."""
    frames: list[bytes] = []
    parts: list[bytes] = []
    size = 0
    pack = _RECORD.pack
    limit = min(max_body, MAX_BODY)
    for ts_ns, data in records:
        n = len(data)
        if not 0 < n <= limit - _RECORD.size:
            raise ValueError(f"a packet record must hold 1..{limit - _RECORD.size} bytes, got {n}")
        if size + _RECORD.size + n > limit:
            frames.append(_frame(FrameType.PACKETS, b"".join(parts)))
            parts.clear()
            size = 0
        parts.append(pack(ts_ns, n))
        parts.append(data)
        size += _RECORD.size + n
    if parts:
        frames.append(_frame(FrameType.PACKETS, b"".join(parts)))
    return b"".join(frames)


def encode(event: Event) -> bytes:
    """The bytes of one event (several frames when a PACKETS batch does not fit in one)."""
    if isinstance(event, Packets):
        return encode_packets(event.records)
    if isinstance(event, Stats):
        return _frame(FrameType.STATS, _STATS.pack(*astuple(event)))
    if isinstance(event, Hello):
        ports = b"".join(_PORT.pack(p) for p in event.ports)
        iface = _text(event.iface, "interface name")
        head = _HELLO.pack(MAGIC, event.version, event.linktype, event.snaplen, len(event.ports))
        body = head + ports + bytes([len(iface)]) + iface + _text(event.name, "agent name")
        return _frame(FrameType.HELLO, body)
    if isinstance(event, Bye):
        return _frame(FrameType.BYE, _text(event.reason, "BYE reason"))
    if isinstance(event, Error):
        return _frame(FrameType.ERROR, event.reason.encode("utf-8")[:1024])
    raise TypeError(f"not a mirror protocol event: {event!r}")


def _decode_hello(body: bytes) -> Hello:
    if len(body) < 5 or body[:4] != MAGIC:
        raise MirrorProtocolError(f"HELLO does not start with {MAGIC!r}: the peer is not a pytest-tcpcopy mirror agent")
    if body[4] != PROTOCOL_VERSION:
        raise MirrorProtocolError(
            f"mirror protocol version mismatch: the agent speaks version {body[4]}, this runner "
            f"version {PROTOCOL_VERSION}; run the same pytest-tcpcopy release on both sides"
        )
    if len(body) < _HELLO.size:
        raise MirrorProtocolError(f"HELLO body of {len(body)} bytes is shorter than its {_HELLO.size}-byte head")
    _, version, linktype, snaplen, nports = _HELLO.unpack_from(body)
    pos = _HELLO.size + 2 * nports
    if pos + 1 > len(body):
        raise MirrorProtocolError(f"HELLO announces {nports} ports but is cut short")
    ports = tuple(_PORT.unpack_from(body, _HELLO.size + 2 * i)[0] for i in range(nports))
    iface_len = body[pos]
    name_at = pos + 1 + iface_len
    if name_at > len(body) or len(body) - name_at > MAX_TEXT:
        raise MirrorProtocolError("HELLO interface or agent name is cut short or too long")
    if linktype != LINKTYPE_RAW:
        raise MirrorProtocolError(f"HELLO announces link type {linktype}; only {LINKTYPE_RAW} (raw IP) is defined")
    if not ports or 0 in ports:
        raise MirrorProtocolError(f"HELLO announces ports {list(ports)}; expected one or more of 1..65535")
    try:
        iface = body[pos + 1 : name_at].decode("utf-8")
        name = body[name_at:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MirrorProtocolError(f"HELLO text is not UTF-8: {exc}") from None
    return Hello(name, iface, ports, snaplen, linktype, version)


def _decode_packets(body: bytes) -> Packets:
    if not body:
        raise MirrorProtocolError("empty PACKETS frame")
    records = []
    pos, end = 0, len(body)
    unpack = _RECORD.unpack_from
    while pos < end:
        if pos + _RECORD.size > end:
            raise MirrorProtocolError(f"PACKETS record header at byte {pos} is cut short")
        ts_ns, n = unpack(body, pos)
        pos += _RECORD.size
        if n == 0 or pos + n > end:
            raise MirrorProtocolError(
                f"PACKETS record at byte {pos - _RECORD.size} claims {n} bytes; {end - pos} remain"
            )
        records.append((ts_ns, body[pos : pos + n]))
        pos += n
    return Packets(tuple(records))


def _decode(kind: int, body: bytes) -> Event:
    if kind == FrameType.PACKETS:
        return _decode_packets(body)
    if kind == FrameType.STATS:
        if len(body) != _STATS.size:
            raise MirrorProtocolError(f"STATS body of {len(body)} bytes; expected {_STATS.size}")
        return Stats(*_STATS.unpack(body))
    if kind == FrameType.HELLO:
        return _decode_hello(body)
    text = body.decode("utf-8", errors="replace")
    if kind == FrameType.BYE:
        if len(body) > MAX_TEXT:
            raise MirrorProtocolError(f"BYE reason of {len(body)} bytes; at most {MAX_TEXT} allowed")
        return Bye(text)
    return Error(text)


class FrameReader(FrameSplitter[Event]):
    """Turns a byte stream into events, fed any amount at a time.

    After a MirrorProtocolError the stream is unusable and every later ``feed`` raises again.
    """

    def __init__(self) -> None:
        super().__init__(_HEADER, _KNOWN, MAX_BODY, _decode, MirrorProtocolError, lambda kind: FrameType(kind).name)


_KNOWN = frozenset(FrameType)


class MirrorReceiver:
    """The runner's end of one agent connection: checks the frame order, keeps the HELLO.

    ``receive(data)`` returns the agent's PACKETS, STATS and BYE events; the HELLO is consumed and
    kept in ``hello``. Raises MirrorProtocolError on a frame before HELLO, a second HELLO, an ERROR
    frame (agents never send one), or anything after BYE; after that every call raises again.
    """

    def __init__(self) -> None:
        self.hello: Hello | None = None
        self.bye: Bye | None = None
        self._reader = FrameReader()
        self._broken: MirrorProtocolError | None = None

    def receive(self, data: bytes) -> list[Event]:
        if self._broken is not None:
            raise self._broken
        try:
            return self._check(self._reader.feed(data))
        except MirrorProtocolError as exc:
            self._broken = exc
            raise

    def _check(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            if self.bye is not None:
                raise MirrorProtocolError(f"{type(event).__name__} after BYE")
            if isinstance(event, Hello):
                if self.hello is not None:
                    raise MirrorProtocolError("a second HELLO on the same connection")
                self.hello = event
                continue
            if self.hello is None:
                raise MirrorProtocolError(f"expected HELLO first, got {type(event).__name__}")
            if isinstance(event, Error):
                raise MirrorProtocolError("an agent may not send ERROR frames")
            if isinstance(event, Bye):
                self.bye = event
            out.append(event)
        return out
