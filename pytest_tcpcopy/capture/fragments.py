"""IPv4 fragment reassembly with bounded memory.

Datagrams are keyed by (src, dst, id) (the caller reassembles one protocol, TCP). The table holds
at most ``max_datagrams`` partial datagrams and forgets any older than ``timeout`` seconds of
capture time, so memory stays bounded however long the capture. A datagram is only ever yielded
whole: overlapping fragments (other than exact duplicates), fragments cut by the snap length and
datagrams that never complete are dropped and counted in ``stats.fragments_dropped``.
"""

from __future__ import annotations

from struct import Struct

from .stats import CaptureStats

_U16 = Struct("!H")
_MAX_PIECES = 128  # a 64 KiB datagram over a 576-byte path; more is a fragmentation attack
_MAX_DATAGRAM = 65535


class _Partial:
    __slots__ = ("broken", "first_index", "first_ts", "header", "length", "pieces", "received")

    def __init__(self, index: int, ts: float) -> None:
        self.first_index = index
        self.first_ts = ts
        self.header: bytes | None = None  # IP header of the offset-0 fragment
        self.pieces: dict[int, bytes] = {}  # payload offset -> payload bytes
        self.received = 0
        self.length: int | None = None  # payload length, known once the last fragment arrives
        self.broken = False  # kept only to swallow the datagram's remaining fragments


class FragmentTable:
    def __init__(self, stats: CaptureStats, max_datagrams: int = 4096, timeout: float = 30.0) -> None:
        self._stats = stats
        self._max = max_datagrams
        self._timeout = timeout
        self._partials: dict[tuple[bytes, bytes, int], _Partial] = {}

    def add(
        self, index: int, ts: float, ip: bytes, ihl: int, total: int, frag: int, key: tuple[bytes, bytes, int]
    ) -> tuple[int, bytes] | None:
        """Take one fragment; return (first fragment's record index, whole datagram) once complete."""
        self._expire(ts)
        partial = self._partials.get(key)
        if partial is None:
            if len(self._partials) >= self._max and not self._partials.pop(next(iter(self._partials))).broken:
                self._stats.fragments_dropped += 1  # evicted the oldest to make room
            partial = self._partials[key] = _Partial(index, ts)
        if partial.broken:
            return None
        offset = (frag & 0x1FFF) << 3
        more = frag & 0x2000
        data = ip[ihl:total]
        end = offset + len(data)
        if (
            len(ip) < total  # cut by the snap length: the datagram cannot be rebuilt
            or (more and len(data) & 7)
            or end + ihl > _MAX_DATAGRAM
            or (partial.length is not None and (end > partial.length or (not more and end != partial.length)))
            or len(partial.pieces) >= _MAX_PIECES
        ):
            return self._break(partial)
        for at, piece in partial.pieces.items():
            if at < end and offset < at + len(piece):
                if at == offset and piece == data:
                    return None  # an exact duplicate
                return self._break(partial)
        if not more:
            if any(at + len(piece) > end for at, piece in partial.pieces.items()):
                return self._break(partial)
            partial.length = end
        if offset == 0:
            partial.header = ip[:ihl]
        partial.pieces[offset] = data
        partial.received += len(data)
        if partial.header is None or partial.received != partial.length:
            return None
        del self._partials[key]
        header = bytearray(partial.header)
        _U16.pack_into(header, 2, len(header) + partial.length)  # total length of the whole datagram
        header[6:8] = b"\0\0"  # no longer a fragment
        pieces = [partial.pieces[at] for at in sorted(partial.pieces)]
        return partial.first_index, b"".join([header, *pieces])

    def close(self) -> None:
        """Count every datagram still waiting for fragments as dropped."""
        self._stats.fragments_dropped += sum(not p.broken for p in self._partials.values())
        self._partials.clear()

    def _break(self, partial: _Partial) -> None:
        partial.broken = True
        partial.pieces.clear()
        self._stats.fragments_dropped += 1

    def _expire(self, now: float) -> None:
        partials = self._partials
        while partials:
            key = next(iter(partials))
            partial = partials[key]
            if partial.first_ts >= now - self._timeout:
                return
            del partials[key]
            if not partial.broken:
                self._stats.fragments_dropped += 1
