"""The decoded TCP segment that capture readers yield and every later stage consumes.

A NamedTuple, not a dataclass: it is built once per captured packet on the ingest hot path, and
tuple construction is several times cheaper than a frozen dataclass's __init__.
"""

from __future__ import annotations

from typing import NamedTuple

# TCP flag bits.
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80


class Packet(NamedTuple):
    """One TCP segment from a capture (IPv4 or IPv6; IPv4 fragments already reassembled)."""

    index: int  # 0-based record index in the capture file (first fragment's, when reassembled)
    ts: float  # capture timestamp, seconds since the epoch
    src: bytes  # 4 or 16 address bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int  # TCP flag bits, see the constants above
    window: int  # the raw (unscaled) window field
    options: bytes  # raw TCP options
    payload: bytes  # captured payload; shorter than payload_len when cut by the snap length
    payload_len: int  # payload length on the wire, from the IP header
    ip_id: int  # IPv4 identification (0 for IPv6)
    ttl: int  # IPv4 TTL or IPv6 hop limit

    @property
    def truncated(self) -> bool:
        """True when the snap length cut part of the payload away."""
        return len(self.payload) < self.payload_len

    @property
    def seq_len(self) -> int:
        """Sequence space the segment occupies: payload plus one each for SYN and FIN."""
        return self.payload_len + (self.flags & SYN and 1) + (self.flags & FIN and 1)
