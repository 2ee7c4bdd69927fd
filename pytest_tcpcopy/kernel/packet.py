# cython: annotation_typing=True
"""The decoded TCP segment that capture readers yield and every later stage consumes.

A plain slotted class; compiled (packet.pxd), its fields are C values that the readers fill and
the flows, the engine and the translators read without an int object per field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import cython

# TCP flag bits.
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

_FIELDS = (
    "index", "ts", "src", "dst", "sport", "dport", "seq", "ack", "flags", "window", "options", "payload",
    "payload_len", "ip_id", "ttl",
)  # fmt: skip


class Packet:
    """One TCP segment from a capture (IPv4 or IPv6; IPv4 fragments already reassembled).

    index: 0-based record index in the capture file (first fragment's, when reassembled);
    ts: capture timestamp, seconds since the epoch; src, dst: 4 or 16 address bytes;
    flags: TCP flag bits (the constants above); window: the raw (unscaled) window field;
    options: raw TCP options; payload: captured payload, shorter than payload_len when cut by
    the snap length; payload_len: payload length on the wire, from the IP header;
    ip_id: IPv4 identification (0 for IPv6); ttl: IPv4 TTL or IPv6 hop limit.

    It keeps a NamedTuple's interface: positional or keyword construction, ``_fields``,
    ``_replace``, iteration, equality and hashing by value. Treat it as immutable; compiled, it is.
    """

    __slots__ = _FIELDS
    _fields = _FIELDS

    index: int
    ts: float
    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    options: bytes
    payload: bytes
    payload_len: int
    ip_id: int
    ttl: int

    def __init__(
        self, index, ts, src, dst, sport, dport, seq, ack, flags, window, options, payload, payload_len, ip_id, ttl,
    ) -> None:  # fmt: skip
        self.index, self.ts, self.src, self.dst, self.sport, self.dport = index, ts, src, dst, sport, dport
        self.seq, self.ack, self.flags, self.window, self.options = seq, ack, flags, window, options
        self.payload, self.payload_len, self.ip_id, self.ttl = payload, payload_len, ip_id, ttl

    @property
    def truncated(self) -> bool:
        """True when the snap length cut part of the payload away."""
        return len(self.payload) < self.payload_len

    @property
    def seq_len(self) -> int:
        """Sequence space the segment occupies: payload plus one each for SYN and FIN."""
        return self.payload_len + (self.flags & SYN and 1) + (self.flags & FIN and 1)

    def as_tuple(self) -> tuple:
        return (
            self.index, self.ts, self.src, self.dst, self.sport, self.dport, self.seq, self.ack, self.flags,
            self.window, self.options, self.payload, self.payload_len, self.ip_id, self.ttl,
        )  # fmt: skip

    def _replace(self, **changes: Any) -> Packet:
        fields = dict(zip(_FIELDS, self.as_tuple()))
        unknown = changes.keys() - fields.keys()
        if unknown:
            raise ValueError(f"Packet has no fields {sorted(unknown)}")
        fields.update(changes)
        return Packet(**fields)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.as_tuple())

    def __len__(self) -> int:
        return len(_FIELDS)

    def __getitem__(self, item: int | slice) -> Any:
        return self.as_tuple()[item]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packet):
            return NotImplemented
        return self.as_tuple() == other.as_tuple()

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Packet):
            return NotImplemented
        return self.as_tuple() != other.as_tuple()

    def __hash__(self) -> int:
        return hash(self.as_tuple())

    def __reduce__(self) -> tuple:
        return Packet, self.as_tuple()

    def __repr__(self) -> str:
        return "Packet(" + ", ".join(f"{name}={value!r}" for name, value in zip(_FIELDS, self.as_tuple())) + ")"


def new_packet(
    index: cython.longlong, ts: float, src: bytes, dst: bytes, sport: cython.longlong, dport: cython.longlong,
    seq: cython.longlong, ack: cython.longlong, flags: cython.longlong, window: cython.longlong, options: bytes,
    payload: bytes, payload_len: cython.longlong, ip_id: cython.longlong, ttl: cython.longlong,
) -> Packet:  # fmt: skip
    """``Packet(...)`` from C values, without an ``__init__`` call (for the decoders)."""
    pkt: Packet = Packet.__new__(Packet)
    pkt.index, pkt.ts, pkt.src, pkt.dst, pkt.sport, pkt.dport = index, ts, src, dst, sport, dport
    pkt.seq, pkt.ack, pkt.flags, pkt.window, pkt.options = seq, ack, flags, window, options
    pkt.payload, pkt.payload_len, pkt.ip_id, pkt.ttl = payload, payload_len, ip_id, ttl
    return pkt
