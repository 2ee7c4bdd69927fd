"""CapturedStream: the captured client side of one session, as the translator consumes it.

Captured segments come in capture order, with retransmissions, overlaps and reordering; they
leave as one in-order stream of chunks (client bytes, or a FIN/RST marker) not yet sent. Each
chunk carries what the capture says about the responses around it:

- ``delta``: how many more SUT bytes the real client had acknowledged than before its previous
  data segment: 0, the same request goes on; > 0, a new request, sent only once the response
  before it is over (that response's captured length); None, unknown (the first segment of a
  session captured mid-stream).
- ``until``: the same as a running total from the session's first request, for pipelining,
  where responses overlap and only totals can be compared.

The highest ack the captured client ever sent (pure ACKs and its FIN included) gives the
captured length of the last response (`last_response_length`). Offset 0 is the first byte after
the client's ISN; the wire sequence number of an offset is `wire(offset)`.
"""

from __future__ import annotations

from collections import deque

from pytest_tcpcopy.kernel.codecs import timestamp_of
from pytest_tcpcopy.kernel.packet import ACK, FIN, RST, SYN, Packet
from pytest_tcpcopy.tcp._state import SessionStateMachine
from pytest_tcpcopy.tcp.events import SessionCounters
from pytest_tcpcopy.tcp.seq import seq_add, seq_diff, unwrap

DATA, FIN_MARK, RST_MARK = 0, 1, 2  # what a chunk is


class Chunk:
    """Captured client bytes (or a FIN/RST marker) not yet sent; see the module comment."""

    __slots__ = ("data", "delta", "kind", "pos", "ts_val", "until")

    def __init__(self, data: bytes, kind: int, delta: int | None, until: int | None, ts_val: int | None) -> None:
        self.data, self.kind, self.delta, self.until, self.ts_val = data, kind, delta, until, ts_val
        self.pos = 0  # bytes of ``data`` already sent


class CapturedStream:
    __slots__ = (
        "_acked", "_base", "_counters", "_high_ack", "_prev_ack", "_sm", "baseline_ack", "held", "isn", "next",
        "syn", "unsent",
    )  # fmt: skip

    def __init__(self, sm: SessionStateMachine, counters: SessionCounters) -> None:
        self._sm = sm
        self._counters = counters
        self.isn: int | None = None
        self._base = 0  # the wire sequence number of offset 0 (ISN + 1), once the ISN is known
        self.syn: Packet | None = None
        self.baseline_ack: int | None = None  # captured ack of the handshake's third ACK
        self._prev_ack: int | None = None  # captured ack of the previous data segment
        self._high_ack: int | None = None  # the highest captured ack, of any segment
        self._acked = 0  # the deltas so far, summed (``until``)
        self.next = 0  # next captured offset expected
        self.held: dict[int, Packet] = {}  # captured segments beyond a hole
        self.unsent: deque[Chunk] = deque()

    def feed(self, pkt: Packet) -> bool:
        """Take the next captured segment; whether it changed what may be sent (False for a
        pure ACK once the handshake's ACK is known, a duplicate, a segment beyond a hole)."""
        flags = pkt.flags
        if flags & ACK and self._high_ack is not None and seq_diff(pkt.ack, self._high_ack) > 0:
            self._high_ack = pkt.ack
        if self._sm.capture_closed:
            if pkt.payload_len or flags & (SYN | FIN | RST):
                self._counters.captured_duplicates += 1  # after the captured FIN or RST
            return False
        if flags & SYN:
            if self.isn is None:
                self.isn = pkt.seq
                self._base = pkt.seq + 1
                self.syn = pkt
            else:
                self._counters.captured_duplicates += 1
            return True
        if self.isn is None:
            if not pkt.payload_len:
                return False  # a pure ACK, FIN or RST of a connection we never saw open
            self.isn = seq_add(pkt.seq, -1)
            self._base = pkt.seq
        if flags & ACK and self.baseline_ack is None and self.syn is not None:
            self.baseline_ack = pkt.ack
            if self._high_ack is None:
                self._high_ack = pkt.ack
        elif not (pkt.payload_len or flags & (FIN | RST)):
            return False  # a pure ACK: it adds nothing to the client stream
        off = unwrap(pkt.seq, self._base, self.next)
        if off > self.next:
            if not (pkt.payload_len or flags & (FIN | RST)):
                return False  # a pure ACK beyond a hole says nothing the data will not
            if off not in self.held or pkt.payload_len > self.held[off].payload_len:
                self.held[off] = pkt
                self._counters.captured_out_of_order += 1
            return False
        self._accept(pkt, off)
        held = self.held
        while held and not self._sm.capture_closed:
            ready = [o for o in held if o <= self.next]
            if not ready:
                break
            for o in sorted(ready):
                self._accept(held.pop(o), o)
        return True

    def end(self) -> None:
        """The capture has no more segments for this session: a hole left is a gap for good."""
        if self.held and not self._sm.capture_closed:
            self._sm.on_capture_gap()

    def head(self) -> Chunk:
        """The first chunk not yet sent (there must be one)."""
        return self.unsent[0]

    def take_piece(self, limit: int) -> tuple[bytes, int | None, bool]:
        """Up to ``limit`` bytes from the head of the unsent stream: one captured segment and
        the continuation segments after it (never the start of the next request), so that
        captured segments a little larger than the SUT's MSS do not become pairs of a full
        and a tiny segment. Returns the bytes, the last captured TSval and whether the piece
        ends where a captured segment ended (PSH)."""
        unsent = self.unsent
        parts: list[bytes] = []
        n = 0
        ts_val = None
        ended = False
        while unsent and n < limit:
            c = self.head()
            if c.kind != DATA or (parts and c.delta != 0):
                break
            left = len(c.data) - c.pos
            k = min(left, limit - n)
            parts.append(c.data if k == len(c.data) else c.data[c.pos : c.pos + k])
            c.delta = 0
            ts_val = c.ts_val
            n += k
            ended = k == left
            if ended:
                unsent.popleft()
            else:
                c.pos += k
        return (parts[0] if len(parts) == 1 else b"".join(parts)), ts_val, ended

    def requeue(self, pieces: list[bytes]) -> None:
        """Client bytes sent on a connection the SUT closed, to send again first on the next
        one. The old connection's pending response died with it: the next connection has
        nothing to wait for before its first bytes."""
        unsent = self.unsent
        for data in reversed(pieces):
            unsent.appendleft(Chunk(data, DATA, 0, None, None))
        if unsent and unsent[0].kind == DATA:
            unsent[0].delta = 0

    def wire(self, off: int) -> int:
        """The captured client's sequence number of stream offset ``off``."""
        return seq_add(self._base, off)

    def last_response_length(self, pipeline: bool) -> int | None:
        """The captured length of the last response: what the captured client acknowledged
        after its last data segment (with ``pipeline``, since its first request), None when
        the capture shows no acknowledgement of it (or nothing to measure it from)."""
        ref = self._prev_ack if self._prev_ack is not None else self.baseline_ack
        if ref is None or self._high_ack is None:
            return None
        length = seq_diff(self._high_ack, ref)
        if pipeline:
            length += self._acked
        return length if length > 0 else None

    def _accept(self, pkt: Packet, off: int) -> None:
        """Append an in-order (or overlapping) captured segment to the unsent stream."""
        sm = self._sm
        if sm.capture_closed:
            self._counters.captured_duplicates += 1
            return
        data = pkt.payload
        if len(data) < pkt.payload_len:
            sm.on_capture_gap()  # snapped: the rest of the segment was never captured
        skip = self.next - off
        if skip and data:
            self._counters.captured_duplicates += 1
            data = data[skip:]
        flags = pkt.flags
        if data:
            delta = self._delta(pkt)
            if delta:
                self._acked += delta
            self.unsent.append(Chunk(data, DATA, delta, self._acked, _captured_ts(pkt)))
            self._prev_ack = pkt.ack
            self.next += len(data)
        if sm.gap:
            sm.on_capture_closed()
        elif flags & FIN and off + pkt.payload_len >= self.next:
            delta = self._delta(pkt)
            self.unsent.append(Chunk(b"", FIN_MARK, delta, self._acked + (delta or 0), None))
            self.next += 1
            sm.on_capture_closed()
        elif flags & RST:
            delta = self._delta(pkt)
            self.unsent.append(Chunk(b"", RST_MARK, delta, self._acked + (delta or 0), None))
            sm.on_capture_closed()

    def _delta(self, pkt: Packet) -> int | None:
        """The ``delta`` of a chunk made from ``pkt``."""
        ref = self._prev_ack if self._prev_ack is not None else self.baseline_ack
        if ref is None:
            if self._high_ack is None and pkt.flags & ACK:
                self._high_ack = pkt.ack  # mid-stream: the first ack is where counting starts
            return None
        if not pkt.flags & ACK:
            return 0
        return max(seq_diff(pkt.ack, ref), 0)


def _captured_ts(pkt: Packet) -> int | None:
    if not pkt.options:
        return None
    ts = timestamp_of(pkt.options)
    return None if ts is None else ts[0]
