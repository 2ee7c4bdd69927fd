"""IPv4/IPv6 and TCP header decoding: IP packet bytes in, a ``Packet`` (or a counted skip) out.

Shared by the file readers and, later, live capture. Headers are read with precompiled
``struct.Struct``s; the payload is a slice, never padded: a snap-length cut shows as
``len(payload) < payload_len``.
"""

from __future__ import annotations

from struct import Struct

from .fragments import FragmentTable
from .linktypes import NOT_IP, LinkDecoder
from .packet import Packet
from .stats import CaptureStats

IPV4_HEADER = Struct("!BxHHHBB2x4s4s")  # version/IHL, total length, id, flags/offset, TTL, proto, src, dst
IPV6_HEADER = Struct("!4xHBB16s16s")  # payload length, next header, hop limit, src, dst
TCP_HEADER = Struct("!HHIIBBH")  # ports, seq, ack, data offset, flags, window
_U16 = Struct("!H")

TCP = 6
_IPV6_EXTENSIONS = frozenset((0, 43, 60))  # hop-by-hop, routing, destination options: (len+1)*8 bytes
_IPV6_AH = 51  # authentication header: (len+2)*4 bytes
_IPV6_FRAGMENT = 44

def decode_frame(
    decode_link: LinkDecoder,
    index: int,
    ts: float,
    frame: bytes,
    stats: CaptureStats,
    fragments: FragmentTable | None = None,
) -> Packet | None:
    """A link-layer frame's TCP segment, or None after counting why it was skipped (not IP, a link
    header that cannot be parsed, or whatever ``decode_ip_tcp`` skips)."""
    version, offset = decode_link(frame)
    if version <= 0:
        if version == NOT_IP:
            stats.non_tcp += 1
        else:
            stats.unparsable += 1
        return None
    return decode_ip_tcp(index, ts, frame[offset:], stats, fragments)


def decode_ip_tcp(
    index: int,
    ts: float,
    ip: bytes,
    stats: CaptureStats,
    fragments: FragmentTable | None = None,
) -> Packet | None:
    """Decode one IP packet; return its TCP segment, or None after counting why it was skipped.

    ``fragments`` reassembles IPv4 fragments; without it they are counted and skipped.
    """
    if not ip:
        stats.unparsable += 1
        return None
    version = ip[0] >> 4
    if version == 4:
        return _decode_ipv4(index, ts, ip, stats, fragments)
    if version == 6:
        return _decode_ipv6(index, ts, ip, stats)
    stats.non_tcp += 1
    return None


def _decode_ipv4(
    index: int, ts: float, ip: bytes, stats: CaptureStats, fragments: FragmentTable | None
) -> Packet | None:
    captured = len(ip)
    if captured < 20:
        stats.unparsable += 1
        return None
    vihl, total, ip_id, frag, ttl, proto, src, dst = IPV4_HEADER.unpack_from(ip)
    ihl = (vihl & 15) << 2
    if total == 0:
        total = captured  # segmentation offload on the capturing host: length left to the NIC
    if ihl < 20 or total < ihl or captured < ihl:
        stats.unparsable += 1
        return None
    if proto != TCP:
        stats.non_tcp += 1
        return None
    if frag & 0x3FFF:
        stats.fragments += 1
        if fragments is None:
            return None
        whole = fragments.add(index, ts, ip, ihl, total, frag, (src, dst, ip_id))
        if whole is None:
            return None
        stats.reassembled += 1
        index, ip = whole
        captured = total = len(ip)
    end = min(total, captured)
    return decode_tcp(index, ts, ip, ihl, end, total, src, dst, ip_id, ttl, stats)


def _decode_ipv6(index: int, ts: float, ip: bytes, stats: CaptureStats) -> Packet | None:
    captured = len(ip)
    if captured < 40:
        stats.unparsable += 1
        return None
    payload_length, next_header, hop_limit, src, dst = IPV6_HEADER.unpack_from(ip)
    total = 40 + payload_length if payload_length else captured  # 0: jumbogram or offload
    end = min(total, captured)
    offset = 40
    while next_header != TCP:
        if next_header in _IPV6_EXTENSIONS or next_header == _IPV6_AH:
            if offset + 2 > end:
                stats.unparsable += 1
                return None
            size = (ip[offset + 1] + 2) << 2 if next_header == _IPV6_AH else (ip[offset + 1] + 1) << 3
        elif next_header == _IPV6_FRAGMENT:
            if offset + 8 > end:
                stats.unparsable += 1
                return None
            if _U16.unpack_from(ip, offset + 2)[0] & 0xFFF9:  # nonzero offset or more-fragments
                if ip[offset] == TCP:
                    stats.fragments += 1
                else:
                    stats.non_tcp += 1
                return None
            size = 8  # an atomic fragment: the whole datagram is here
        else:
            stats.non_tcp += 1
            return None
        next_header = ip[offset]
        offset += size
    return decode_tcp(index, ts, ip, offset, end, total, src, dst, 0, hop_limit, stats)


def decode_tcp(
    index: int,
    ts: float,
    ip: bytes,
    offset: int,
    end: int,
    total: int,
    src: bytes,
    dst: bytes,
    ip_id: int,
    ttl: int,
    stats: CaptureStats,
) -> Packet | None:
    """Decode the TCP header at ``offset``; ``end`` is where the captured bytes stop, ``total``
    where the IP packet stops on the wire."""
    if end - offset < 20:
        stats.unparsable += 1
        return None
    sport, dport, seq, ack, data_offset, flags, window = TCP_HEADER.unpack_from(ip, offset)
    data_start = offset + ((data_offset >> 4) << 2)
    if data_start < offset + 20 or data_start > end:  # corrupt, or options cut by the snap length
        stats.unparsable += 1
        return None
    payload = ip[data_start:end]
    payload_len = total - data_start
    if len(payload) < payload_len:
        stats.truncated_packets += 1
    stats.tcp_packets += 1
    return Packet(
        index, ts, src, dst, sport, dport, seq, ack, flags, window,
        ip[offset + 20:data_start], payload, payload_len, ip_id, ttl,
    )  # fmt: skip
