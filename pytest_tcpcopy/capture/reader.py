"""Opening a capture and streaming its TCP segments: format detection, link decoding, counting.

``open_capture`` recognises classic pcap and pcapng, plain or gzip-compressed, by their magic
bytes. Iterating a ``CaptureReader`` yields one ``Packet`` per TCP segment; everything skipped is
counted in ``reader.stats``. Memory stays flat however large the file: records are parsed out of a
chunk buffer, and only partially received IPv4 fragments are held (in a bounded table).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, NamedTuple

from ..errors import CaptureError, UsageError
from ..kernel.codecs import RUN, decode_common_frame
from .fragments import FragmentTable
from .ip import decode_frame
from .linktypes import ETHERNET, LINK_DECODERS
from .packet import Packet
from .pcap import MAGICS, ClassicPcap
from .pcapng import MAGIC as PCAPNG_MAGIC
from .pcapng import Pcapng
from .source import ByteSource
from .stats import CaptureStats


class CaptureTruncatedWarning(UserWarning):
    """The capture file ends in the middle of its last record; every record before it was read."""


class RawRecord(NamedTuple):
    """One packet record as stored in the file, before any decoding."""

    index: int  # 0-based, among packet records
    ts: float  # seconds since the epoch
    linktype: int
    data: bytes  # the captured bytes
    orig_len: int  # the frame's length on the wire


def open_capture(path: str | os.PathLike[str], *, reassemble_fragments: bool = True) -> CaptureReader:
    """Open a pcap or pcapng file (optionally gzip-compressed) for one streaming pass.

    Raises ``CaptureError`` at once for a missing, empty or non-capture file.
    """
    return CaptureReader(os.fspath(path), reassemble_fragments)


class CaptureReader:
    """One pass over a capture: iterate for ``Packet``s or call ``records()`` for raw records."""

    def __init__(self, path: str, reassemble_fragments: bool = True) -> None:
        self.path = path
        self.stats = CaptureStats()
        self._reassemble = reassemble_fragments
        self._started = False
        self._source = ByteSource(path)
        try:
            self._format = self._detect()
        except BaseException:
            self._source.close()
            raise

    def _detect(self) -> ClassicPcap | Pcapng:
        start = self._source.read(4)
        if not start:
            reason = "empty file after gzip decompression" if self._source.compressed else "empty file"
            raise CaptureError(self.path, None, reason)
        if start in MAGICS:
            return ClassicPcap(self._source, start, self.stats)
        if start == PCAPNG_MAGIC:
            return Pcapng(self._source, start, self.stats)
        raise CaptureError(self.path, None, f"not a pcap or pcapng file (it starts with 0x{start.hex()})")

    def __enter__(self) -> CaptureReader:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._source.close()

    def records(self) -> Iterator[RawRecord]:
        """The file's packet records, undecoded (any link type)."""
        make = RawRecord._make
        records = self._start().records()
        try:
            for record in records:
                yield make(record)
        finally:
            self._source.close()
        self._finish()

    def __iter__(self) -> Iterator[Packet]:
        """Every TCP segment in the file, in file order; a reassembled datagram comes where its last
        fragment was, with the first fragment's record index and the last one's timestamp."""
        return self._read(batches=False)

    def batches(self) -> Iterator[list[Packet]]:
        """The same segments in non-empty lists, as the reader decodes them (up to ``kernel.RUN``
        each): for a consumer that takes them a list at a time, without a generator step per packet."""
        return self._read(batches=True)

    def _read(self, batches: bool) -> Iterator[Any]:
        fragments = FragmentTable(self.stats) if self._reassemble else None
        decode = _GeneralDecoder(self.path, self.stats, fragments)
        form = self._start()  # checks the one-pass rule before anything is read
        try:
            if isinstance(form, ClassicPcap):
                yield from (form.packet_runs(decode) if batches else form.packets(decode))
            elif batches:
                yield from _in_lists(_decode_frames(form.records(), decode, self.stats))
            else:
                yield from _decode_frames(form.records(), decode, self.stats)
        finally:
            self._source.close()
        if fragments is not None:
            fragments.close()
        self._finish()

    def _start(self) -> ClassicPcap | Pcapng:
        """The file's format reader, once: a CaptureReader makes one pass."""
        if self._started:
            raise UsageError(f"{self.path}: a CaptureReader reads its file once; call open_capture() again")
        self._started = True
        return self._format

    def _finish(self) -> None:
        stats = self.stats
        if self._source.ended_early and stats.truncated_tail is None:
            stats.truncated_tail = f"record {stats.records}: the gzip stream ends before its end marker"
        if stats.truncated_tail is not None:
            warnings.warn(f"{self.path}: {stats.truncated_tail}", CaptureTruncatedWarning, stacklevel=3)


class _GeneralDecoder:
    """Any record to its Packet (or None, counted in ``stats``): link layer, IPv4 with options or
    fragmented, IPv6, and what is not TCP at all."""

    def __init__(self, path: str, stats: CaptureStats, fragments: FragmentTable | None) -> None:
        self.path, self.stats, self.fragments = path, stats, fragments

    def __call__(self, index: int, ts: float, linktype: int, frame: bytes, _orig_len: int) -> Packet | None:
        decode_link = LINK_DECODERS.get(linktype)
        if decode_link is None:
            raise CaptureError(self.path, index, f"unsupported link type {linktype} (supported: "
                               f"{', '.join(map(str, sorted(LINK_DECODERS)))})")  # fmt: skip
        return decode_frame(decode_link, index, ts, frame, self.stats, self.fragments)


def _in_lists(packets: Iterable[Packet], size: int = RUN) -> Iterator[list[Packet]]:
    batch: list[Packet] = []
    for pkt in packets:
        batch.append(pkt)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _decode_frames(
    records: Iterator[tuple[int, float, int, bytes, int]], decode: _GeneralDecoder, stats: CaptureStats
) -> Iterator[Packet]:
    """The Packets of records that each hold their frame (pcapng): the common case by
    ``kernel.decode_common_frame``, the rest by ``decode``."""
    fast = fast_truncated = 0  # fast-path counts, added to stats when the pass ends
    try:
        for index, ts, linktype, frame, orig_len in records:
            if linktype == ETHERNET:
                packet = decode_common_frame(index, ts, frame)
                if packet is not None:
                    fast += 1
                    fast_truncated += len(packet.payload) < packet.payload_len
                    yield packet
                    continue
            packet = decode(index, ts, linktype, frame, orig_len)
            if packet is not None:
                yield packet
    finally:
        stats.tcp_packets += fast
        stats.truncated_packets += fast_truncated
