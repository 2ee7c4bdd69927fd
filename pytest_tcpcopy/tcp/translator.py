"""SessionTranslator: one replayed client session toward the SUT, as a sans-IO state machine.

It reproduces tcpcopy's client-side TCP emulator (tc_session.c): the client's captured sequence
numbers are kept, every ack is what the SUT really sent, requests are paced by the captured acks
(a new request waits until the SUT's previous response is complete), and the SUT's ISN, window,
MSS and timestamps are learned from its SYN-ACK. Where tcpcopy is weak it does better: the SYN is
retransmitted, retransmission backs off and recovers several losses (NewReno partial acks), the
SUT's data is acked only when contiguous (so the SUT retransmits what the intercept missed),
a zero window is probed, a response is complete as soon as the captured amount arrived, and
every decision is pulled by the driver through `now` and `next_timer`.

All positions are stream offsets (see `seq.unwrap`); wire sequence numbers exist only at the
edges. Connection states change only through `_state.SessionStateMachine`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from pytest_tcpcopy.capture.packet import ACK, FIN, PSH, RST, SYN, Packet
from pytest_tcpcopy.endpoint import Endpoint
from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.tcp._state import SessionState, SessionStateMachine, Trigger
from pytest_tcpcopy.tcp.checksum import partial_sum
from pytest_tcpcopy.tcp.events import (
    Aborted,
    AbortReason,
    Closed,
    Established,
    Event,
    Reconnected,
    RequestSent,
    ResponseData,
    SessionCounters,
    Side,
)
from pytest_tcpcopy.tcp.options import (
    TIMESTAMP_OPTION_LEN,
    TcpOptions,
    mss_option,
    parse_options,
    timestamp_of,
)
from pytest_tcpcopy.tcp.seq import MASK, seq_diff, seq_ge, unwrap
from pytest_tcpcopy.tcp.wire import SegmentBuilder, SutSegment

RTO_MAX = 8.0  # seconds: the retransmission back-off stops doubling here
QUIET_MIN, QUIET_MAX = 0.001, 0.2  # clamp of the response quiet period derived from the RTT
QUIET_UNKNOWN_RTT = 0.02  # quiet period when the capture has no handshake to measure
DEFAULT_SUT_MSS = 536  # RFC 9293 3.7.1: MSS when the SYN-ACK carries none
WINDOW = 65535  # the receive window we advertise: the replay sink never runs out of room
_RST_WINDOW = 1 << 30  # a SUT RST is believed when its seq is this close after our ack

# Enum members bound to module names once: in Python 3.11 reading a member off its Enum class
# goes through the metaclass's __getattr__ hook, four times a plain attribute, on every use.
_CAPTURE_GAP = AbortReason.CAPTURE_GAP
_IDLE_TIMEOUT = AbortReason.IDLE_TIMEOUT
_NOT_ESTABLISHED = AbortReason.NOT_ESTABLISHED
_SUT_RESET = AbortReason.SUT_RESET
_TOO_MANY_RECONNECTS = AbortReason.TOO_MANY_RECONNECTS
_CLOSING = SessionState.CLOSING
_ESTABLISHED = SessionState.ESTABLISHED
_IDLE = SessionState.IDLE
_SYN_SENT = SessionState.SYN_SENT
_CLIENT = Side.CLIENT
_SUT = Side.SUT
_ABORT = Trigger.ABORT
_FINISH = Trigger.FINISH
_RECONNECT = Trigger.RECONNECT
_SEND_FIN = Trigger.SEND_FIN
_SEND_SYN = Trigger.SEND_SYN
_SYN_ACK = Trigger.SYN_ACK

_DATA, _FIN, _RST = 0, 1, 2


@dataclass(frozen=True)  # compiled, a Cython dataclass (translator.pxd), read by C field access
class TranslatorConfig:
    pipeline: bool = False  # tcpcopy -W: send requests without waiting for responses
    mss: int = 1460  # MSS in fake SYNs, and the largest segment we send
    rto: float = 0.2  # initial retransmission timeout (s), doubled per timeout up to RTO_MAX
    establish_timeout: float = 3.0  # no SYN-ACK by then: Aborted(NOT_ESTABLISHED)
    idle_timeout: float = 60.0  # no SUT progress while waiting on it: Aborted(IDLE_TIMEOUT)
    response_quiet: float | None = None  # silence ending a response; None: captured RTT, clamped
    capture_payload: bool = False  # report SUT payload bytes in ResponseData (when present)
    max_reconnects: int = 3
    close_linger: float = 1.0  # how long to wait for the SUT's close (or a last response)

    def __post_init__(self) -> None:
        if not 64 <= self.mss <= 65495:
            raise UsageError(f"TranslatorConfig.mss={self.mss}: expected 64..65495")
        for name in ("rto", "establish_timeout", "idle_timeout", "close_linger"):
            if not getattr(self, name) > 0:
                raise UsageError(f"TranslatorConfig.{name}={getattr(self, name)}: expected > 0")
        if self.response_quiet is not None and self.response_quiet < 0:
            raise UsageError(f"TranslatorConfig.response_quiet={self.response_quiet}: expected >= 0")
        if self.max_reconnects < 0:
            raise UsageError(f"TranslatorConfig.max_reconnects={self.max_reconnects}: expected >= 0")


class _Chunk:
    """Captured client bytes (or a FIN/RST marker) not yet sent, in stream order.

    ``delta`` is how many more SUT bytes the real client had acknowledged than before its
    previous data segment (0: same request continues; > 0: a new request that waits for the
    response; None: unknown, the first segment of a session captured mid-stream).
    """

    __slots__ = ("data", "delta", "kind", "pos", "ts_val")

    def __init__(self, data: bytes, kind: int, delta: int | None, ts_val: int | None) -> None:
        self.data, self.kind, self.delta, self.ts_val = data, kind, delta, ts_val
        self.pos = 0  # bytes of ``data`` already sent


class _Sent:
    """A segment in flight: kept until the SUT acks it, for retransmission."""

    __slots__ = ("data", "end", "flags", "off", "psum")

    def __init__(self, off: int, data: bytes, psum: int, flags: int) -> None:
        self.off, self.data, self.psum, self.flags = off, data, psum, flags
        self.end = off + len(data) + (flags & FIN)


class SessionTranslator:
    """Replays one captured client session (one copy of it) to the target.

    Feed captured client segments with `feed_client` in capture order (when the pacer says
    they are due), the SUT's segments with `feed_sut`, and call `on_timer` at `next_timer`.
    After each call, drain `packets_to_send` (IPv4 packets for the raw socket) and `events`.
    """

    # Slots: with this many attributes an instance dict stops sharing its keys, and every
    # attribute access on the per-segment path becomes a dict lookup.
    __slots__ = (
        "_ack_pending", "_baseline_ack", "_builder", "_cap_closed", "_cap_next", "_capture_done",
        "_closed_first", "_dupacks", "_establish_at", "_events", "_fake_syn", "_gap",
        "_gate_blocked", "_held", "_inflight", "_ip_id", "_isn", "_last_full", "_last_progress",
        "_last_sut_data", "_linger_at", "_old_ack", "_out", "_prev_cap_ack", "_pump_at", "_quiet",
        "_rcv_mss", "_rcv_nxt", "_reconnects", "_recover", "_resp_base", "_resp_since_req", "_rto",
        "_rto_at", "_sm", "_smss", "_snd_nxt", "_snd_una", "_snd_wnd", "_sut_fin", "_sut_held",
        "_sut_isn", "_sut_reset", "_sut_ws", "_syn", "_syn_bytes", "_syn_off", "_syn_opts",
        "_ts_last", "_ts_ok", "_ts_recent", "_unsent", "_window_blocked", "client", "config",
        "copy", "counters", "session_id", "target",
    )

    def __init__(
        self, config: TranslatorConfig, client: Endpoint, target: Endpoint,
        *, session_id: int, copy: int = 0,
    ) -> None:
        if len(target.addr) != 4 or len(client.addr) != 4:  # not .is_ipv6: a Python-level call
            raise UsageError(
                f"cannot replay {client} -> {target}: only IPv4 targets and client addresses "
                "are implemented; give an IPv4 target and an IPv4 client network"
            )
        self.config = config
        self.client = client
        self.target = target
        self.session_id = session_id
        self.copy = copy
        self.counters = SessionCounters()
        self._sm = SessionStateMachine()
        self._builder = SegmentBuilder(client, target)
        self._out: list[bytes] = []
        self._events: list[Event] = []
        self._ip_id = (session_id * 40503 + copy * 9973) & 0xFFFF
        # Captured client stream. Offset 0 is the first byte after the client's ISN.
        self._isn: int | None = None
        self._syn: Packet | None = None
        self._syn_opts: TcpOptions | None = None  # the captured SYN's options, once sent
        self._baseline_ack: int | None = None  # captured ack of the handshake's third ACK
        self._prev_cap_ack: int | None = None  # captured ack of the previous data segment
        self._cap_next = 0  # next captured offset expected
        self._held: dict[int, Packet] = {}  # captured segments beyond a gap
        self._unsent: deque[_Chunk] = deque()
        self._cap_closed = False  # a captured FIN or RST is queued; later bytes are moot
        self._capture_done = False
        self._gap = False  # the capture misses client bytes: the stream stops there
        self._quiet = config.response_quiet if config.response_quiet is not None else None
        # Sending toward the SUT.
        self._snd_una = 0
        self._snd_nxt = 0
        self._inflight: deque[_Sent] = deque()
        self._snd_wnd = 0
        self._sut_ws = 0
        self._smss = config.mss
        self._fake_syn = False
        self._syn_bytes = b""
        self._syn_off = -1
        self._rto = config.rto
        self._rto_at: float | None = None
        self._recover: int | None = None
        self._dupacks = 0
        self._establish_at: float | None = None
        self._window_blocked = False
        self._reconnects = 0
        self._closed_first: Side | None = None
        self._old_ack: int | None = None  # our last ack on the connection a reconnect replaced
        # Receiving from the SUT. Offset 0 is the first byte after the SUT's ISN.
        self._sut_isn: int | None = None
        self._rcv_nxt = 0
        self._resp_base = 0  # response bytes of earlier connections (reconnects)
        self._sut_held: dict[int, tuple[int, bytes | None, int]] = {}
        self._sut_fin = False
        self._sut_reset = False  # the SUT reset after answering: the next request reconnects
        self._ack_pending = False
        self._rcv_mss = config.mss
        # Timestamps (RFC 7323), used when both SYN and SYN-ACK carried them.
        self._ts_ok = False
        self._ts_recent = 0  # the SUT's latest TSval: our TSecr
        self._ts_last = 0  # our latest TSval: never goes back
        # The request gate and the timers it needs.
        self._resp_since_req = 0
        self._last_sut_data = 0.0
        self._last_full = False
        self._gate_blocked = False
        self._last_progress = 0.0
        self._linger_at: float | None = None
        # `now` of a send decision that feed_sut deferred (see `_settle`), or None.
        self._pump_at: float | None = None

    # ----------------------------------------------------------------------------- inputs

    @property
    def state(self) -> SessionState:
        if self._pump_at is not None:
            self._settle()
        return self._sm.state

    @property
    def finished(self) -> bool:
        if self._pump_at is not None:
            self._settle()
        return self._sm.terminal

    def feed_client(self, pkt: Packet, now: float) -> bool:
        """Take the next captured client segment (capture order).

        Returns False when the segment changed nothing that `packets_to_send`, `events` or
        `next_timer` report, so a driver may skip draining: a pure ACK once the handshake's
        ACK is known (tcpcopy drops those as well; this translator makes its own acks, and
        whatever a later moment could release, the timers release at their deadlines).
        """
        if pkt is None:  # compiled, the field reads below would crash on it
            raise TypeError("feed_client() takes a Packet, not None")
        if self._pump_at is not None:
            self._settle()
        if self._sm.terminal:
            return False
        if self._cap_closed:
            self.counters.captured_duplicates += 1  # after the captured FIN or RST
            return False
        flags = pkt.flags
        if flags & SYN:
            if self._isn is None:
                self._isn = pkt.seq
                self._syn = pkt
            else:
                self.counters.captured_duplicates += 1
            self._pump(now)
            return True
        if self._isn is None:
            if not pkt.payload_len:
                return False  # a pure ACK, FIN or RST of a connection we never saw open
            self._isn = (pkt.seq - 1) & MASK
        if flags & ACK and self._baseline_ack is None and self._syn is not None:
            self._baseline_ack = pkt.ack
            if self._quiet is None:
                rtt = pkt.ts - self._syn.ts
                self._quiet = min(max(rtt, QUIET_MIN), QUIET_MAX)
        elif not (pkt.payload_len or flags & (FIN | RST)):
            return False  # a pure ACK: it adds nothing to the client stream
        off = unwrap(pkt.seq, self._isn + 1, self._cap_next)
        if off > self._cap_next:
            if not (pkt.payload_len or flags & (FIN | RST)):
                return False  # a pure ACK beyond a hole says nothing the data will not
            if off not in self._held or pkt.payload_len > self._held[off].payload_len:
                self._held[off] = pkt
                self.counters.captured_out_of_order += 1
            return False
        self._accept_captured(pkt, off)
        while self._held and not self._cap_closed:
            ready = [o for o in self._held if o <= self._cap_next]
            if not ready:
                break
            for o in sorted(ready):
                self._accept_captured(self._held.pop(o), o)
        self._pump(now)
        return True

    def end_of_capture(self, now: float) -> None:
        """No more client segments will come for this session."""
        if self._pump_at is not None:
            self._settle()
        if self._capture_done:
            return
        self._capture_done = True
        if self._held and not self._cap_closed:
            self._gap = True
        if self._sm.state is _IDLE and self._isn is None:
            self._sm.fire(_FINISH)
            self._events.append(Closed(by=_CLIENT, reset=False))
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
        if self._pump_at is not None and (flags & (SYN | RST) or not self._sm.connected):
            self._settle()  # only plain ACK, data and FIN segments of a connection are batched
        state = self._sm.state
        if self._sm.terminal:
            if not flags & RST:  # a late segment of a connection we released: release it again
                self._emit_raw(seg.ack, 0, RST)
            self.counters.ignored_sut_segments += 1
            return
        if state is _SYN_SENT:
            self._on_syn_sent_segment(seg, now)
            return
        if state is _IDLE:
            self.counters.ignored_sut_segments += 1
            return
        assert self._sut_isn is not None
        if self._sut_reset:
            self.counters.ignored_sut_segments += 1
            return
        if flags & SYN:
            if flags & ACK and seg.seq == self._sut_isn:
                self._ack_pending = True  # our third ACK was lost: the SUT repeats its SYN-ACK
                self.counters.sut_retransmits += 1
            else:
                self.counters.ignored_sut_segments += 1
            return
        if flags & RST:
            rcv_wire = (self._sut_isn + 1 + self._rcv_nxt + self._sut_fin) & MASK
            if 0 <= seq_diff(seg.seq, rcv_wire) < _RST_WINDOW:
                self._on_sut_rst(now)
            else:
                self.counters.ignored_sut_segments += 1
            return
        if flags & ACK and not self._on_ack(seg, now):
            self.counters.ignored_sut_segments += 1
            return
        self._last_progress = now
        if self._ts_ok and seg.has_ts and seq_ge(seg.ts_val, self._ts_recent):
            self._ts_recent = seg.ts_val
        if seg.payload_len or flags & FIN:
            self._receive(seg, now)
        self._pump_at = now

    def next_timer(self) -> float | None:
        """When `on_timer` must be called next, or None when nothing is pending."""
        if self._pump_at is not None:
            self._settle()
        sm = self._sm
        if sm.terminal:
            return None
        # The earliest of the armed deadlines; written out because it runs after every input.
        due = self._rto_at
        linger_at = self._linger_at
        for t in (self._establish_at, linger_at):
            if t is not None and (due is None or t < due):
                due = t
        gate_blocked = self._gate_blocked
        if sm.connected and (self._inflight or gate_blocked or self._window_blocked):
            t = self._last_progress + self.config.idle_timeout
            if due is None or t < due:
                due = t
        if (
            (gate_blocked or (linger_at is not None and sm.state is _ESTABLISHED))
            and self._resp_since_req and not self._sut_held
        ):
            t = self._last_sut_data + self._quiet_period()
            if due is None or t < due:
                due = t
        return due

    def on_timer(self, now: float) -> None:
        """Run whatever is due at ``now`` (retransmission, deadlines, the response gate)."""
        if self.finished:  # settles a deferred send decision first
            return
        if self._establish_at is not None and now >= self._establish_at:
            self._abort(
                _NOT_ESTABLISHED,
                f"no SYN-ACK from {self.target} within {self.config.establish_timeout} s "
                f"({1 + self.counters.retransmits} SYNs sent from {self.client})",
            )
            return
        if self._waiting_on_sut() and now >= self._last_progress + self.config.idle_timeout:
            self._abort(
                _IDLE_TIMEOUT,
                f"{self.target} made no progress for {self.config.idle_timeout} s",
            )
            return
        if self._rto_at is not None and now >= self._rto_at:
            self._on_rto(now)
        self._pump(now)

    def packets_to_send(self) -> list[bytes]:
        """Drain the IPv4 packets ready to send, in order."""
        if self._pump_at is not None:
            self._settle()
        if self._ack_pending and self._sut_isn is not None:
            self._send(self._wire(self._snd_nxt), ACK)
        out, self._out = self._out, []
        return out

    def events(self) -> list[Event]:
        """Drain the events produced since the last call."""
        if self._pump_at is not None:
            self._settle()
        out, self._events = self._events, []
        return out

    # --------------------------------------------------------------------- captured side

    def _accept_captured(self, pkt: Packet, off: int) -> None:
        """Append an in-order (or overlapping) captured segment to the unsent stream."""
        if self._cap_closed:
            self.counters.captured_duplicates += 1
            return
        data = pkt.payload
        if len(data) < pkt.payload_len:
            self._gap = True  # snapped: the rest of the segment was never captured
        skip = self._cap_next - off
        if skip and data:
            self.counters.captured_duplicates += 1
            data = data[skip:]
        flags = pkt.flags
        if data:
            self._unsent.append(
                _Chunk(data, _DATA, self._delta(pkt), self._captured_ts(pkt))
            )
            self._prev_cap_ack = pkt.ack
            self._cap_next += len(data)
        if self._gap:
            self._cap_closed = True
        elif flags & FIN and off + pkt.payload_len >= self._cap_next:
            self._unsent.append(_Chunk(b"", _FIN, self._delta(pkt), None))
            self._cap_next += 1
            self._cap_closed = True
        elif flags & RST:
            self._unsent.append(_Chunk(b"", _RST, self._delta(pkt), None))
            self._cap_closed = True

    def _delta(self, pkt: Packet) -> int | None:
        ref = self._prev_cap_ack if self._prev_cap_ack is not None else self._baseline_ack
        if ref is None:
            return None
        if not pkt.flags & ACK:
            return 0
        return max(seq_diff(pkt.ack, ref), 0)

    def _captured_ts(self, pkt: Packet) -> int | None:
        if not pkt.options:
            return None
        ts = timestamp_of(pkt.options)
        return None if ts is None else ts[0]

    # ------------------------------------------------------------------------ SUT side

    def _on_syn_sent_segment(self, seg: SutSegment, now: float) -> None:
        syn_ack_wire = (self._wire(self._syn_off) + 1) & MASK
        flags = seg.flags
        if flags & RST:
            if seg.seq == self._old_ack:
                self.counters.ignored_sut_segments += 1  # the previous connection's reset
            elif flags & ACK and seg.ack == syn_ack_wire:
                self._abort(
                    _NOT_ESTABLISHED,
                    f"{self.target} answered the SYN with a RST: is anything listening there?",
                    send_rst=False,
                )
            else:
                self.counters.ignored_sut_segments += 1
            return
        if flags & (SYN | ACK) != SYN | ACK or seg.ack != syn_ack_wire:
            self.counters.ignored_sut_segments += 1  # e.g. a late segment of the old connection
            return
        opts = parse_options(seg.options)
        ours = None if self._fake_syn else self._syn_opts
        self._sut_isn = seg.seq
        self._rcv_nxt = 0
        self._sut_ws = opts.wscale if ours and ours.wscale is not None and opts.wscale is not None else 0
        self._ts_ok = bool(ours and ours.ts_val is not None and opts.ts_val is not None)
        if self._ts_ok:
            self._ts_recent = opts.ts_val or 0
        self._smss = min(opts.mss or DEFAULT_SUT_MSS, self.config.mss)
        if self._ts_ok:
            self._smss -= TIMESTAMP_OPTION_LEN
        self._snd_una = self._snd_nxt = self._syn_off + 1
        self._snd_wnd = seg.window  # never scaled in a SYN segment
        self._rto = self.config.rto
        self._rto_at = self._establish_at = None
        self._ack_pending = True  # the (fake) third ACK, unless data carries it
        self._last_progress = now
        self._resp_since_req = 0
        self._sm.fire(_SYN_ACK)
        self._events.append(Established(fake_syn=self._fake_syn))
        self._pump(now)

    def _on_ack(self, seg: SutSegment, now: float) -> bool:
        """Process the SUT's ack and window; False when the ack is for bytes never sent."""
        ack = unwrap(seg.ack, self._isn + 1, self._snd_una)  # type: ignore[operator]
        if ack > self._snd_nxt:
            return False
        window = seg.window << self._sut_ws
        if ack > self._snd_una:
            self._snd_una = ack
            inflight = self._inflight
            while inflight and inflight[0].end <= ack:
                inflight.popleft()
            self._dupacks = 0
            self._rto = self.config.rto
            self._rto_at = now + self._rto if inflight else None
            if self._recover is not None:
                if ack < self._recover and inflight:
                    self._retransmit(inflight[0])  # NewReno partial ack: the next hole
                else:
                    self._recover = None
        elif (
            ack == self._snd_una and self._inflight and not seg.payload_len
            and not seg.flags & FIN and window == self._snd_wnd
        ):
            self._dupacks += 1
            self.counters.dup_acks += 1
            if self._dupacks == 3 and self._recover is None:
                self.counters.fast_retransmits += 1
                self._recover = self._snd_nxt
                self._retransmit(self._inflight[0])
        if ack >= self._snd_una:
            self._snd_wnd = window
        return True

    def _receive(self, seg: SutSegment, now: float) -> None:
        """SUT payload and FIN: deliver in order, hold what is beyond a hole, ack either way."""
        self._ack_pending = True
        off = unwrap(seg.seq, self._sut_isn + 1, self._rcv_nxt)  # type: ignore[operator]
        fin = seg.flags & FIN
        n = seg.payload_len
        payload = seg.payload if self.config.capture_payload else None
        if off + n <= self._rcv_nxt and (not fin or self._sut_fin):
            self.counters.sut_retransmits += 1
            return
        if off > self._rcv_nxt:
            self._sut_held[off] = (n, payload, fin)
            self.counters.sut_out_of_order += 1
            return
        self._deliver(off, n, payload, fin, now)
        held = self._sut_held
        while held:
            ready = [o for o in held if o <= self._rcv_nxt]
            if not ready:
                break
            for o in sorted(ready):
                n, data, fin = held.pop(o)
                self._deliver(o, n, data, fin, now)

    def _deliver(self, off: int, n: int, data: bytes | None, fin: int, now: float) -> None:
        new = off + n - self._rcv_nxt
        if new > 0:
            if data is not None:
                data = data[n - new :] if new < n else data
            self._events.append(ResponseData(self._resp_base + self._rcv_nxt, new, data))
            self._rcv_nxt += new
            self._resp_since_req += new
            self.counters.response_bytes += new
            self._last_sut_data = now
            self._last_full = n >= self._rcv_mss - TIMESTAMP_OPTION_LEN
        if fin and off + n == self._rcv_nxt and not self._sut_fin:
            self._sut_fin = True
            self._sut_held.clear()
            if self._closed_first is None:
                self._closed_first = _SUT

    def _on_sut_rst(self, now: float) -> None:
        """The SUT reset: a close after the session, a reconnect while requests are pending,
        an abort when it reset instead of answering a request."""
        if self._sm.state is _CLOSING:
            self._finish(self._closed_first or _CLIENT, reset=True, send_rst=False)
        elif self._snd_una != self._snd_nxt or any(c.kind == _DATA for c in self._unsent):
            self._reconnect(now, send_rst=False)
        elif self._snd_nxt > self._syn_off + 1 and not self._resp_since_req:
            self._abort(
                _SUT_RESET,
                f"{self.target} reset the connection instead of answering the request that "
                f"ends at client offset {self._snd_nxt}",
                send_rst=False,
            )
        elif self._client_done():
            self._finish(_SUT, reset=True, send_rst=False)
        else:
            self._sut_reset = True
            self._ack_pending = False
            self._rto_at = None

    # -------------------------------------------------------------------------- sending

    def _settle(self) -> None:
        """Make the send decision feed_sut deferred, at the time of the segment that asked."""
        now, self._pump_at = self._pump_at, None
        self._pump(now)  # type: ignore[arg-type]

    def _pump(self, now: float) -> None:
        """Send whatever the state, the request gate and the SUT's window allow."""
        state = self._sm.state
        if state is _IDLE:
            if self._isn is not None:
                self._send_syn(now)
            return
        if not self._sm.connected:
            return
        if not self._unsent and state is _ESTABLISHED and not (
            self._sut_fin or self._sut_reset or self._capture_done or self._gap
        ):
            self._gate_blocked = self._window_blocked = False
            return  # the common case while a response streams in: nothing to send or end
        if self._sut_fin and state is _ESTABLISHED and self._snd_una != self._snd_nxt:
            self._reconnect(now, send_rst=True)  # the SUT closed before taking our bytes
            return
        self._gate_blocked = self._window_blocked = False
        run_off = run_len = 0
        unsent = self._unsent
        while unsent:
            c = unsent[0]
            gated = c.delta and not (self.config.pipeline and c.kind == _DATA)
            if gated and not self._response_complete(c.delta, now):
                self._gate_blocked = True
                break
            if c.kind == _DATA:
                if self._sut_fin or self._sut_reset:
                    self._flush_request_run(run_off, run_len)
                    self._reconnect(now, send_rst=not self._sut_reset)
                    return
                room = self._snd_una + self._snd_wnd - self._snd_nxt
                if room <= 0:
                    self._window_blocked = True
                    break
                if c.delta is None or c.delta > 0:
                    self._resp_since_req = 0  # a new request: its response starts now
                if not run_len:
                    run_off = self._snd_nxt
                piece, ts_val, push = self._take_piece(min(self._smss, room))
                run_len += len(piece)
                self._send_new(piece, ACK | PSH if push else ACK, now, ts_val)
            elif self._sut_reset:
                self._finish(_SUT, reset=True, send_rst=False)  # nothing left to close
                return
            elif self._snd_una != self._snd_nxt:
                break  # FIN and RST wait until the SUT has every client byte (tcpcopy)
            elif c.kind == _FIN:
                unsent.popleft()
                self._send_new(b"", ACK | FIN, now, None)
                if self._closed_first is None:
                    self._closed_first = _CLIENT
                self._sm.fire(_SEND_FIN)
                break
            else:
                unsent.popleft()
                self._flush_request_run(run_off, run_len)
                self._finish(_CLIENT, reset=True, send_rst=True)
                return
        self._flush_request_run(run_off, run_len)
        if self._window_blocked and not self._inflight and self._rto_at is None:
            self._rto_at = now + self._rto  # persist: probe the zero window
        self._maybe_end(now)

    def _take_piece(self, limit: int) -> tuple[bytes, int | None, bool]:
        """Up to ``limit`` bytes from the head of the unsent stream: one captured segment and
        the continuation segments after it (never the start of the next request), so that
        captured segments a little larger than the SUT's MSS do not become pairs of a full
        and a tiny segment. Returns the bytes, the last captured TSval and whether the piece
        ends where a captured segment ended (PSH)."""
        unsent = self._unsent
        parts: list[bytes] = []
        n = 0
        ts_val = None
        ended = False
        while unsent and n < limit:
            c = unsent[0]
            if c.kind != _DATA or (parts and c.delta != 0):
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

    def _response_complete(self, expected: int, now: float) -> bool:
        """Whether the SUT's response to the last request looks complete (tcpcopy's
        quiet-period rule, plus: the captured amount of response bytes arrived)."""
        got = self._resp_since_req
        if self._sut_fin:
            return True
        if not got or self._sut_held:
            return False  # nothing yet, or a hole the SUT will fill
        return got >= expected or now >= self._last_sut_data + self._quiet_period()

    def _quiet_period(self) -> float:
        quiet = self._quiet if self._quiet is not None else QUIET_UNKNOWN_RTT
        return 2 * quiet if self._last_full else quiet

    def _maybe_end(self, now: float) -> None:
        """Close the session once the capture is exhausted and the SUT has everything."""
        if self._unsent or self._snd_una != self._snd_nxt:
            self._linger_at = None
            return
        state = self._sm.state
        if state is _CLOSING:
            if self._sut_fin:
                self._finish(self._closed_first or _CLIENT, reset=False, send_rst=False)
            elif self._lingered(now):
                self._finish(_CLIENT, reset=True, send_rst=True)
            return
        if not (self._capture_done or self._gap):
            return
        if self._sut_reset:
            self._finish(_SUT, reset=True, send_rst=False)
        elif self._gap:
            if self._sut_fin or self._last_response_done(now) or self._lingered(now):
                self._abort(
                    _CAPTURE_GAP,
                    f"client stream of session {self.session_id} stops at offset "
                    f"{self._cap_next}: the capture misses bytes after it",
                )
        elif self._sut_fin:
            self._send_new(b"", ACK | FIN, now, None)
            self._sm.fire(_SEND_FIN)
        elif self._last_response_done(now) or self._lingered(now):
            self._finish(_CLIENT, reset=True, send_rst=True)

    def _last_response_done(self, now: float) -> bool:
        return (
            bool(self._resp_since_req) and not self._sut_held
            and now >= self._last_sut_data + self._quiet_period()
        )

    def _lingered(self, now: float) -> bool:
        """Whether the SUT has been silent for close_linger while the session waits to end."""
        self._linger_at = self._last_progress + self.config.close_linger
        return now >= self._linger_at

    def _waiting_on_sut(self) -> bool:
        return self._sm.connected and bool(
            self._inflight or self._gate_blocked or self._window_blocked
        )

    def _send_syn(self, now: float) -> None:
        self._syn_off = -1
        syn = self._syn
        if syn is not None and not self._fake_syn:
            opts = syn.options
            parsed = self._syn_opts = parse_options(opts)
            if parsed.ts_val is not None:
                self._ts_last = parsed.ts_val
            self._rcv_mss = parsed.mss or DEFAULT_SUT_MSS
            self._syn_bytes = self._build(syn.seq, 0, SYN, syn.window, opts, b"", 0)
        else:
            self._fake_syn = True
            self._rcv_mss = self.config.mss
            self._syn_bytes = self._build(
                self._wire(self._syn_off), 0, SYN, WINDOW, mss_option(self.config.mss), b"", 0
            )
        self._out.append(self._syn_bytes)
        self.counters.packets_sent += 1
        self._sm.fire(_SEND_SYN)
        self._establish_at = now + self.config.establish_timeout
        self._rto = self.config.rto
        self._rto_at = now + self._rto

    def _send_new(self, data: bytes, flags: int, now: float, ts_val: int | None) -> None:
        psum = partial_sum(data) if data else 0
        sent = _Sent(self._snd_nxt, data, psum, flags)
        self._inflight.append(sent)
        self._snd_nxt = sent.end
        self.counters.bytes_sent += len(data)
        if ts_val is not None and self._ts_ok and seq_ge(ts_val, self._ts_last):
            self._ts_last = ts_val
        self._send(self._wire(sent.off), flags, data, psum)
        if self._rto_at is None:
            self._rto_at = now + self._rto

    def _retransmit(self, sent: _Sent) -> None:
        self.counters.retransmits += 1
        self._send(self._wire(sent.off), sent.flags, sent.data, sent.psum)

    def _on_rto(self, now: float) -> None:
        self.counters.rto_timeouts += 1
        self._rto = min(self._rto * 2, max(RTO_MAX, self.config.rto))
        state = self._sm.state
        if state is _SYN_SENT:
            self.counters.retransmits += 1
            self._out.append(self._syn_bytes)
            self.counters.packets_sent += 1
        elif self._inflight:
            self._recover = self._snd_nxt
            self._dupacks = 0
            self._retransmit(self._inflight[0])
        elif self._window_blocked:
            self.counters.window_probes += 1
            self._send((self._wire(self._snd_una) - 1) & MASK, ACK)
        else:
            self._rto_at = None
            return
        self._rto_at = now + self._rto

    def _reconnect(self, now: float, *, send_rst: bool) -> None:
        """Release the SUT's connection and resend the unacknowledged rest on a new one."""
        if self._reconnects >= self.config.max_reconnects:
            self._abort(
                _TOO_MANY_RECONNECTS,
                f"{self.target} closed the connection {self._reconnects + 1} times with "
                f"captured requests pending (max_reconnects={self.config.max_reconnects})",
                send_rst=send_rst,
            )
            return
        if send_rst:
            self._release()
        self._reconnects += 1
        self.counters.reconnects += 1
        resume = self._snd_una
        self._old_ack = (self._sut_isn + 1 + self._rcv_nxt + self._sut_fin) & MASK  # type: ignore[operator]
        for sent in reversed(self._inflight):  # only data: FIN is sent once all is acked
            if sent.end > resume:
                self._unsent.appendleft(_Chunk(sent.data[max(resume - sent.off, 0) :], _DATA, 0, None))
        if self._unsent and self._unsent[0].kind == _DATA:
            # The old connection's pending response died with it: a new connection has nothing
            # to wait for before its first request.
            self._unsent[0].delta = 0
        self._inflight.clear()
        self._snd_nxt = resume
        self._resp_base += self._rcv_nxt
        self._rcv_nxt = 0
        self._sut_isn = None
        self._sut_held.clear()
        self._sut_fin = self._sut_reset = False
        self._closed_first = None
        self._ts_ok = False
        self._ack_pending = False
        self._recover = None
        self._dupacks = 0
        self._snd_wnd = 0
        self._fake_syn = True
        self._sm.fire(_RECONNECT)
        self._syn_off = resume - 1
        self._rcv_mss = self.config.mss
        self._syn_bytes = self._build(
            self._wire(self._syn_off), 0, SYN, WINDOW, mss_option(self.config.mss), b"", 0
        )
        self._out.append(self._syn_bytes)
        self.counters.packets_sent += 1
        self._establish_at = now + self.config.establish_timeout
        self._rto = self.config.rto
        self._rto_at = now + self._rto
        self._events.append(Reconnected(attempt=self._reconnects, resume_offset=resume))

    def _flush_request_run(self, off: int, length: int) -> None:
        if length:
            self._events.append(RequestSent(off, length))

    # ----------------------------------------------------------------------- ending

    def _finish(self, by: Side, *, reset: bool, send_rst: bool) -> None:
        if send_rst:
            self._release()
        self._stop_timers()
        self._sm.fire(_FINISH)
        self._events.append(Closed(by=by, reset=reset))

    def _abort(self, reason: AbortReason, detail: str, *, send_rst: bool = True) -> None:
        if send_rst:
            self._release()
        self._ack_pending = False
        self._stop_timers()
        self._sm.fire(_ABORT)
        self._events.append(Aborted(reason=reason, detail=detail))

    def _stop_timers(self) -> None:
        self._rto_at = self._establish_at = self._linger_at = None
        self._gate_blocked = self._window_blocked = False
        self._inflight.clear()

    def _release(self) -> None:
        """RST the SUT's connection. The SUT accepts a RST only at exactly its next expected
        seq (RFC 5961), which lies somewhere in our unacknowledged range: send one at each
        segment boundary in flight so one of them hits."""
        self._ack_pending = False
        if self._sm.state is _SYN_SENT:
            self._send(self._wire(self._syn_off + 1), RST)
            return
        if self._sut_isn is None or self._sut_reset:
            return
        starts = [self._snd_una] + [s.end for s in self._inflight if s.end > self._snd_una]
        for off in starts:
            self._send(self._wire(off), RST | ACK)

    # ------------------------------------------------------------------------ packets

    def _wire(self, off: int) -> int:
        return (self._isn + 1 + off) & MASK  # type: ignore[operator]

    def _send(self, seq: int, flags: int, payload: bytes = b"", psum: int = 0) -> None:
        if self._sut_isn is None:
            ack = 0
            flags &= ~ACK
        else:
            ack = (self._sut_isn + 1 + self._rcv_nxt + self._sut_fin) & MASK
            self._ack_pending = False
        if self._ts_ok:
            self._ip_id = (self._ip_id + 1) & 0xFFFF
            self._out.append(self._builder.build_timestamped(
                seq, ack, flags, WINDOW, self._ts_last, self._ts_recent, payload, psum, self._ip_id
            ))
        else:
            self._out.append(self._build(seq, ack, flags, WINDOW, b"", payload, psum))
        self.counters.packets_sent += 1

    def _emit_raw(self, seq: int, ack: int, flags: int) -> None:
        self._out.append(self._build(seq, ack, flags, 0, b"", b"", 0))
        self.counters.packets_sent += 1

    def _build(
        self, seq: int, ack: int, flags: int, window: int, options: bytes, payload: bytes, psum: int,
    ) -> bytes:
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        return self._builder.build(seq, ack, flags, window, options, payload, psum, self._ip_id)

    def _client_done(self) -> bool:
        return (self._capture_done or self._cap_closed) and not self._unsent and (
            self._snd_una == self._snd_nxt
        )
