"""Receiver: the SUT's side of one connection as the replayed client sees it.

It learns the SUT's ISN from the SYN-ACK, delivers the SUT's bytes in order (ResponseData events,
and the request gate's count of the response being read), holds what arrives beyond a hole
until the SUT fills it (so only contiguous data is acknowledged, and the SUT retransmits what the
intercept missed), notices the SUT's FIN, and says which ack our segments carry. Offsets count
from the first byte after the SUT's ISN; ResponseData offsets continue across reconnects.
"""

from __future__ import annotations

from pytest_tcpcopy.kernel.codecs import SutSegment
from pytest_tcpcopy.kernel.packet import ACK, FIN
from pytest_tcpcopy.tcp._state import SessionStateMachine
from pytest_tcpcopy.tcp.events import ResponseData, SessionCounters
from pytest_tcpcopy.tcp.gate import RequestGate
from pytest_tcpcopy.tcp.output import SessionOutput
from pytest_tcpcopy.tcp.seq import seq_add, seq_diff, unwrap

RST_WINDOW = 1 << 30  # a SUT RST is believed when its seq is this close after our ack


class Receiver:
    __slots__ = (
        "_counters", "_gate", "_isn1", "_out", "_payload", "_sm", "ack_pending", "base", "held", "nxt", "sut_isn",
    )  # fmt: skip

    def __init__(
        self, sm: SessionStateMachine, gate: RequestGate, out: SessionOutput, counters: SessionCounters,
        capture_payload: bool,
    ) -> None:
        self._sm = sm
        self._gate = gate
        self._out = out
        self._counters = counters
        self._payload = capture_payload
        self.sut_isn: int | None = None  # None: no SYN-ACK accepted on this connection (yet)
        self._isn1 = 0  # the SUT's ISN + 1, once known
        self.nxt = 0  # the next SUT byte expected
        self.base = 0  # response bytes of earlier connections (reconnects)
        self.held: dict[int, tuple[int, bytes | None, int]] = {}  # beyond a hole: offset -> (n, data, fin)
        self.ack_pending = False  # the SUT sent something our next segment must acknowledge

    def connect(self, sut_isn: int) -> None:
        """The SUT's SYN-ACK of a new connection: its bytes start after ``sut_isn``."""
        self.sut_isn = sut_isn
        self._isn1 = sut_isn + 1
        self.nxt = 0
        self.ack_pending = True  # the (fake) third ACK, unless data carries it

    def disconnect(self) -> int:
        """The connection is given up for a new one; returns our last ack on it."""
        ack = self.ack()
        self.base += self.nxt
        self.nxt = 0
        self.sut_isn = None
        self.held.clear()
        self.ack_pending = False
        return ack

    def ack(self) -> int:
        """The ack our segments carry: every contiguous SUT byte, and its FIN."""
        return seq_add(self._isn1, self.nxt + self._sm.sut_closed)

    def on_syn(self, seg: SutSegment) -> None:
        """A SYN on the established connection: the SUT repeating its SYN-ACK (our third ACK
        was lost) is acked again; anything else is ignored."""
        if seg.flags & ACK and seg.seq == self.sut_isn:
            self.ack_pending = True
            self._counters.sut_retransmits += 1
        else:
            self._counters.ignored_sut_segments += 1

    def believes_rst(self, seg: SutSegment) -> bool:
        """Whether the SUT's RST is for this connection (else it is ignored, and counted)."""
        if 0 <= seq_diff(seg.seq, self.ack()) < RST_WINDOW:
            return True
        self._counters.ignored_sut_segments += 1
        return False

    def receive(self, seg: SutSegment, now: float) -> None:
        """SUT payload and FIN: deliver in order, hold what is beyond a hole, ack either way."""
        self.ack_pending = True
        off = unwrap(seg.seq, self._isn1, self.nxt)
        fin = seg.flags & FIN
        n = seg.payload_len
        payload = seg.payload if self._payload else None
        if off + n <= self.nxt and (not fin or self._sm.sut_closed):
            self._counters.sut_retransmits += 1
            return
        if off > self.nxt:
            self.held[off] = (n, payload, fin)
            self._counters.sut_out_of_order += 1
            return
        self._deliver(off, n, payload, fin, now)
        held = self.held
        while held:
            ready = [o for o in held if o <= self.nxt]
            if not ready:
                break
            for o in sorted(ready):
                n, data, fin = held.pop(o)
                self._deliver(o, n, data, fin, now)

    def _deliver(self, off: int, n: int, data: bytes | None, fin: int, now: float) -> None:
        new = off + n - self.nxt
        if new > 0:
            if data is not None:
                data = data[n - new :] if new < n else data
            self._out.events.append(ResponseData(self.base + self.nxt, new, data))
            self.nxt += new
            self._counters.response_bytes += new
            self._gate.on_data(new, data, now)
        if fin and off + n == self.nxt and not self._sm.sut_closed:
            self._sm.on_sut_fin()
            self.held.clear()
