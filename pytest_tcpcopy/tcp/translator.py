"""SessionTranslator: one replayed client session toward the SUT, as a sans-IO state machine.

It reproduces tcpcopy's client-side TCP emulator (tc_session.c): the client's captured sequence
numbers are kept, every ack is what the SUT really sent, a new request waits until the SUT's
previous response is over, and the SUT's ISN, window, MSS and timestamps are learned from its
SYN-ACK. Where tcpcopy is weak it does better: SYN retransmission, loss recovery, acks of
contiguous data only, zero-window probes, responses judged over by their framing, captured
length or the SUT's close (silence only as the last resort, every wait bounded), and every
decision pulled by the driver through `now` and `next_timer`.

One concern per part: `_state` (states, triggers, and every flag that decides what may happen
next), `cursor` (the captured client stream), `handshake` (SYN and SYN-ACK), `receiver` (the
SUT's bytes), `recovery` (our bytes in flight), `gate` (when a response is over) and `output`
(what leaves, through the output calls `packets_to_send` and `events` only). This class feeds
them and decides when triggers fire. Positions are stream offsets (see `seq.unwrap`).
"""

from __future__ import annotations

from pytest_tcpcopy.endpoint import Endpoint
from pytest_tcpcopy.kernel.codecs import SutSegment, partial_sum
from pytest_tcpcopy.kernel.packet import ACK, FIN, PSH, RST, SYN, Packet
from pytest_tcpcopy.tcp._state import (
    CLOSING,
    ESTABLISHED,
    IDLE,
    SYN_SENT,
    WAIT_NOTHING,
    WAIT_RESPONSE,
    WAIT_WINDOW,
    SessionState,
    SessionStateMachine,
)
from pytest_tcpcopy.tcp.config import TranslatorConfig
from pytest_tcpcopy.tcp.cursor import DATA, FIN_MARK, CapturedStream
from pytest_tcpcopy.tcp.events import AbortReason, Event, RequestSent, SessionCounters, Side
from pytest_tcpcopy.tcp.gate import RequestGate
from pytest_tcpcopy.tcp.handshake import ACCEPTED, STRAY, Handshake
from pytest_tcpcopy.tcp.output import SessionOutput
from pytest_tcpcopy.tcp.receiver import Receiver
from pytest_tcpcopy.tcp.recovery import Recovery, Sent
from pytest_tcpcopy.tcp.seq import seq_add, unwrap

__all__ = ["SessionTranslator", "TranslatorConfig"]


class SessionTranslator:
    """Replays one captured client session (one copy of it) to the target.

    Feed captured client segments with `feed_client` in capture order (when the pacer says
    they are due), the SUT's segments with `feed_sut`, and call `on_timer` at `next_timer`.
    After each call, drain `packets_to_send` (IPv4 packets for the raw socket) and `events`.
    `state`, `finished` and `next_timer` only answer: the send decision `feed_sut` defers is
    made by the next input or output call, and `next_timer` reports it as due.
    """

    __slots__ = (
        "_cap", "_close_linger", "_gate", "_hs", "_idle_timeout", "_last_progress", "_out", "_pipeline", "_pump_at",
        "_rx", "_sm", "_tx", "client", "config", "copy", "counters", "session_id", "target",
    )  # fmt: skip

    def __init__(
        self, config: TranslatorConfig, client: Endpoint, target: Endpoint,
        *, session_id: int, copy: int = 0,
    ) -> None:
        self.config = config
        self.client = client
        self.target = target
        self.session_id = session_id
        self.copy = copy
        self.counters = SessionCounters()
        self._sm = SessionStateMachine()
        self._out = SessionOutput(client, target, session_id * 40503 + copy * 9973, self.counters)  # IPv4 only
        self._cap = CapturedStream(self._sm, self.counters)
        payload = bool(self.config.capture_payload)
        self._pipeline = bool(self.config.pipeline)
        self._gate = RequestGate(
            self._sm, self._out, pipeline=self._pipeline, capture_payload=payload,
            response_timeout=self.config.response_timeout, quiet_floor=self.config.quiet_floor,
        )
        self._rx = Receiver(self._sm, self._gate, self._out, self.counters, payload)
        self._tx = Recovery(self.counters, rto=self.config.rto, mss=self.config.mss)
        self._hs = Handshake(self._out, self.config.mss)
        self._idle_timeout = self.config.idle_timeout
        self._close_linger = self.config.close_linger
        self._last_progress = 0.0  # when the SUT last sent an acceptable segment
        self._pump_at: float | None = None  # `now` of a send decision feed_sut deferred

    # ----------------------------------------------------------------------------- queries

    @property
    def state(self) -> SessionState:
        return self._sm.state

    @property
    def finished(self) -> bool:
        return self._sm.terminal

    def next_timer(self) -> float | None:
        """When `on_timer` must be called next, or None when nothing is pending."""
        sm = self._sm
        if sm.terminal:
            return None
        tx = self._tx
        due = _earlier(self._pump_at, tx.rto_at)  # a deferred send decision is due at once
        due = _earlier(due, self._hs.establish_at)
        if sm.connected:
            waiting = sm.waiting_for
            if tx.inflight or waiting != WAIT_NOTHING:
                due = _earlier(due, self._last_progress + self._idle_timeout)
            if waiting == WAIT_RESPONSE and not tx.inflight:
                due = _earlier(due, self._gate.deadline(bool(self._rx.held)))
            elif sm.state is CLOSING and not self._cap.unsent and tx.snd_una == tx.snd_nxt:
                due = _earlier(due, self._last_progress + self._close_linger)
        return due

    # ----------------------------------------------------------------------------- inputs

    def feed_client(self, pkt: Packet, now: float) -> bool:
        """Take the next captured client segment (capture order).

        Returns False when the segment changed nothing that `packets_to_send`, `events` or
        `next_timer` report, so a driver may skip draining: a pure ACK once the handshake's ACK
        is known (its ack only tells the last response's length), a duplicate, a segment beyond
        a hole."""
        if self._pump_at is not None:
            self._settle()
        if self._sm.terminal or not self._cap.feed(pkt):
            return False
        self._pump(now)
        return True

    def end_of_capture(self, now: float) -> None:
        """No more client segments will come for this session."""
        if self._pump_at is not None:
            self._settle()
        sm = self._sm
        if sm.capture_done:
            return
        sm.on_capture_done()
        self._cap.end()
        if sm.state is IDLE and self._cap.isn is None:
            reason = AbortReason.NOTHING_TO_REPLAY
            self._out.events.append(sm.abort(reason, f"nothing to replay: {reason.value}"))
            return
        self._pump(now)

    def feed_sut(self, seg: SutSegment, now: float) -> None:
        """Take a segment the SUT sent to this session's client endpoint.

        What the segment lets us send is decided when an output is asked for (or any other
        input arrives), so that the SUT segments of one batch (say a response and the FIN
        right behind it) are answered together: one FIN acking both, not a FIN and an ACK.
        """
        self.counters.sut_segments += 1
        flags = seg.flags
        sm = self._sm
        if self._pump_at is not None and (flags & (SYN | RST) or not sm.connected):
            self._settle()  # only plain ACK, data and FIN segments of a connection are batched
        if sm.terminal:
            if not flags & RST:  # a late segment of a connection we released: release it again
                self._out.queue(self._out.build(seg.ack, 0, RST, 0, b""))
            self.counters.ignored_sut_segments += 1
            return
        state = sm.state
        if state is SYN_SENT:
            self._on_syn_sent_segment(seg, now)
            return
        rx = self._rx
        if state is IDLE or sm.sut_reset:
            self.counters.ignored_sut_segments += 1
            return
        if flags & SYN:
            rx.on_syn(seg)
            return
        if flags & RST:
            if rx.believes_rst(seg):
                self._on_sut_rst(now)
            return
        tx = self._tx
        if flags & ACK:
            ack = unwrap(seg.ack, self._cap.wire(0), tx.snd_una)
            if ack > tx.snd_nxt:
                self.counters.ignored_sut_segments += 1  # an ack for bytes never sent
                return
            una = tx.snd_una
            resend = tx.on_ack(ack, seg.window, not (seg.payload_len or flags & FIN), now)
            if resend is not None:
                self._retransmit(resend)
            elif tx.snd_una != una and not tx.inflight:
                self._gate.on_acked(now)
        self._last_progress = now
        self._out.echo(seg)
        if seg.payload_len or flags & FIN:
            rx.receive(seg, now)
        self._pump_at = now

    def on_timer(self, now: float) -> None:
        """Run whatever is due at ``now`` (retransmission, deadlines, the request gate)."""
        if self._pump_at is not None:
            self._settle()
        sm = self._sm
        if sm.terminal:
            return
        if self._hs.establish_at is not None and now >= self._hs.establish_at:
            self._abort(
                AbortReason.NOT_ESTABLISHED,
                f"no SYN-ACK from {self.target} within {self.config.establish_timeout} s "
                f"({1 + self.counters.retransmits} SYNs sent from {self.client})",
            )
            return
        gate = self._gate
        if (
            sm.waiting_for == WAIT_RESPONSE and not self._tx.inflight and now >= gate.timeout_at()
            and not gate.over(gate.expected, now, bool(self._rx.held), False)
        ):
            self._abort(AbortReason.RESPONSE_TIMEOUT, gate.cut(now))
            return
        idle = self._idle_timeout
        if sm.connected and (self._tx.inflight or sm.waiting_for) and now >= self._last_progress + idle:
            self._abort(AbortReason.IDLE_TIMEOUT, f"{self.target} made no progress for {self.config.idle_timeout} s")
            return
        if self._tx.rto_at is not None and now >= self._tx.rto_at:
            self._on_rto(now)
        self._pump(now)

    # ----------------------------------------------------------------------------- outputs

    def packets_to_send(self) -> list[bytes]:
        """Drain the IPv4 packets ready to send, in order."""
        if self._pump_at is not None:
            self._settle()
        if self._rx.ack_pending and self._rx.sut_isn is not None:
            self._send(self._cap.wire(self._tx.snd_nxt), ACK)
        return self._out.take_packets()

    def events(self) -> list[Event]:
        """Drain the events produced since the last call."""
        if self._pump_at is not None:
            self._settle()
        return self._out.take_events()

    # ------------------------------------------------------------------------ SUT side

    def _on_syn_sent_segment(self, seg: SutSegment, now: float) -> None:
        hs = self._hs
        answer = hs.answer(seg, self._cap.wire(hs.off))
        if answer == STRAY:
            self.counters.ignored_sut_segments += 1
        elif answer != ACCEPTED:
            self._abort(
                AbortReason.NOT_ESTABLISHED,
                f"{self.target} answered the SYN with a RST: is anything listening there?",
                send_rst=False,
            )
        else:
            self._rx.connect(seg.seq)
            self._tx.start(hs.off + 1, seg.window, hs.wscale, hs.smss)
            self._last_progress = now
            self._gate.connect(now)
            self._out.events.append(self._sm.established(hs.fake))
            self._pump(now)

    def _on_sut_rst(self, now: float) -> None:
        """The SUT reset: a close after the session, a reconnect while requests are pending,
        an abort when it reset instead of answering a request."""
        sm, tx = self._sm, self._tx
        if sm.state is CLOSING:
            self._finish(sm.closed_first or Side.CLIENT, reset=True, send_rst=False)
        elif tx.snd_una != tx.snd_nxt or any(c.kind == DATA for c in self._cap.unsent):
            self._reconnect(now, send_rst=False)
        elif tx.snd_nxt > self._hs.off + 1 and not self._gate.got:
            self._abort(
                AbortReason.SUT_RESET,
                f"{self.target} reset the connection instead of answering the request that "
                f"ends at client offset {tx.snd_nxt}",
                send_rst=False,
            )
        elif (sm.capture_done or sm.capture_closed) and not self._cap.unsent:
            self._finish(Side.SUT, reset=True, send_rst=False)
        else:
            sm.on_sut_reset_after_answers()
            self._rx.ack_pending = False
            tx.rto_at = None

    # -------------------------------------------------------------------------- sending

    def _settle(self) -> None:
        """Make the send decision feed_sut deferred, at the time of the segment that asked."""
        now, self._pump_at = self._pump_at, None
        self._pump(now)  # type: ignore[arg-type]

    def _pump(self, now: float) -> None:
        """Send whatever the state, the request gate and the SUT's window allow."""
        sm = self._sm
        state = sm.state
        if state is IDLE:
            if self._cap.isn is not None:
                self._send_syn(now)
            return
        if not sm.connected:
            return
        cap, tx = self._cap, self._tx
        unsent = cap.unsent
        if not unsent and state is ESTABLISHED and not (sm.sut_closed or sm.sut_reset or sm.capture_done or sm.gap):
            sm.wait_for(WAIT_NOTHING)
            return  # the common case while a response streams in: nothing to send or end
        if sm.sut_closed and state is ESTABLISHED and tx.snd_una != tx.snd_nxt:
            self._reconnect(now, send_rst=True)  # the SUT closed before taking our bytes
            return
        sm.wait_for(WAIT_NOTHING)
        run_off = run_len = 0
        while unsent:
            c = cap.head()
            gated = c.delta and not (self._pipeline and c.kind == DATA)
            expected = self._gate.expected_of(c.delta, c.until) if gated else None
            if gated and not self._gate.over(expected, now, bool(self._rx.held), bool(tx.inflight)):
                sm.wait_for(WAIT_RESPONSE)
                break
            if c.kind == DATA:
                if sm.sut_closed or sm.sut_reset:
                    self._flush_request_run(run_off, run_len)
                    self._reconnect(now, send_rst=not sm.sut_reset)
                    return
                room = tx.room()
                if room <= 0:
                    sm.wait_for(WAIT_WINDOW)
                    break
                new = c.delta is None or c.delta > 0
                if not run_len:
                    run_off = tx.snd_nxt
                piece, ts_val, push = cap.take_piece(min(tx.smss, room))
                self._gate.on_request(piece, now, new)
                run_len += len(piece)
                self._send_new(piece, ACK | PSH if push else ACK, now, ts_val)
            elif sm.sut_reset:
                self._finish(Side.SUT, reset=True, send_rst=False)  # nothing left to close
                return
            elif tx.snd_una != tx.snd_nxt:
                break  # FIN and RST wait until the SUT has every client byte (tcpcopy)
            elif c.kind == FIN_MARK:
                unsent.popleft()
                self._send_new(b"", ACK | FIN, now, None)
                sm.send_fin()
                break
            else:
                unsent.popleft()
                self._flush_request_run(run_off, run_len)
                self._finish(Side.CLIENT, reset=True, send_rst=True)
                return
        self._flush_request_run(run_off, run_len)
        if sm.waiting_for == WAIT_WINDOW and not tx.inflight:
            tx.arm(now)  # persist: probe the zero window
        self._maybe_end(now)

    def _maybe_end(self, now: float) -> None:
        """Close the session once the capture is exhausted, the SUT has everything, and the
        last response is over."""
        cap, tx, sm = self._cap, self._tx, self._sm
        if cap.unsent or tx.snd_una != tx.snd_nxt:
            return
        if sm.state is CLOSING:
            if sm.sut_closed:
                self._finish(sm.closed_first or Side.CLIENT, reset=False, send_rst=False)
            elif now >= self._last_progress + self._close_linger:
                self._finish(Side.CLIENT, reset=True, send_rst=True)
            return
        if not (sm.capture_done or sm.gap):
            return
        if sm.sut_reset:
            self._finish(Side.SUT, reset=True, send_rst=False)
            return
        expected = None if sm.gap else self._gate.expected_of(
            cap.last_response_length(False), cap.last_response_length(True)
        )
        if not self._gate.over(expected, now, bool(self._rx.held), bool(tx.inflight)):
            sm.wait_for(WAIT_RESPONSE)
            return
        if sm.gap:
            self._abort(
                AbortReason.CAPTURE_GAP,
                f"client stream of session {self.session_id} stops at offset "
                f"{cap.next}: the capture misses bytes after it",
            )
        elif sm.sut_closed:
            self._send_new(b"", ACK | FIN, now, None)
            sm.send_fin()
        else:
            self._finish(Side.CLIENT, reset=True, send_rst=True)

    def _send_syn(self, now: float) -> None:
        self._hs.open(self._cap.syn, -1, self._cap.wire(-1), now, self.config.establish_timeout)
        self._sm.send_syn()
        self._tx.restart(0, now)

    def _send_new(self, data: bytes, flags: int, now: float, ts_val: int | None) -> None:
        psum = partial_sum(data) if data else 0
        sent = self._tx.track(data, psum, flags, now)
        self.counters.bytes_sent += len(data)
        if ts_val is not None:
            self._out.sent_ts(ts_val)
        self._send(self._cap.wire(sent.off), flags, data, psum)

    def _retransmit(self, sent: Sent) -> None:
        self.counters.retransmits += 1
        self._send(self._cap.wire(sent.off), sent.flags, sent.data, sent.psum)

    def _on_rto(self, now: float) -> None:
        tx = self._tx
        head = tx.on_timeout(now)
        if self._sm.state is SYN_SENT:
            self.counters.retransmits += 1
            self._hs.resend()
        elif head is not None:
            self._retransmit(head)
        elif self._sm.waiting_for == WAIT_WINDOW:
            self.counters.window_probes += 1
            self._send(seq_add(self._cap.wire(tx.snd_una), -1), ACK)
        else:
            tx.rto_at = None

    def _reconnect(self, now: float, *, send_rst: bool) -> None:
        """Release the SUT's connection and resend the unacknowledged rest on a new one."""
        config, counters = self.config, self.counters
        if counters.reconnects >= config.max_reconnects:
            self._abort(
                AbortReason.TOO_MANY_RECONNECTS,
                f"{self.target} closed the connection {counters.reconnects + 1} times with "
                f"captured requests pending (max_reconnects={config.max_reconnects})",
                send_rst=send_rst,
            )
            return
        if send_rst:
            self._release()
        counters.reconnects += 1
        cap, tx, hs = self._cap, self._tx, self._hs
        resume = tx.snd_una
        hs.old_ack = self._rx.disconnect()
        cap.requeue(tx.unacked())
        tx.restart(resume, now)
        hs.open(None, resume - 1, cap.wire(resume - 1), now, config.establish_timeout)
        self._out.events.append(self._sm.reconnect(counters.reconnects, resume))

    def _flush_request_run(self, off: int, length: int) -> None:
        if length:
            self._out.events.append(RequestSent(off, length))

    # ----------------------------------------------------------------------- ending

    def _finish(self, by: Side, *, reset: bool, send_rst: bool) -> None:
        if send_rst:
            self._release()
        self._tx.stop()
        self._hs.establish_at = None
        self._out.events.append(self._sm.finish(by, reset))

    def _abort(self, reason: AbortReason, detail: str, *, send_rst: bool = True) -> None:
        if send_rst:
            self._release()
        self._rx.ack_pending = False
        self._tx.stop()
        self._hs.establish_at = None
        self._out.events.append(self._sm.abort(reason, detail))

    def _release(self) -> None:
        """RST the SUT's connection. The SUT accepts a RST only at exactly its next expected
        seq (RFC 5961), which lies somewhere in our unacknowledged range: send one at each
        segment boundary in flight so one of them hits."""
        self._rx.ack_pending = False
        cap, tx = self._cap, self._tx
        if self._sm.state is SYN_SENT:
            self._send(cap.wire(self._hs.off + 1), RST)
            return
        if self._rx.sut_isn is None or self._sm.sut_reset:
            return
        for off in [tx.snd_una] + [s.end for s in tx.inflight if s.end > tx.snd_una]:
            self._send(cap.wire(off), RST | ACK)

    def _send(self, seq: int, flags: int, payload: bytes = b"", psum: int = 0) -> None:
        rx = self._rx
        if rx.sut_isn is None:
            ack = 0
            flags &= ~ACK
        else:
            ack = rx.ack()
            rx.ack_pending = False
        self._out.segment(seq, ack, flags, payload, psum)


def _earlier(a: float | None, b: float | None) -> float | None:
    """The earlier of two deadlines (None: none)."""
    if a is None or (b is not None and b < a):
        return b
    return a
