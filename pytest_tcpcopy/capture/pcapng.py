"""pcapng files: sections in either byte order, interfaces with their own link type and timestamp
resolution, and enhanced, simple and (obsolete) packet blocks. Other blocks are skipped.

Yields raw records ``(index, ts, linktype, frame, orig_len)`` where ``index`` counts packet blocks.
A Simple Packet Block has no timestamp; it gets the previous packet's.
"""

from __future__ import annotations

from collections.abc import Iterator
from struct import Struct

from ..errors import CaptureError
from .source import CHUNK, ByteSource
from .stats import CaptureStats

SECTION_HEADER = 0x0A0D0D0A
MAGIC = b"\x0a\x0d\x0d\x0a"
_INTERFACE = 0x00000001
_PACKET_OBSOLETE = 0x00000002
_SIMPLE_PACKET = 0x00000003
_ENHANCED_PACKET = 0x00000006
_BYTE_ORDERS = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
_MAX_BLOCK = 1 << 24  # Wireshark's limit too
_OPT_END, _OPT_TSRESOL, _OPT_TSOFFSET = 0, 9, 14


class _Layout:
    """The block structures for one byte order."""

    def __init__(self, order: str) -> None:
        self.block_head = Struct(order + "II")
        self.u32 = Struct(order + "I")
        self.section = Struct(order + "HH")  # version major, minor (after the byte-order magic)
        self.interface = Struct(order + "HxxI")  # link type, snap length
        self.option = Struct(order + "HH")
        self.tsoffset = Struct(order + "q")
        self.enhanced = Struct(order + "IIIII")  # interface, ts high, ts low, captured, original
        self.obsolete = Struct(order + "HxxIIII")  # interface, ts high, ts low, captured, original


_LAYOUTS = {order: _Layout(order) for order in ("<", ">")}


class _Interface:
    __slots__ = ("linktype", "offset", "snaplen", "units")

    def __init__(self, linktype: int, snaplen: int, units: int, offset: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.units = units  # timestamp ticks per second (if_tsresol)
        self.offset = offset  # seconds added to every timestamp (if_tsoffset)


class Pcapng:
    """Checks the first section header on construction; ``records()`` walks the blocks once."""

    def __init__(self, source: ByteSource, start: bytes, stats: CaptureStats) -> None:
        self._source = source
        self._stats = stats
        self._buf = source.refill(start, 0, 12)
        if len(self._buf) < 12 or self._buf[8:12] not in _BYTE_ORDERS:
            raise CaptureError(source.path, None, "pcapng section header has no valid byte-order magic")

    def records(self) -> Iterator[tuple[int, float, int, bytes, int]]:
        source = self._source
        stats = self._stats
        path = source.path
        buf = self._buf
        size = len(buf)
        pos = 0
        file_offset = 0  # of buf[pos], for error messages
        index = 0
        layout = _LAYOUTS["<"]
        interfaces: list[_Interface] = []
        last_ts = 0.0
        while True:
            if size - pos < 12:
                buf = source.refill(buf, pos, CHUNK)
                size = len(buf)
                pos = 0
                if size < 12:
                    if size:
                        stats.truncated_tail = (
                            f"record {index}: file ends inside a block header at byte {file_offset}, after {size} bytes"
                        )
                    return
            if buf[pos : pos + 4] == MAGIC:
                order = _BYTE_ORDERS.get(buf[pos + 8 : pos + 12])
                if order is None:
                    raise CaptureError(path, index, f"section header at byte {file_offset} has a bad byte-order magic")
                layout = _LAYOUTS[order]
            block_type, length = layout.block_head.unpack_from(buf, pos)
            if length < 12 or length & 3 or length > _MAX_BLOCK:
                raise CaptureError(path, index, f"block at byte {file_offset} has an invalid length {length}")
            if size - pos < length:
                buf = source.refill(buf, pos, max(CHUNK, length))
                size = len(buf)
                pos = 0
                if size < length:
                    stats.truncated_tail = (
                        f"record {index}: block at byte {file_offset} says {length} bytes, file ends after {size}"
                    )
                    return
            if layout.u32.unpack_from(buf, pos + length - 4)[0] != length:
                raise CaptureError(path, index, f"block at byte {file_offset}: trailing length differs from {length}")
            body = pos + 8
            body_end = pos + length - 4
            record = None
            if block_type == _ENHANCED_PACKET or block_type == _PACKET_OBSOLETE:
                header = layout.enhanced if block_type == _ENHANCED_PACKET else layout.obsolete
                if body_end - body < 20:
                    raise CaptureError(path, index, f"packet block at byte {file_offset} is too short")
                interface_id, ts_high, ts_low, captured, orig_len = header.unpack_from(buf, body)
                data = body + 20
                if data + captured > body_end:
                    raise CaptureError(
                        path,
                        index,
                        f"packet block at byte {file_offset} says {captured} "
                        f"captured bytes but holds {body_end - data}",
                    )
                if interface_id >= len(interfaces):
                    raise CaptureError(
                        path,
                        index,
                        f"packet block at byte {file_offset} names interface "
                        f"{interface_id}, but the section declares {len(interfaces)}",
                    )
                interface = interfaces[interface_id]
                last_ts = ((ts_high << 32) | ts_low) / interface.units + interface.offset
                record = (index, last_ts, interface.linktype, buf[data : data + captured], orig_len)
            elif block_type == _SIMPLE_PACKET:
                if not interfaces:
                    raise CaptureError(path, index, f"simple packet block at byte {file_offset} before any interface")
                if body_end - body < 4:
                    raise CaptureError(path, index, f"simple packet block at byte {file_offset} is too short")
                orig_len = layout.u32.unpack_from(buf, body)[0]
                captured = min(orig_len, body_end - body - 4, interfaces[0].snaplen or orig_len)
                record = (index, last_ts, interfaces[0].linktype, buf[body + 4 : body + 4 + captured], orig_len)
            elif block_type == _INTERFACE:
                interfaces.append(self._interface(buf, body, body_end, layout, index, file_offset))
                stats.link_types.add(interfaces[-1].linktype)
            elif block_type == SECTION_HEADER:
                major = layout.section.unpack_from(buf, body + 4)[0] if body_end - body >= 16 else None
                if major != 1:
                    raise CaptureError(
                        path,
                        index,
                        f"section header at byte {file_offset}: pcapng version {major} is not supported (only 1.x)",
                    )
                interfaces = []
            pos += length
            file_offset += length
            if record is not None:
                stats.records = index + 1
                yield record
                index += 1

    def _interface(
        self, buf: bytes, body: int, body_end: int, layout: _Layout, index: int, file_offset: int
    ) -> _Interface:
        path = self._source.path
        if body_end - body < 8:
            raise CaptureError(path, index, f"interface block at byte {file_offset} is too short")
        linktype, snaplen = layout.interface.unpack_from(buf, body)
        units, offset = 1_000_000, 0
        at = body + 8
        while at + 4 <= body_end:
            code, size = layout.option.unpack_from(buf, at)
            value = at + 4
            if code == _OPT_END:
                break
            if value + size > body_end:
                raise CaptureError(
                    path, index, f"interface block at byte {file_offset}: option {code} runs past the block"
                )
            if code == _OPT_TSRESOL and size >= 1:
                exponent = buf[value]
                units = 2 ** (exponent & 0x7F) if exponent & 0x80 else 10**exponent
            elif code == _OPT_TSOFFSET and size == 8:
                offset = layout.tsoffset.unpack_from(buf, value)[0]
            at = value + ((size + 3) & ~3)
        return _Interface(linktype, snaplen, units, offset)
