"""Classic libpcap files: both byte orders, microsecond and nanosecond timestamps.

Yields raw records ``(index, ts, linktype, frame, orig_len)`` as plain tuples, or decoded Packets
with the common case decoded in the read buffer (``kernel.decode_run``): the hot path. A file that ends inside
its last record sets ``stats.truncated_tail`` instead of raising.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from struct import Struct
from typing import Any

from ..errors import CaptureError
from ..kernel.codecs import decode_run
from .linktypes import ETHERNET
from .packet import Packet
from .source import CHUNK, ByteSource
from .stats import CaptureStats

# magic as it appears in the file -> (byte order, fraction units per second)
MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}
_STANDARD_MAX_RECORD = 262_144  # libpcap's and Wireshark's largest standard snap length
_LARGEST_RECORD = 1 << 24


class ClassicPcap:
    """Reads the 24-byte file header on construction; ``records()`` walks the rest once."""

    def __init__(self, source: ByteSource, start: bytes, stats: CaptureStats) -> None:
        self._source = source
        self._stats = stats
        head = source.refill(start, 0, 24)
        if len(head) < 24:
            raise CaptureError(source.path, None, f"file ends inside the 24-byte pcap header, after {len(head)} bytes")
        order, self._units = MAGICS[head[:4]]
        major, minor, _zone, _sigfigs, snaplen, network = Struct(order + "HHiIII").unpack_from(head, 4)
        if major != 2:
            raise CaptureError(source.path, None, f"pcap version {major}.{minor} is not supported (only 2.x)")
        self.linktype = network & 0xFFFF  # the upper bits describe FCS presence, not the link
        self._max_record = min(max(snaplen, _STANDARD_MAX_RECORD), _LARGEST_RECORD)
        self._record_header = Struct(order + "IIII")
        self._little = order == "<"
        self._rest = head[24:]
        stats.link_types.add(self.linktype)

    def records(self) -> Iterator[tuple[int, float, int, bytes, int]]:
        return self._walk(None, _as_record, False)

    def packets(self, decode_other: Callable[[int, float, int, bytes, int], Packet | None]) -> Iterator[Packet]:
        """The TCP segments of the file: runs of common-case records decoded in the read buffer
        (counted in ``stats``), every other record by ``decode_other(index, ts, linktype, frame,
        orig_len)``, which returns its Packet or None (skipped, and counted by it)."""
        return self._walk(decode_run if self.linktype == ETHERNET else None, decode_other, False)

    def packet_runs(
        self, decode_other: Callable[[int, float, int, bytes, int], Packet | None]
    ) -> Iterator[list[Packet]]:
        """``packets``, in lists as they are decoded (up to ``kernel.RUN``): no generator step
        per packet for a consumer that takes them a list at a time."""
        return self._walk(decode_run if self.linktype == ETHERNET else None, decode_other, True)

    def _walk(
        self, fast: Callable[..., tuple[int, int, int]] | None, make: Callable[..., Any], runs: bool
    ) -> Iterator[Any]:
        """Each record, as ``make(index, ts, linktype, frame, orig_len)`` returns it (None: none),
        with, first, the runs of records that ``fast`` decodes in place (``kernel.decode_run``);
        with ``runs``, in lists."""
        source = self._source
        stats = self._stats
        path = source.path
        units = self._units
        linktype = self.linktype
        max_record = self._max_record
        unpack_header = self._record_header.unpack_from
        buf = self._rest
        size = len(buf)
        pos = 0
        index = 0
        little = self._little
        run: list[Packet] = []
        while True:
            if fast is not None:
                pos, after, cut = fast(buf, pos, index, little, units, max_record, run)
                if run:
                    stats.records = index = after
                    stats.tcp_packets += len(run)
                    stats.truncated_packets += cut
                    if runs:
                        yield run
                    else:
                        yield from run
                    run = []
            if size - pos < 16:
                buf = source.refill(buf, pos, CHUNK)
                size = len(buf)
                pos = 0
                if size < 16:
                    if size:
                        stats.truncated_tail = (
                            f"record {index}: file ends inside the 16-byte record header, after {size} bytes"
                        )
                    return
            seconds, fraction, captured, orig_len = unpack_header(buf, pos)
            if captured > max_record:
                raise CaptureError(
                    path, index, f"record header says {captured} captured bytes, over the {max_record}-byte limit"
                )
            start = pos + 16
            end = start + captured
            if end > size:
                buf = source.refill(buf, pos, max(CHUNK, 16 + captured))
                size = len(buf)
                pos = 0
                start = 16
                end = 16 + captured
                if end > size:
                    stats.truncated_tail = f"record {index}: header says {captured} bytes, file ends after {size - 16}"
                    return
            stats.records = index + 1
            item = make(index, seconds + fraction / units, linktype, buf[start:end], orig_len)
            if item is not None:
                yield [item] if runs else item
            pos = end
            index += 1


def _as_record(*record: Any) -> tuple[int, float, int, bytes, int]:
    return record  # type: ignore[return-value]
