"""A live ``PacketSource`` reading a classic pcap stream from a pipe (the copier's stdin).

The test runner receives live traffic where the copier cannot (agents reach the runner, not the
rig's client namespace) and streams it on as pcap, as ``PcapWriter`` writes it. Reads never
block: whatever bytes have arrived are parsed into as many whole records as they hold, the rest
waits for the next read. The stream is finished at its end (the writer closed it) or when its
optional duration has passed.
"""

from __future__ import annotations

import os
import time
from struct import Struct

from ..capture.fragments import FragmentTable
from ..capture.ip import decode_frame
from ..capture.linktypes import LINK_DECODERS
from ..capture.packet import Packet
from ..capture.pcap import MAGICS
from ..capture.stats import CaptureStats
from ..errors import CaptureError

_READ_SIZE = 1 << 16
_READS_PER_CALL = 16
_HEADER_LEN = 24
_LARGEST_RECORD = 1 << 24


class PcapStreamSource:
    """TCP segments of the pcap stream on descriptor ``fd`` (set non-blocking here), as they
    arrive; ``name`` names the stream in errors. ``stats`` counts what was skipped and why."""

    def __init__(self, fd: int, duration: float | None = None, *, name: str = "<stdin>") -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.name = name
        self.stats = CaptureStats()
        self._fragments = FragmentTable(self.stats)
        self._ends = None if duration is None else time.monotonic() + duration
        self._buf = bytearray()
        self._eof = False
        self._record_header: Struct | None = None  # known once the stream header has arrived
        self._units = 1
        self._decode_link = LINK_DECODERS[101]
        self._index = 0

    @property
    def finished(self) -> bool:
        return self._eof or (self._ends is not None and time.monotonic() >= self._ends)

    def filenos(self) -> list[int]:
        return [self.fd]

    def read_packets(self) -> list[Packet]:
        for _ in range(_READS_PER_CALL):  # bounded: a fast writer must not keep the caller here
            if self._eof:
                break
            try:
                data = os.read(self.fd, _READ_SIZE)
            except BlockingIOError:
                break
            if not data:
                self._eof = True
                self._end_of_stream()
                break
            self._buf += data
        packets = self._parse()
        if self._eof and self._buf:
            self.stats.truncated_tail = f"record {self._index}: the stream ends inside it ({len(self._buf)} bytes)"
        return packets

    def close(self) -> None:
        self._fragments.close()

    def _parse(self) -> list[Packet]:
        buf = self._buf
        if self._record_header is None:
            if len(buf) < _HEADER_LEN:
                return []
            self._read_header(bytes(buf[:_HEADER_LEN]))
            del buf[:_HEADER_LEN]
        assert self._record_header is not None
        unpack_header = self._record_header.unpack_from
        packets: list[Packet] = []
        pos = 0
        size = len(buf)
        while size - pos >= 16:
            seconds, fraction, captured, _orig_len = unpack_header(buf, pos)
            if captured > _LARGEST_RECORD:
                raise CaptureError(self.name, self._index, f"record header says {captured} captured bytes, "
                                   f"over the {_LARGEST_RECORD}-byte limit: the stream is corrupt")  # fmt: skip
            end = pos + 16 + captured
            if end > size:
                break  # the rest of this record has not arrived yet
            packet = self._decode(seconds + fraction / self._units, bytes(buf[pos + 16 : end]))
            if packet is not None:
                packets.append(packet)
            pos = end
        del buf[:pos]
        return packets

    def _read_header(self, head: bytes) -> None:
        magic = MAGICS.get(head[:4])
        if magic is None:
            raise CaptureError(self.name, None, f"not a classic pcap stream: it starts with {head[:4].hex()}, "
                               "not a pcap magic number")  # fmt: skip
        order, self._units = magic
        major, minor, _zone, _sigfigs, _snaplen, network = Struct(order + "HHiIII").unpack_from(head, 4)
        if major != 2:
            raise CaptureError(self.name, None, f"pcap version {major}.{minor} is not supported (only 2.x)")
        linktype = network & 0xFFFF
        decode_link = LINK_DECODERS.get(linktype)
        if decode_link is None:
            raise CaptureError(self.name, None, f"unsupported link type {linktype} (supported: "
                               f"{', '.join(map(str, sorted(LINK_DECODERS)))})")  # fmt: skip
        self._decode_link = decode_link
        self.stats.link_types.add(linktype)
        self._record_header = Struct(order + "IIII")

    def _decode(self, ts: float, frame: bytes) -> Packet | None:
        index = self._index
        self._index += 1
        self.stats.records = self._index
        return decode_frame(self._decode_link, index, ts, frame, self.stats, self._fragments)

    def _end_of_stream(self) -> None:
        if self._record_header is None and len(self._buf) < _HEADER_LEN:
            raise CaptureError(self.name, None, f"the stream ends inside the 24-byte pcap header, "
                               f"after {len(self._buf)} bytes")  # fmt: skip
