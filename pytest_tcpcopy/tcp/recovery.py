"""Recovery: our bytes toward the SUT until it acknowledges them, and how lost ones are resent.

Every segment sent (data, FIN) stays in flight until the SUT's cumulative ack covers it. Loss is
recovered by a retransmission timeout that backs off (doubling up to ``RTO_MAX``), by fast
retransmit after three duplicate acks, and by NewReno partial acks (each partial ack resends the
next hole at once, so several losses in one window recover in as many round trips). The SUT's
window (scaled once the SYN-ACK agreed on scaling) bounds what may be sent; a zero window is
probed at the retransmission timeout. This module keeps the books and says what to resend; the
translator builds and sends.
"""

from __future__ import annotations

from collections import deque

from pytest_tcpcopy.kernel.packet import FIN
from pytest_tcpcopy.tcp.events import SessionCounters

RTO_MAX = 8.0  # seconds: the retransmission back-off stops doubling here


class Sent:
    """A segment in flight: kept until the SUT acks it, for retransmission."""

    __slots__ = ("data", "end", "flags", "off", "psum")

    def __init__(self, off: int, data: bytes, psum: int, flags: int) -> None:
        self.off, self.data, self.psum, self.flags = off, data, psum, flags
        self.end = off + len(data) + (flags & FIN)


class Recovery:
    __slots__ = (
        "_counters", "_rto_initial", "_rto_max", "dupacks", "inflight", "recover", "rto", "rto_at", "smss",
        "snd_nxt", "snd_una", "snd_wnd", "wscale",
    )  # fmt: skip

    def __init__(self, counters: SessionCounters, *, rto: float, mss: int) -> None:
        """``rto``: the initial retransmission timeout; ``mss``: the largest segment we send."""
        self._counters = counters
        self._rto_initial = rto
        self._rto_max = max(rto, RTO_MAX)
        self.snd_una = 0  # the first byte the SUT has not acknowledged
        self.snd_nxt = 0  # the next byte to send
        self.snd_wnd = 0  # the SUT's window, scaled
        self.wscale = 0  # the SUT's window scale
        self.smss = mss  # the largest segment we send, once the SYN-ACK agreed on it
        self.inflight: deque[Sent] = deque()
        self.rto = self._rto_initial
        self.rto_at: float | None = None  # the retransmission (or probe, or SYN) deadline
        self.recover: int | None = None  # NewReno: recovering until this offset is acked
        self.dupacks = 0

    def start(self, off: int, window: int, wscale: int, smss: int) -> None:
        """A connection opened: everything before ``off`` counts as acknowledged."""
        self.snd_una = self.snd_nxt = off
        self.snd_wnd = window  # never scaled in a SYN segment
        self.wscale = wscale
        self.smss = smss
        self.rto = self._rto_initial
        self.rto_at = None

    def restart(self, resume: int, now: float) -> None:
        """A new connection will resend from ``resume``; the SYN goes out now."""
        self.inflight.clear()
        self.snd_nxt = resume
        self.snd_wnd = 0
        self.recover = None
        self.dupacks = 0
        self.rto = self._rto_initial
        self.rto_at = now + self.rto

    def unacked(self) -> list[bytes]:
        """The data in flight beyond what the SUT acknowledged, in order (a FIN is sent only
        once all data is acknowledged, so none is ever among it)."""
        una = self.snd_una
        return [s.data[max(una - s.off, 0) :] for s in self.inflight if s.end > una and s.data]

    def arm(self, now: float) -> None:
        """Run the retransmission timer (to probe a zero window) unless it runs already."""
        if self.rto_at is None:
            self.rto_at = now + self.rto

    def room(self) -> int:
        return self.snd_una + self.snd_wnd - self.snd_nxt

    def track(self, data: bytes, psum: int, flags: int, now: float) -> Sent:
        """A new segment goes out at ``snd_nxt``."""
        sent = Sent(self.snd_nxt, data, psum, flags)
        self.inflight.append(sent)
        self.snd_nxt = sent.end
        if self.rto_at is None:
            self.rto_at = now + self.rto
        return sent

    def on_ack(self, ack: int, window: int, pure: bool, now: float) -> Sent | None:
        """The SUT's cumulative ack (an offset, never beyond ``snd_nxt``) and window field;
        ``pure`` when the segment carried neither data nor FIN. Returns a segment to resend."""
        window <<= self.wscale
        resend = None
        inflight = self.inflight
        if ack > self.snd_una:
            self.snd_una = ack
            while inflight and inflight[0].end <= ack:
                inflight.popleft()
            self.dupacks = 0
            self.rto = self._rto_initial
            self.rto_at = now + self.rto if inflight else None
            if self.recover is not None:
                if ack < self.recover and inflight:
                    resend = inflight[0]  # NewReno partial ack: the next hole
                else:
                    self.recover = None
        elif ack == self.snd_una and inflight and pure and window == self.snd_wnd:
            self.dupacks += 1
            self._counters.dup_acks += 1
            if self.dupacks == 3 and self.recover is None:
                self._counters.fast_retransmits += 1
                self.recover = self.snd_nxt
                resend = inflight[0]
        if ack >= self.snd_una:
            self.snd_wnd = window
        return resend

    def on_timeout(self, now: float) -> Sent | None:
        """The retransmission timeout fired: back off; the head segment to resend, if any."""
        self._counters.rto_timeouts += 1
        self.rto = min(self.rto * 2, self._rto_max)
        self.rto_at = now + self.rto
        if not self.inflight:
            return None
        self.recover = self.snd_nxt
        self.dupacks = 0
        return self.inflight[0]

    def stop(self) -> None:
        self.rto_at = None
        self.inflight.clear()
