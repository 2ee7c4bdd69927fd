"""One direction of a captured TCP connection, reassembled: each byte once, gaps kept explicit.

Offsets count from the first payload byte: ISN + 1 when the SYN was seen, otherwise the lowest
sequence number seen. 32-bit sequence numbers are unwrapped against the highest offset so far, so a
stream may cross 2**32 and still read as one straight line of offsets. Bytes that were never
captured (lost before the capture point, cut by the snap length) are a gap, never zero bytes.

Every chunk keeps the capture time it was first seen, so a codec can split a response stream into
turns by comparing them with the other direction's chunk times.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import NamedTuple

_MOD = 1 << 32
_HALF = 1 << 31
# A segment further than this beyond the highest byte seen, or before a known ISN, cannot belong
# to the connection (the largest scaled TCP window is 2**30): it is ignored, not made into a gap.
_WINDOW = 1 << 30

# What add() tells the assembler about a segment.
NEW = 0  # only bytes not seen before, starting at or after the highest byte seen
OUT_OF_ORDER = (
    1  # only new bytes, but starting before the highest byte seen (fills a hole)
)
RETRANSMITTED = 2  # at least one byte was already known
IGNORED = 3  # outside any plausible window of this connection


class Chunk(NamedTuple):
    """Bytes first seen together: ``data`` starts at ``offset``, captured at time ``ts``."""

    offset: int
    data: bytes
    ts: float


class ByteStream:
    """The reassembled bytes of one direction, streaming in; see the module comment.

    ``len(stream)`` is the number of bytes known; ``gaps`` the missing ranges below ``end``.
    With ``keep_data=False`` only the coverage is tracked (for counting), not the bytes.
    """

    __slots__ = ("_chunks", "_keep", "_known", "_ranges", "anchored", "base_seq", "end")

    def __init__(self, keep_data: bool = True) -> None:
        self.base_seq: int | None = (
            None  # sequence number of offset 0, once any is known
        )
        self.anchored = False  # True when base_seq comes from the SYN (ISN + 1)
        self.end = (
            0  # one past the highest offset any segment claimed (captured or not)
        )
        self._ranges: list[
            list[int]
        ] = []  # merged [start, end) ranges of known bytes, sorted
        self._chunks: list[Chunk] = []  # non-overlapping, sorted by offset
        self._known = 0
        self._keep = keep_data

    def __len__(self) -> int:
        return self._known

    @property
    def chunks(self) -> list[Chunk]:
        """The known bytes as ordered, non-overlapping chunks (empty when data is not kept)."""
        return self._chunks

    @property
    def gaps(self) -> list[tuple[int, int]]:
        """Missing ``(offset, length)`` ranges between offset 0 and ``end``, in order."""
        gaps = []
        pos = 0
        for start, stop in self._ranges:
            if start > pos:
                gaps.append((pos, start - pos))
            pos = stop
        if self.end > pos:
            gaps.append((pos, self.end - pos))
        return gaps

    @property
    def complete(self) -> bool:
        """True when every byte from offset 0 to ``end`` is known."""
        ranges = self._ranges
        if not ranges:
            return self.end == 0
        return len(ranges) == 1 and ranges[0][0] == 0 and ranges[0][1] == self.end

    def data(self) -> bytes:
        """The contiguous bytes from offset 0 up to the first gap (all of them when complete)."""
        parts = []
        pos = 0
        for chunk in self._chunks:
            if chunk.offset != pos:
                break
            parts.append(chunk.data)
            pos += len(chunk.data)
        return b"".join(parts)

    def anchor(self, isn: int) -> None:
        """Fix offset 0 at ``isn + 1`` (the SYN was seen), moving any bytes already held."""
        base = (isn + 1) % _MOD
        if self.base_seq is not None and base != self.base_seq:
            self._shift(-self._offset_of(base))
        self.base_seq = base
        self.anchored = True

    def offset_of(self, seq: int) -> int | None:
        """The unwrapped offset of sequence number ``seq``, or None before any is known."""
        return None if self.base_seq is None else self._offset_of(seq)

    def add(self, seq: int, payload: bytes, wire_len: int, ts: float) -> int:
        """Record a segment's payload; return NEW, OUT_OF_ORDER, RETRANSMITTED or IGNORED.

        ``wire_len`` is the payload length on the wire; when the capture holds fewer bytes the
        missing tail stays a gap.
        """
        if self.base_seq is None:
            self.base_seq = seq
        end = self.end
        off = end + ((seq - self.base_seq - end + _HALF) & (_MOD - 1)) - _HALF
        ranges = self._ranges
        # The common case: the next bytes in order.
        if off == end and (not ranges or ranges[-1][1] == end):
            if ranges:
                ranges[-1][1] = end + len(payload)
            else:
                ranges.append([end, end + len(payload)])
            self.end = end + wire_len
            self._known += len(payload)
            if self._keep and payload:
                self._chunks.append(Chunk(off, payload, ts))
            return NEW
        if off > end + _WINDOW:
            return IGNORED
        if off < 0:
            if self.anchored or off < -_WINDOW:
                return IGNORED
            self._shift(-off)
            off = 0
        return self._insert(off, payload, wire_len, ts)

    def _offset_of(self, seq: int) -> int:
        end = self.end
        return end + ((seq - self.base_seq - end + _HALF) & (_MOD - 1)) - _HALF

    def _shift(self, delta: int) -> None:
        """Move offset 0 back by ``delta`` bytes (a segment arrived before the first one seen)."""
        self.base_seq = (self.base_seq - delta) % _MOD
        self.end += delta
        for r in self._ranges:
            r[0] += delta
            r[1] += delta
        self._chunks = [Chunk(c.offset + delta, c.data, c.ts) for c in self._chunks]

    def _insert(self, off: int, payload: bytes, wire_len: int, ts: float) -> int:
        stop = off + len(payload)
        was_end = self.end
        self.end = max(was_end, off + wire_len)
        if stop == off:
            return NEW if off >= was_end else OUT_OF_ORDER
        ranges = self._ranges
        new_pieces = []
        overlapped = False
        pos = off
        i = bisect_right(ranges, [off, _MOD * _MOD]) - 1
        i = max(i, 0)
        first = i
        while i < len(ranges) and ranges[i][0] < stop:
            r_start, r_stop = ranges[i]
            if r_stop > pos:
                if r_start > pos:
                    new_pieces.append((pos, r_start))
                overlapped = True
                pos = max(pos, r_stop)
            i += 1
        if pos < stop:
            new_pieces.append((pos, stop))
        if not new_pieces:
            return RETRANSMITTED
        # Merge the segment's range with every range it touches (ranges[first:i] and neighbours).
        lo = first
        if lo < len(ranges) and ranges[lo][1] < off:
            lo += 1
        hi = i
        while hi < len(ranges) and ranges[hi][0] <= stop:
            hi += 1
        merged_start = min(off, ranges[lo][0]) if lo < hi else off
        merged_stop = max(stop, ranges[hi - 1][1]) if lo < hi else stop
        ranges[lo:hi] = [[merged_start, merged_stop]]
        for a, b in new_pieces:
            self._known += b - a
        if self._keep:
            self._store(new_pieces, off, payload, ts)
        if overlapped:
            return RETRANSMITTED
        return NEW if off >= was_end else OUT_OF_ORDER

    def _store(
        self, pieces: list[tuple[int, int]], off: int, payload: bytes, ts: float
    ) -> None:
        chunks = self._chunks
        for a, b in pieces:
            chunk = Chunk(a, payload[a - off : b - off], ts)
            if not chunks or chunks[-1].offset < a:
                chunks.append(chunk)
            else:
                chunks.insert(bisect_right(chunks, a, key=_chunk_offset), chunk)


def _chunk_offset(chunk: Chunk) -> int:
    return chunk.offset
