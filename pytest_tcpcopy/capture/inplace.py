"""The common case decoded straight out of a classic pcap read buffer.

Nearly every record of a capture of a web service is an Ethernet frame carrying IPv4 without
options, not a fragment, and TCP. ``decode_run`` turns a run of such records into ``Packet``s in
one call, without a per-record tuple or a copy of the frame, and stops at the first record that is
anything else or not wholly in the buffer: the reader takes that one the general way (link
decoders, IP options, IPv6, fragments, refilling the buffer) and calls again.

Two strategies compute the very same Packets: struct unpacking, fastest in pure Python; and byte
arithmetic, which the compiled module turns into C reads of the buffer (inplace.pxd types it).
``decode_run`` is whichever suits how this module runs; the tests hold both to the same output.
"""

from __future__ import annotations

from struct import Struct

from .packet import Packet, new_packet

_RECORD_HEADER = {True: Struct("<IIII"), False: Struct(">IIII")}  # by little-endian file
_ETHERNET_IPV4_TCP = Struct("!12xHBxHHHBB2x4s4sHHIIBBH")  # the 54 bytes the common case needs
_MIN_FRAME = 54
# Records per call: Packets waiting in a long run outlive young-generation collections, and the
# garbage collector then traverses them again and again; a short run keeps the win of one call.
RUN = 64


def decode_run_struct(
    buf: bytes, pos: int, index: int, little: bool, units: int, max_record: int, out: list, limit: int = RUN
) -> tuple[int, int, int]:
    """Decode up to ``limit`` common-case records of ``buf`` from ``pos`` into ``out`` (see the
    module's docstring). Returns ``(pos, index, cut)`` after the last one decoded; ``cut`` counts
    the Packets whose payload the snap length cut."""
    size = len(buf)
    stop = index + limit
    cut = 0
    unpack_record = _RECORD_HEADER[little].unpack_from
    unpack_headers = _ETHERNET_IPV4_TCP.unpack_from
    append = out.append
    while size - pos >= 16 and index < stop:
        seconds, fraction, captured, _orig_len = unpack_record(buf, pos)
        start = pos + 16
        if captured > max_record or captured < _MIN_FRAME or start + captured > size:
            break
        (ethertype, vihl, total, ip_id, frag, ttl, proto, src, dst,
         sport, dport, seq, ack, data_offset, flags, window) = unpack_headers(buf, start)  # fmt: skip
        if ethertype != 0x0800 or vihl != 0x45 or proto != 6 or frag & 0x3FFF or total < 40:
            break
        data_start = 34 + ((data_offset >> 4) << 2)
        ip_end = 14 + total
        if not _MIN_FRAME <= data_start <= ip_end or data_start > captured:
            break
        if captured < ip_end:
            cut += 1
        append(Packet(
            index, seconds + fraction / units, src, dst, sport, dport, seq, ack, flags, window,
            buf[start + _MIN_FRAME : start + data_start], buf[start + data_start : start + min(ip_end, captured)],
            ip_end - data_start, ip_id, ttl,
        ))  # fmt: skip
        pos = start + captured
        index += 1
    return pos, index, cut


def decode_run_bytes(
    buf: bytes, pos: int, index: int, little: bool, units: int, max_record: int, out: list, limit: int = RUN
) -> tuple[int, int, int]:
    """``decode_run_struct`` by byte arithmetic: the same Packets, read field by field."""
    size = len(buf)
    stop = index + limit
    cut = 0
    raw = buf  # compiled: a char pointer, so that a slice is one copy, without a slice object
    while size - pos >= 16 and index < stop:
        if little:
            seconds, fraction, captured = _le32(buf, pos), _le32(buf, pos + 4), _le32(buf, pos + 8)
        else:
            seconds, fraction, captured = be32(buf, pos), be32(buf, pos + 4), be32(buf, pos + 8)
        start = pos + 16
        if captured > max_record or captured < _MIN_FRAME or start + captured > size:
            break
        total = _be16(buf, start + 16)
        if (
            _be16(buf, start + 12) != 0x0800
            or buf[start + 14] != 0x45
            or buf[start + 23] != 6
            or _be16(buf, start + 20) & 0x3FFF
            or total < 40
        ):
            break
        data_start = 34 + ((buf[start + 46] >> 4) << 2)
        ip_end = 14 + total
        if data_start < _MIN_FRAME or data_start > ip_end or data_start > captured:
            break
        if captured < ip_end:
            cut += 1
            payload_end = captured
        else:
            payload_end = ip_end
        src = _ADDRESSES.get(be32(buf, start + 26))
        if src is None:
            src = _address(buf, start + 26)
        dst = _ADDRESSES.get(be32(buf, start + 30))
        if dst is None:
            dst = _address(buf, start + 30)
        out.append(new_packet(
            index, seconds + fraction / units, src, dst,
            _be16(buf, start + 34), _be16(buf, start + 36), be32(buf, start + 38), be32(buf, start + 42),
            buf[start + 47], _be16(buf, start + 48),
            raw[start + _MIN_FRAME : start + data_start], raw[start + data_start : start + payload_end],
            ip_end - data_start, _be16(buf, start + 18), buf[start + 22],
        ))  # fmt: skip
        pos = start + captured
        index += 1
    return pos, index, cut


def decode_common_frame(index: int, ts: float, frame: bytes) -> Packet | None:
    """The Packet of one Ethernet frame of the common case, or None for any other frame (for
    formats that hand out frames one by one: pcapng)."""
    captured = len(frame)
    if captured < _MIN_FRAME:
        return None
    (ethertype, vihl, total, ip_id, frag, ttl, proto, src, dst,
     sport, dport, seq, ack, data_offset, flags, window) = _ETHERNET_IPV4_TCP.unpack_from(frame)  # fmt: skip
    if ethertype != 0x0800 or vihl != 0x45 or proto != 6 or frag & 0x3FFF or total < 40:
        return None
    data_start = 34 + ((data_offset >> 4) << 2)
    ip_end = 14 + total
    if not _MIN_FRAME <= data_start <= ip_end or data_start > captured:
        return None
    return new_packet(
        index, ts, src, dst, sport, dport, seq, ack, flags, window,
        frame[_MIN_FRAME:data_start], frame[data_start:ip_end], ip_end - data_start, ip_id, ttl,
    )  # fmt: skip


# One bytes object per IPv4 address seen (bounded): a lookup costs less than a slice, and the
# flow table's keys then hash with the address's cached hash and compare by identity.
_ADDRESSES: dict[int, bytes] = {}
_MAX_ADDRESSES = 1 << 16


def _address(buf: bytes, at: int) -> bytes:
    """The address at ``buf[at:at + 4]``, remembered for the next packets that carry it."""
    if len(_ADDRESSES) >= _MAX_ADDRESSES:
        _ADDRESSES.clear()
    address = _ADDRESSES[be32(buf, at)] = buf[at : at + 4]
    return address


def _be16(buf: bytes, at: int) -> int:
    return (buf[at] << 8) | buf[at + 1]


def be32(buf: bytes, at: int) -> int:
    """The big-endian 32-bit number at ``buf[at:at + 4]`` (compiled: four C byte reads)."""
    high, b1, b2, b3 = buf[at], buf[at + 1], buf[at + 2], buf[at + 3]  # unsigned when compiled
    return (high << 24) | (b1 << 16) | (b2 << 8) | b3


def _le32(buf: bytes, at: int) -> int:
    b0, b1, b2, high = buf[at], buf[at + 1], buf[at + 2], buf[at + 3]
    return (high << 24) | (b2 << 16) | (b1 << 8) | b0


COMPILED = not __file__.endswith(".py")
decode_run = decode_run_bytes if COMPILED else decode_run_struct
