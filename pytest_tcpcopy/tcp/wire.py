"""Raw packet bytes in and out: parse the SUT's segments reported by the intercept, build the
IPv4 + TCP packets the copier sends.

Both directions are precompiled `struct` work on the hot path. `SegmentBuilder` folds the
per-session constant words (addresses, ports, TTL, protocol) into partial checksums once, so a
packet costs two `pack` calls and a little integer arithmetic; the payload's partial sum is
passed in by the caller, who caches it across retransmissions.
"""

from __future__ import annotations

import struct

from pytest_tcpcopy.capture.inplace import be32
from pytest_tcpcopy.endpoint import Endpoint
from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.tcp.checksum import sum_words
from pytest_tcpcopy.tcp.options import TIMESTAMP_OPTION_LEN, timestamp_of, timestamp_option

_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIHHHH")
_V4_TCP = struct.Struct("!2xH5xB2x4s4sHHIIBBH4x")  # the fields of a 20-byte IPv4 + TCP header
_V4_TCP_HEADERS = struct.Struct("!BBHHHBBH4s4sHHIIHHHH")  # both headers in one pack
_M = 0xFFFF
_PROTO_TCP = 6
_DF = 0x4000
TTL = 64
_TTL = TTL  # the module's own copy: a C constant when compiled
_TS_OPTION_LEN = TIMESTAMP_OPTION_LEN  # NOP, NOP, timestamp (a C constant when compiled)


class SutSegment:
    """One segment the SUT sent, as reported by the intercept.

    ``payload_len`` comes from the IP length field and is always the segment's real length;
    ``payload`` holds the bytes only when the intercept reported them (response-capture mode),
    else None; it is shorter than ``payload_len`` when the intercept truncated the packet.
    ``has_ts``, ``ts_val`` and ``ts_ecr``: the timestamp option, read once here (0 when absent).
    A plain slotted class: compiled, wire.pxd makes it a C struct, so the translator reads its
    fields without int objects.
    """

    __slots__ = (
        "ack", "dport", "dst", "flags", "has_ts", "options", "payload", "payload_len", "seq", "sport", "src",
        "ts_ecr", "ts_val", "window",
    )

    def __init__(
        self, src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
        window: int, options: bytes, payload_len: int, payload: bytes | None,
    ) -> None:
        self.src, self.dst, self.sport, self.dport = src, dst, sport, dport
        self.seq, self.ack, self.flags, self.window = seq, ack, flags, window
        self.options, self.payload_len, self.payload = options, payload_len, payload
        _set_timestamp(self, timestamp_of(options))

    def __repr__(self) -> str:
        return (
            f"SutSegment({self.src.hex()}:{self.sport} -> {self.dst.hex()}:{self.dport} seq={self.seq} "
            f"ack={self.ack} flags={self.flags:#x} window={self.window} options={self.options!r} "
            f"payload_len={self.payload_len}{'' if self.payload is None else ' with payload'})"
        )


def parse_sut_segment(buf: bytes | memoryview) -> SutSegment:
    """Decode an IPv4 or IPv6 (no extension headers) TCP packet as the intercept reports it.

    Raises UsageError when ``buf`` is not such a packet: the intercept feeds only TCP
    packets, so anything else is a wiring mistake on the caller's side.
    """
    if COMPILED and type(buf) is bytes:
        seg = parse_v4_read(buf)
    else:
        seg = parse_v4_unpacked(buf)
    return _parse_general(buf) if seg is None else seg


def parse_v4_unpacked(buf: bytes | memoryview) -> SutSegment | None:
    """The common case (IPv4 without IP options, TCP) by struct unpacking, the fastest way in
    pure Python; None for anything else."""
    if buf[:1] != b"\x45" or len(buf) < 40:
        return None
    total, proto, src, dst, sport, dport, seq, ack, off, flags, window = _V4_TCP.unpack_from(buf)
    start = 20 + (off >> 4) * 4
    if proto != _PROTO_TCP or start < 40 or len(buf) < start or total < start:
        return None
    options = bytes(buf[40:start])
    payload_len = total - start
    payload = bytes(buf[start:total]) if payload_len and len(buf) > start else None
    return SutSegment(src, dst, sport, dport, seq, ack, flags, window, options, payload_len, payload)


def parse_v4_read(buf: bytes) -> SutSegment | None:
    """``parse_v4_unpacked`` by byte reads, which the compiled module turns into C reads, with
    the usual aligned timestamp option read the same way (a test holds the two to one output)."""
    size = len(buf)
    if size < 40 or buf[0] != 0x45 or buf[9] != _PROTO_TCP:
        return None
    total = (buf[2] << 8) | buf[3]
    start = 20 + (buf[32] >> 4) * 4
    if start < 40 or size < start or total < start:
        return None
    seg = SutSegment.__new__(SutSegment)  # compiled: no __init__ call, C stores below
    raw = buf  # compiled: a char pointer, so that a slice is one copy, without a slice object
    seg.src = raw[12:16]
    seg.dst = raw[16:20]
    seg.sport = (buf[20] << 8) | buf[21]
    seg.dport = (buf[22] << 8) | buf[23]
    seg.seq = be32(buf, 24)
    seg.ack = be32(buf, 28)
    seg.flags = buf[33]
    seg.window = (buf[34] << 8) | buf[35]
    seg.options = raw[40:start]
    seg.payload_len = total - start
    seg.payload = raw[start:min(total, size)] if total > start and size > start else None
    if start >= 52 and buf[40] == 1 and buf[41] == 1 and buf[42] == 8 and buf[43] == 10:
        seg.has_ts = True
        seg.ts_val = be32(buf, 44)
        seg.ts_ecr = be32(buf, 48)
    else:
        _set_timestamp(seg, timestamp_of(seg.options))
    return seg


def _set_timestamp(seg: SutSegment, ts: tuple[int, int] | None) -> None:
    seg.has_ts = ts is not None
    seg.ts_val, seg.ts_ecr = ts if ts is not None else (0, 0)


def _parse_general(buf: bytes | memoryview) -> SutSegment:
    if len(buf) < 20:
        raise UsageError(f"SUT segment too short ({len(buf)} bytes) for an IP header")
    version = buf[0] >> 4
    if version == 4:
        vihl, _, total, _, _, _, proto, _, src, dst = _IPV4.unpack_from(buf)
        ip_len = (vihl & 0x0F) * 4
        if proto != _PROTO_TCP or ip_len < 20:
            raise UsageError(f"SUT segment is not IPv4 TCP (protocol {proto}, header {ip_len} bytes)")
    elif version == 6:
        if len(buf) < 40:
            raise UsageError(f"SUT segment too short ({len(buf)} bytes) for an IPv6 header")
        _, plen, proto, _, src, dst = _IPV6.unpack_from(buf)
        if proto != _PROTO_TCP:
            raise UsageError(f"SUT segment is not IPv6 TCP (next header {proto})")
        ip_len, total = 40, 40 + plen
    else:
        raise UsageError(f"SUT segment has IP version {version}")
    if len(buf) < ip_len + 20:
        raise UsageError(f"SUT segment too short ({len(buf)} bytes) for a TCP header")
    sport, dport, seq, ack, offflags, window, _, _ = _TCP.unpack_from(buf, ip_len)
    tcp_len = (offflags >> 12) * 4
    start = ip_len + tcp_len
    if tcp_len < 20 or len(buf) < start:
        raise UsageError(f"SUT segment has a bad TCP header length {tcp_len}")
    payload_len = total - start
    if payload_len < 0:
        raise UsageError(f"SUT segment IP length {total} is shorter than its headers ({start})")
    payload = bytes(buf[start : start + payload_len]) if payload_len and len(buf) > start else None
    return SutSegment(
        bytes(src), bytes(dst), sport, dport, seq, ack, offflags & 0xFF, window,
        bytes(buf[ip_len + 20 : start]), payload_len, payload,
    )


class SegmentBuilder:
    """Builds IPv4 + TCP packets from ``src`` to ``dst``: DF set, TTL 64, both checksums right.

    Two strategies with identical output (a test holds them to it): ``build_packed`` packs
    both headers with one `struct` call, the fastest way in pure Python; ``build_written``
    writes the header bytes one by one, which the compiled module turns into C stores (no
    int objects for the eighteen fields). ``build`` is whichever suits the running code.
    """

    __slots__ = ("_addrs", "_dst_ip", "_ip_base", "_ports", "_src_ip", "_tcp_base", "dst", "src")

    def __init__(self, src: Endpoint, dst: Endpoint) -> None:
        if len(src.addr) != 4 or len(dst.addr) != 4:
            raise UsageError(
                f"only IPv4 packets can be built: {src} -> {dst}; replay to an IPv4 target"
            )
        self.src = src
        self.dst = dst
        self._ports = (src.port, dst.port)
        self._addrs = (src.addr, dst.addr)
        self._sum_constants(be32(src.addr, 0), be32(dst.addr, 0), src.port, dst.port)

    def _sum_constants(self, src_ip: int, dst_ip: int, sport: int, dport: int) -> None:
        """The checksum words that never change (compiled: C arithmetic, wire.pxd)."""
        self._src_ip, self._dst_ip = src_ip, dst_ip
        # The addresses' partial sum (checksum.partial_sum of both), from their 16-bit words.
        addrs = ((src_ip >> 16) + (src_ip & 0xFFFF) + (dst_ip >> 16) + (dst_ip & 0xFFFF)) % _M
        # IP header words that never change: version/IHL/TOS, DF, TTL/protocol, addresses.
        self._ip_base = (0x4500 + _DF + (_TTL << 8 | _PROTO_TCP) + addrs) % _M
        # TCP pseudo-header (addresses, protocol) plus both ports.
        self._tcp_base = (addrs + _PROTO_TCP + sport + dport) % _M

    def build(
        self, seq: int, ack: int, flags: int, window: int, options: bytes,
        payload: bytes, payload_sum: int, ip_id: int,
    ) -> bytes:
        """One packet; ``payload_sum`` is `partial_sum(payload)` (0 for no payload)."""
        if COMPILED:
            return self.build_written(seq, ack, flags, window, options, payload, payload_sum, ip_id)
        return self.build_packed(seq, ack, flags, window, options, payload, payload_sum, ip_id)

    def build_packed(
        self, seq: int, ack: int, flags: int, window: int, options: bytes,
        payload: bytes, payload_sum: int, ip_id: int,
    ) -> bytes:
        tcp_hlen = 20 + len(options)
        tcp_len = tcp_hlen + len(payload)
        offflags = (tcp_hlen << 10) | flags  # data offset in words, in the top 4 bits
        total = tcp_len + 20
        s = self._tcp_base + tcp_len + seq + ack + offflags + window + payload_sum
        if options:
            s += int.from_bytes(options, "big")
        sport, dport = self._ports
        src, dst = self._addrs
        headers = _V4_TCP_HEADERS.pack(
            0x45, 0, total, ip_id, _DF, TTL, _PROTO_TCP, -(self._ip_base + total + ip_id) % _M,
            src, dst, sport, dport, seq, ack, offflags, window, -s % _M, 0,
        )  # the two -x % _M are checksum.finish(), inlined: this runs for every packet sent
        if options:
            headers += options
        return headers + payload if payload else headers

    def build_timestamped(
        self, seq: int, ack: int, flags: int, window: int, ts_val: int, ts_ecr: int,
        payload: bytes, payload_sum: int, ip_id: int,
    ) -> bytes:
        """``build`` with the timestamp option (NOP, NOP, TS) as the options, written in place
        when compiled (no options bytes object per packet)."""
        if COMPILED:
            return self._write(seq, ack, flags, window, b"", payload, payload_sum, ip_id, True, ts_val, ts_ecr)
        return self.build_packed(
            seq, ack, flags, window, timestamp_option(ts_val, ts_ecr), payload, payload_sum, ip_id
        )

    def build_written(
        self, seq: int, ack: int, flags: int, window: int, options: bytes,
        payload: bytes, payload_sum: int, ip_id: int,
    ) -> bytes:
        return self._write(seq, ack, flags, window, options, payload, payload_sum, ip_id, False, 0, 0)

    def _write(
        self, seq: int, ack: int, flags: int, window: int, options: bytes, payload: bytes,
        payload_sum: int, ip_id: int, ts: bool, ts_val: int, ts_ecr: int,
    ) -> bytes:
        """The byte-store strategy; with ``ts``, the timestamp option comes first. ``options``
        and ``payload`` may be any bytes-like object, as for ``build_packed``."""
        opts = options if type(options) is bytes else bytes(options)  # compiled: C reads below
        olen = len(opts) + (_TS_OPTION_LEN if ts else 0)
        tcp_hlen = 20 + olen
        tcp_len = tcp_hlen + len(payload)
        offflags = (tcp_hlen << 10) | flags
        total = tcp_len + 20
        s = self._tcp_base + tcp_len + seq + ack + offflags + window + payload_sum
        first = 0  # where `options` go: after the timestamp option, if any
        if ts:
            first = _TS_OPTION_LEN
            s += 0x0101 + 0x080A + (ts_val >> 16) + (ts_val & 0xFFFF) + (ts_ecr >> 16) + (ts_ecr & 0xFFFF)
        s += sum_words(opts)
        ip_sum = (_M - (self._ip_base + total + ip_id) % _M) % _M
        tcp_sum = (_M - s % _M) % _M
        buf = bytearray(total)
        p = buf  # compiled: a C pointer into buf, so every store below is one machine store
        p[0] = 0x45
        p[2] = total >> 8
        p[3] = total & 0xFF
        p[4] = ip_id >> 8
        p[5] = ip_id & 0xFF
        p[6] = _DF >> 8
        p[8] = _TTL
        p[9] = _PROTO_TCP
        p[10] = ip_sum >> 8
        p[11] = ip_sum & 0xFF
        _store32(p, 12, self._src_ip)
        _store32(p, 16, self._dst_ip)
        sport, dport = self._ports
        p[20] = sport >> 8
        p[21] = sport & 0xFF
        p[22] = dport >> 8
        p[23] = dport & 0xFF
        _store32(p, 24, seq)
        _store32(p, 28, ack)
        p[32] = offflags >> 8
        p[33] = offflags & 0xFF
        p[34] = window >> 8
        p[35] = window & 0xFF
        p[36] = tcp_sum >> 8
        p[37] = tcp_sum & 0xFF
        if ts:
            p[40] = p[41] = 1
            p[42] = 8
            p[43] = 10
            _store32(p, 44, ts_val)
            _store32(p, 48, ts_ecr)
        for i in range(olen - first):
            p[40 + first + i] = opts[i]
        if payload:
            buf[40 + olen :] = payload
        return bytes(buf)


def _store32(p, at, value):  # type: ignore[no-untyped-def]  (typed in wire.pxd: a C pointer)
    """Four bytes of ``value`` at ``p[at:]``, big-endian."""
    p[at] = (value >> 24) & 0xFF
    p[at + 1] = (value >> 16) & 0xFF
    p[at + 2] = (value >> 8) & 0xFF
    p[at + 3] = value & 0xFF


COMPILED = not __file__.endswith(".py")
