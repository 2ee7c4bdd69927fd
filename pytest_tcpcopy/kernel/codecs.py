# cython: annotation_typing=True
"""The byte codecs: pcap records, the SUT's segments, the packets sent, TCP options, checksums, the
intercept's route keys and the channel's RECORDS bodies (see the package's docstring).

A partial sum is the ones'-complement sum of 16-bit words reduced modulo 0xFFFF (65536 is 1
modulo 0xFFFF, so a big-endian integer of an even-aligned byte string is congruent to the sum of
its words). Partial sums of even-aligned pieces add; ``finish`` turns a total into the checksum
field. For any non-zero data this equals the RFC 1071 result exactly.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from ..endpoint import Endpoint
from ..errors import UsageError
from .packet import Packet, new_packet

if TYPE_CHECKING:
    import cython

Buffer = bytes | bytearray | memoryview  # what the codecs take where they read bytes

# -- pcap records ------------------------------------------------------------------------------

_MIN_FRAME = 54  # Ethernet, IPv4 and TCP headers without options
RUN = 64
"""Records per ``decode_run`` call: Packets waiting in a long run outlive young-generation
collections, which then traverse them again and again; a short run keeps the win of one call."""


def decode_run(
    buf: bytes, pos: cython.Py_ssize_t, index: cython.longlong, little: cython.bint, units: float,
    max_record: cython.Py_ssize_t, out: list, limit: cython.Py_ssize_t = RUN,
) -> tuple[int, int, int]:
    """Decode up to ``limit`` classic pcap records of the common case from ``buf[pos:]`` into
    ``out``, stopping at the first record that is anything else or not wholly in ``buf`` (the
    reader takes that one the general way). Returns ``(pos, index, cut)`` after the last record
    decoded; ``cut`` counts the Packets whose payload the snap length cut."""
    size: cython.Py_ssize_t = len(buf)
    stop: cython.longlong = index + limit
    cut: cython.Py_ssize_t = 0
    seconds: cython.ulong
    fraction: cython.ulong
    captured: cython.Py_ssize_t
    while size - pos >= 16 and index < stop:
        if little:
            seconds, fraction, captured = _le32(buf, pos), _le32(buf, pos + 4), _le32(buf, pos + 8)
        else:
            seconds, fraction, captured = _be32(buf, pos), _be32(buf, pos + 4), _be32(buf, pos + 8)
        if captured > max_record or pos + 16 + captured > size:
            break
        pkt = _frame_packet(buf, pos + 16, captured, index, seconds + fraction / units)
        if pkt is None:
            break
        if len(pkt.payload) < pkt.payload_len:
            cut += 1
        out.append(pkt)
        pos += 16 + captured
        index += 1
    return pos, index, cut


def decode_common_frame(index: cython.longlong, ts: float, frame: bytes) -> Packet | None:
    """The Packet of one Ethernet frame of the common case, or None for any other frame (for
    formats that hand out frames one by one: pcapng)."""
    return _frame_packet(frame, 0, len(frame), index, ts)


def _frame_packet(
    buf: bytes, start: cython.Py_ssize_t, captured: cython.Py_ssize_t, index: cython.longlong, ts: float
) -> Packet | None:
    """The Packet of the Ethernet frame of ``captured`` bytes at ``buf[start:]``, or None when
    it is not of the common case."""
    if captured < _MIN_FRAME:
        return None
    total: cython.Py_ssize_t = _be16(buf, start + 16)
    if (
        _be16(buf, start + 12) != 0x0800  # IPv4
        or buf[start + 14] != 0x45  # without options
        or buf[start + 23] != 6  # TCP
        or _be16(buf, start + 20) & 0x3FFF  # not a fragment
        or total < 40
    ):
        return None
    data_start: cython.Py_ssize_t = 34 + ((buf[start + 46] >> 4) << 2)
    ip_end: cython.Py_ssize_t = 14 + total
    if data_start < _MIN_FRAME or data_start > ip_end or data_start > captured:
        return None
    raw: cython.p_const_char = buf  # a slice of it is one copy
    return new_packet(
        index, ts, _address(buf, start + 26), _address(buf, start + 30),
        _be16(buf, start + 34), _be16(buf, start + 36), _be32(buf, start + 38), _be32(buf, start + 42),
        buf[start + 47], _be16(buf, start + 48),
        raw[start + _MIN_FRAME : start + data_start], raw[start + data_start : start + min(ip_end, captured)],
        ip_end - data_start, _be16(buf, start + 18), buf[start + 22],
    )  # fmt: skip


# One bytes object per IPv4 address seen (bounded), by its number: the flow table's keys then
# hash with the address's cached hash and compare by identity.
_ADDRESSES: dict[int, bytes] = {}
_MAX_ADDRESSES = 1 << 16


def _address(buf: bytes, at: cython.Py_ssize_t) -> bytes:
    """The IPv4 address at ``buf[at:at + 4]``, the same object for the same address."""
    number = _be32(buf, at)
    address = _ADDRESSES.get(number)
    if address is None:
        if len(_ADDRESSES) >= _MAX_ADDRESSES:
            _ADDRESSES.clear()
        address = _ADDRESSES[number] = buf[at : at + 4]
    return address


def _be16(buf: bytes, at: cython.Py_ssize_t) -> cython.uint:
    return (buf[at] << 8) | buf[at + 1]


def _be32(buf: bytes, at: cython.Py_ssize_t) -> cython.ulong:
    high: cython.ulong = buf[at]  # unsigned: bit 31 of a C int would be its sign
    return (high << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]


def _le32(buf: bytes, at: cython.Py_ssize_t) -> cython.ulong:
    high: cython.ulong = buf[at + 3]
    return (high << 24) | (buf[at + 2] << 16) | (buf[at + 1] << 8) | buf[at]


# -- checksums ---------------------------------------------------------------------------------

_M = 0xFFFF


def partial_sum(data: Buffer) -> int:
    """Ones'-complement partial sum of ``data`` as if it started at an even offset: its 16-bit
    big-endian words added (a last odd byte as the high byte of a word), modulo 0xFFFF."""
    buf: bytes = data if type(data) is bytes else bytes(data)
    n: cython.Py_ssize_t = len(buf)
    total: cython.ulonglong = 0
    i: cython.Py_ssize_t
    for i in range(0, n - 1, 2):
        total += (buf[i] << 8) | buf[i + 1]
    if n & 1:
        total += buf[n - 1] << 8
    return total % _M


def finish(total: cython.longlong) -> int:
    """The checksum field for data whose partial sums add up to ``total``."""
    return -total % _M


def internet_checksum(data: bytes | memoryview) -> int:
    """RFC 1071 checksum of ``data`` (non-empty)."""
    return finish(partial_sum(data))


def verify(data: bytes | memoryview) -> bool:
    """True when ``data``, checksum field included, sums to ones'-complement zero."""
    return partial_sum(data) == 0


# -- TCP options -------------------------------------------------------------------------------

_EOL, _NOP, _MSS, _WSCALE, _SACK_PERMITTED, _TIMESTAMP = 0, 1, 2, 3, 4, 8  # option kinds
TIMESTAMP_OPTION_LEN = 12  # NOP, NOP, timestamp: keeps the header 4-byte aligned
MAX_WSCALE = 14  # RFC 7323 2.3: larger shift counts are treated as 14
_TS_OPTION = struct.Struct("!BBBBII")
_MSS_OPTION = struct.Struct("!BBH")


class TcpOptions(NamedTuple):
    """Parsed options of one segment; None or False when absent."""

    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    ts_val: int | None = None
    ts_ecr: int | None = None


def parse_options(raw: Buffer) -> TcpOptions:
    """Decode the options the translator cares about; malformed trailing bytes are ignored
    (a real stack stops at the first malformed option as well)."""
    data: bytes = raw if type(raw) is bytes else bytes(raw)
    mss = wscale = ts_val = ts_ecr = None
    sack_permitted = False
    i: cython.Py_ssize_t = 0
    n: cython.Py_ssize_t = len(data)
    kind: cython.int
    length: cython.int
    while i < n:
        kind = data[i]
        if kind == _EOL:
            break
        if kind == _NOP:
            i += 1
            continue
        if i + 1 >= n:
            break
        length = data[i + 1]
        if length < 2 or i + length > n:
            break
        if kind == _MSS and length == 4:
            mss = _be16(data, i + 2)
        elif kind == _WSCALE and length == 3:
            wscale = min(data[i + 2], MAX_WSCALE)
        elif kind == _SACK_PERMITTED and length == 2:
            sack_permitted = True
        elif kind == _TIMESTAMP and length == 10:
            ts_val, ts_ecr = _be32(data, i + 2), _be32(data, i + 6)
        i += length
    return tuple.__new__(TcpOptions, (mss, wscale, sack_permitted, ts_val, ts_ecr))  # no NamedTuple.__new__ frame


def timestamp_of(raw: Buffer) -> tuple[int, int] | None:
    """(TSval, TSecr) of a segment's options, or None; fast for the usual aligned layout."""
    data: bytes = raw if type(raw) is bytes else bytes(raw)
    if len(data) >= 12 and data[0] == _NOP and data[1] == _NOP and data[2] == _TIMESTAMP and data[3] == 10:
        return _be32(data, 4), _be32(data, 8)
    if not data:
        return None
    opts = parse_options(data)
    return None if opts.ts_val is None else (opts.ts_val, opts.ts_ecr)


def timestamp_option(ts_val: int, ts_ecr: int) -> bytes:
    """NOP, NOP, TS(ts_val, ts_ecr): ``TIMESTAMP_OPTION_LEN`` bytes."""
    return _TS_OPTION.pack(_NOP, _NOP, _TIMESTAMP, 10, ts_val, ts_ecr)


def mss_option(mss: int) -> bytes:
    """The 4-byte MSS option (a fake SYN carries nothing else)."""
    return _MSS_OPTION.pack(_MSS, 4, mss)


# -- SUT segments ------------------------------------------------------------------------------


class SutSegment:
    """One segment the SUT sent, as reported by the intercept.

    ``payload_len`` comes from the IP length field and is always the segment's real length;
    ``payload`` holds the bytes only when the intercept reported them (response-capture mode),
    else None; it is shorter than ``payload_len`` when the intercept truncated the packet.
    ``has_ts``, ``ts_val`` and ``ts_ecr``: the timestamp option, read once here (0 when absent).
    """

    __slots__ = (
        "ack", "dport", "dst", "flags", "has_ts", "options", "payload", "payload_len", "seq", "sport", "src",
        "ts_ecr", "ts_val", "window",
    )  # fmt: skip

    def __init__(
        self, src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
        window: int, options: bytes, payload_len: int, payload: bytes | None,
    ) -> None:  # fmt: skip
        self.src, self.dst, self.sport, self.dport = src, dst, sport, dport
        self.seq, self.ack, self.flags, self.window = seq, ack, flags, window
        self.options, self.payload_len, self.payload = options, payload_len, payload
        ts = timestamp_of(options)
        self.has_ts = ts is not None
        self.ts_val, self.ts_ecr = (0, 0) if ts is None else ts

    def __repr__(self) -> str:
        return (
            f"SutSegment({self.src.hex()}:{self.sport} -> {self.dst.hex()}:{self.dport} seq={self.seq} "
            f"ack={self.ack} flags={self.flags:#x} window={self.window} options={self.options!r} "
            f"payload_len={self.payload_len}{'' if self.payload is None else ' with payload'})"
        )


def parse_sut_segment(buf: Buffer) -> SutSegment:
    """Decode an IPv4 or IPv6 (no extension headers) TCP packet as the intercept reports it.

    Raises UsageError when ``buf`` is not such a packet: the intercept feeds only TCP
    packets, so anything else is a wiring mistake on the caller's side.
    """
    data: bytes = buf if type(buf) is bytes else bytes(buf)
    size: cython.Py_ssize_t = len(data)
    if size < 20:
        raise UsageError(f"SUT segment too short ({size} bytes) for an IP header")
    version = data[0] >> 4
    ip_len: cython.Py_ssize_t
    total: cython.Py_ssize_t
    raw: cython.p_const_char = data  # a slice of it is one copy
    if version == 4:
        ip_len = (data[0] & 15) << 2
        if data[9] != _PROTO_TCP or ip_len < 20:
            raise UsageError(f"SUT segment is not IPv4 TCP (protocol {data[9]}, header {ip_len} bytes)")
        total = _be16(data, 2)
        src, dst = raw[12:16], raw[16:20]
    elif version == 6:
        if size < 40:
            raise UsageError(f"SUT segment too short ({size} bytes) for an IPv6 header")
        if data[6] != _PROTO_TCP:
            raise UsageError(f"SUT segment is not IPv6 TCP (next header {data[6]})")
        ip_len = 40
        total = 40 + _be16(data, 4)
        src, dst = raw[8:24], raw[24:40]
    else:
        raise UsageError(f"SUT segment has IP version {version}")
    if size < ip_len + 20:
        raise UsageError(f"SUT segment too short ({size} bytes) for a TCP header")
    tcp_len: cython.Py_ssize_t = (data[ip_len + 12] >> 4) << 2
    start: cython.Py_ssize_t = ip_len + tcp_len
    if tcp_len < 20 or size < start:
        raise UsageError(f"SUT segment has a bad TCP header length {tcp_len}")
    if total < start:
        raise UsageError(f"SUT segment IP length {total} is shorter than its headers ({start})")
    seg: SutSegment = SutSegment.__new__(SutSegment)
    seg.src, seg.dst = src, dst
    seg.sport, seg.dport = _be16(data, ip_len), _be16(data, ip_len + 2)
    seg.seq, seg.ack = _be32(data, ip_len + 4), _be32(data, ip_len + 8)
    seg.flags, seg.window = data[ip_len + 13], _be16(data, ip_len + 14)
    seg.options = raw[ip_len + 20 : start]
    seg.payload_len = total - start
    seg.payload = raw[start : min(total, size)] if total > start and size > start else None
    opt: cython.Py_ssize_t = ip_len + 20
    if tcp_len >= 32 and data[opt] == _NOP and data[opt + 1] == _NOP and data[opt + 2] == _TIMESTAMP and data[opt + 3] == 10:
        seg.has_ts, seg.ts_val, seg.ts_ecr = True, _be32(data, opt + 4), _be32(data, opt + 8)
    else:
        ts = timestamp_of(seg.options)
        seg.has_ts = ts is not None
        seg.ts_val, seg.ts_ecr = (0, 0) if ts is None else ts
    return seg


# -- packets sent ------------------------------------------------------------------------------

_PROTO_TCP = 6
_DF = 0x4000
_TTL = 64


class SegmentBuilder:
    """Builds IPv4 + TCP packets from ``src`` to ``dst``: DF set, TTL 64, both checksums right.

    The words that never change (addresses, ports, TTL, protocol) are summed once, so a packet
    costs a little integer arithmetic and its bytes; the payload's partial sum is passed in by the
    caller, who keeps it across retransmissions.
    """

    __slots__ = ("_dst_ip", "_dport", "_ip_base", "_sport", "_src_ip", "_tcp_base", "dst", "src")

    def __init__(self, src: Endpoint, dst: Endpoint) -> None:
        if len(src.addr) != 4 or len(dst.addr) != 4:
            raise UsageError(f"only IPv4 packets can be built: {src} -> {dst}; replay to an IPv4 target")
        self.src = src
        self.dst = dst
        src_ip: cython.ulong = _be32(src.addr, 0)
        dst_ip: cython.ulong = _be32(dst.addr, 0)
        sport: cython.ulong = src.port
        dport: cython.ulong = dst.port
        self._src_ip, self._dst_ip, self._sport, self._dport = src_ip, dst_ip, sport, dport
        addresses = (src_ip >> 16) + (src_ip & 0xFFFF) + (dst_ip >> 16) + (dst_ip & 0xFFFF)
        self._ip_base = (0x4500 + _DF + (_TTL << 8 | _PROTO_TCP) + addresses) % _M  # IP words that never change
        self._tcp_base = (addresses + _PROTO_TCP + sport + dport) % _M  # pseudo-header and ports

    def build(
        self, seq: cython.ulong, ack: cython.ulong, flags: cython.int, window: cython.long, options: Buffer,
        payload: Buffer, payload_sum: cython.longlong, ip_id: cython.long,
    ) -> bytes:  # fmt: skip
        """One packet; ``payload_sum`` is `partial_sum(payload)` (0 for no payload). ``options``
        and ``payload`` may be any bytes-like objects."""
        return self._packet(seq, ack, flags, window, False, 0, 0, options, payload, payload_sum, ip_id)

    def build_timestamped(
        self, seq: cython.ulong, ack: cython.ulong, flags: cython.int, window: cython.long, ts_val: cython.ulong,
        ts_ecr: cython.ulong, payload: Buffer, payload_sum: cython.longlong, ip_id: cython.long,
    ) -> bytes:  # fmt: skip
        """``build`` with the timestamp option (NOP, NOP, TS) as the options."""
        return self._packet(seq, ack, flags, window, True, ts_val, ts_ecr, b"", payload, payload_sum, ip_id)

    def _packet(
        self, seq: cython.ulong, ack: cython.ulong, flags: cython.int, window: cython.long, ts: cython.bint,
        ts_val: cython.ulong, ts_ecr: cython.ulong, options: Buffer, payload: Buffer, payload_sum: cython.longlong,
        ip_id: cython.long,
    ) -> bytes:  # fmt: skip
        """The packet, with the timestamp option first among the options when ``ts``."""
        opts: bytes = options if type(options) is bytes else bytes(options)
        first: cython.Py_ssize_t = TIMESTAMP_OPTION_LEN if ts else 0  # where ``options`` start
        olen: cython.Py_ssize_t = first + len(opts)
        tcp_hlen: cython.Py_ssize_t = 20 + olen
        tcp_len: cython.Py_ssize_t = tcp_hlen + len(payload)
        total: cython.Py_ssize_t = 20 + tcp_len
        offflags: cython.long = (tcp_hlen << 10) | flags  # data offset in words, in the top 4 bits
        words: cython.longlong = self._tcp_base + tcp_len + seq + ack + offflags + window + payload_sum
        if ts:
            words += 0x0101 + 0x080A + ts_val + ts_ecr  # the option's words, modulo 0xFFFF
        buf: bytearray = bytearray(total)
        p: cython.p_uchar = buf  # each store below is one machine store
        p[0] = 0x45
        _put16(p, 2, total)
        _put16(p, 4, ip_id)
        p[6] = _DF >> 8
        p[8] = _TTL
        p[9] = _PROTO_TCP
        _put16(p, 10, finish(self._ip_base + total + ip_id))
        _put32(p, 12, self._src_ip)
        _put32(p, 16, self._dst_ip)
        _put16(p, 20, self._sport)
        _put16(p, 22, self._dport)
        _put32(p, 24, seq)
        _put32(p, 28, ack)
        _put16(p, 32, offflags)
        _put16(p, 34, window)
        if ts:
            p[40] = p[41] = _NOP
            p[42] = _TIMESTAMP
            p[43] = 10
            _put32(p, 44, ts_val)
            _put32(p, 48, ts_ecr)
        i: cython.Py_ssize_t
        for i in range(olen - first):  # ``options``, and their words (``first`` is even)
            p[40 + first + i] = opts[i]
            words += opts[i] if i & 1 else opts[i] << 8
        _put16(p, 36, finish(words))
        if payload:
            buf[40 + olen :] = payload
        return bytes(buf)


def _put16(p: cython.p_uchar, at: cython.Py_ssize_t, value: cython.ulong) -> None:
    p[at] = (value >> 8) & 0xFF
    p[at + 1] = value & 0xFF


def _put32(p: cython.p_uchar, at: cython.Py_ssize_t, value: cython.ulong) -> None:
    p[at] = (value >> 24) & 0xFF
    p[at + 1] = (value >> 16) & 0xFF
    p[at + 2] = (value >> 8) & 0xFF
    p[at + 3] = value & 0xFF


# -- the intercept and its channel -------------------------------------------------------------


def segment_key(segment: Buffer) -> tuple[tuple[bytes, int], int] | None:
    """The intercept's route key of a SUT segment (an IP packet): its source and destination
    addresses as they lie in the header, and both ports as one int; with the offset of its TCP
    header. None when the bytes are not an IPv4/IPv6 TCP segment whose headers can be read.
    IPv6 extension headers are not walked: the SUT's replies carry none."""
    data: bytes = segment if type(segment) is bytes else bytes(segment)
    n: cython.Py_ssize_t = len(data)
    if not n:
        return None
    version = data[0] >> 4
    tcp: cython.Py_ssize_t
    if version == 4:
        tcp = (data[0] & 15) << 2
        if tcp < 20 or n < tcp + 20 or data[9] != _PROTO_TCP:
            return None
        return (data[12:20], _be32(data, tcp)), tcp
    if version == 6:
        if n < 60 or data[6] != _PROTO_TCP:
            return None
        return (data[8:40], _be32(data, 40)), 40
    return None


# The 2-byte length before each record of a RECORDS body, made once for every length the
# intercept sends (headers, or segments of up to 4016 bytes in response-capture mode).
_PREFIXED = 4096
_PREFIXES = [n.to_bytes(2, "big") for n in range(_PREFIXED)]


def record_bodies(records: Iterable[bytes], max_body: cython.Py_ssize_t) -> list[bytes]:
    """The bodies of RECORDS frames holding ``records``, each behind its 2-byte length, split so
    that no body exceeds ``max_body`` bytes. Raises ValueError for a record of no or too many bytes."""
    bodies: list[bytes] = []
    parts: list[bytes] = []
    size: cython.Py_ssize_t = 0
    n: cython.Py_ssize_t
    for record in records:
        n = len(record)
        if not 0 < n <= max_body - 2:
            raise ValueError(f"a record must hold 1..{max_body - 2} bytes, got {n}")
        if size + 2 + n > max_body:
            bodies.append(b"".join(parts))
            parts.clear()
            size = 0
        parts.append(_PREFIXES[n] if n < _PREFIXED else n.to_bytes(2, "big"))
        parts.append(record)
        size += 2 + n
    if parts:
        bodies.append(b"".join(parts))
    return bodies


def decode_records(body: bytes) -> tuple[bytes, ...]:
    """The records of a RECORDS body, each behind its 2-byte length. Raises ValueError, saying
    where, when the body is not such a sequence."""
    if not body:
        raise ValueError("empty RECORDS frame")
    records: list[bytes] = []
    pos: cython.Py_ssize_t = 0
    end: cython.Py_ssize_t = len(body)
    n: cython.Py_ssize_t
    raw: cython.p_const_char = body  # a slice of it is one copy
    while pos < end:
        if pos + 2 > end:
            raise ValueError(f"RECORDS length prefix at byte {pos} is cut short")
        n = _be16(body, pos)
        pos += 2
        if n == 0 or pos + n > end:
            raise ValueError(f"RECORDS record at byte {pos - 2} claims {n} bytes; {end - pos} remain")
        records.append(raw[pos : pos + n])
        pos += n
    return tuple(records)
