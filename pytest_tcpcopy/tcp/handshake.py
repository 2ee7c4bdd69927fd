"""Handshake: opening a connection to the SUT for the replayed client.

The SYN is the captured one (its sequence number, window and options as captured), or, for a
session captured mid-stream and for every reconnect, a fake SYN just before the byte the
connection starts with (our MSS, no other option). It is kept for retransmission. The SUT's
answer is checked against it (a SYN-ACK acknowledging it, a RST refusing it, anything else a
stray segment) and read: the SUT's MSS, window scale and timestamps, each used only when our SYN
offered it too (RFC 7323, RFC 9293 3.7.1).
"""

from __future__ import annotations

from pytest_tcpcopy.kernel.codecs import TIMESTAMP_OPTION_LEN, SutSegment, TcpOptions, mss_option, parse_options
from pytest_tcpcopy.kernel.packet import ACK, RST, SYN, Packet
from pytest_tcpcopy.tcp.output import WINDOW, SessionOutput
from pytest_tcpcopy.tcp.seq import seq_add

DEFAULT_SUT_MSS = 536  # RFC 9293 3.7.1: MSS when the SYN-ACK carries none
STRAY, REFUSED, ACCEPTED = 0, 1, 2  # what the SUT's segment to our SYN is (`answer`)


class Handshake:
    __slots__ = ("_mss", "_out", "_packet", "_syn_opts", "establish_at", "fake", "off", "old_ack", "smss", "wscale")

    def __init__(self, out: SessionOutput, mss: int) -> None:
        """``mss``: what a fake SYN offers, and the most any SYN-ACK may agree on."""
        self._mss = mss
        self._out = out
        self._packet = b""  # our SYN, for retransmission
        self._syn_opts: TcpOptions | None = None  # the captured SYN's options, once sent
        self.fake = False  # the SYN was made up (no captured SYN, or a reconnect)
        self.off = -1  # the stream offset our SYN occupies: -1, or the byte before the resumed one
        self.establish_at: float | None = None  # no SYN-ACK by then: the session is not established
        self.old_ack: int | None = None  # our last ack on the connection a reconnect replaced
        self.smss = self.wscale = 0  # what the SYN-ACK agreed on: the segment size, window scale

    def open(self, captured: Packet | None, off: int, wire: int, now: float, timeout: float) -> None:
        """Queue the SYN: ``captured`` (the first time, if the capture has it), else a fake
        one at stream offset ``off``, wire sequence number ``wire``."""
        out = self._out
        self.off = off
        if captured is not None and not self.fake:
            self._syn_opts = parse_options(captured.options)
            if self._syn_opts.ts_val is not None:
                out.ts_last = self._syn_opts.ts_val
            self._packet = out.build(captured.seq, 0, SYN, captured.window, captured.options)
        else:
            self.fake = True
            out.ts_ok = False  # a fake SYN offers no timestamps
            self._packet = out.build(wire, 0, SYN, WINDOW, mss_option(self._mss))
        out.queue(self._packet)
        self.establish_at = now + timeout

    def resend(self) -> None:
        self._out.queue(self._packet)

    def answer(self, seg: SutSegment, syn_wire: int) -> int:
        """What the SUT's segment says to our SYN (at wire sequence number ``syn_wire``):
        STRAY, REFUSED (a RST acknowledging it) or ACCEPTED (its SYN-ACK, read: the SUT's
        timestamps go to the output, ``smss`` and ``wscale`` are set)."""
        syn_ack_wire = seq_add(syn_wire, 1)
        flags = seg.flags
        if flags & RST:
            if seg.seq != self.old_ack and flags & ACK and seg.ack == syn_ack_wire:
                return REFUSED
            return STRAY  # e.g. the previous connection's reset
        if flags & (SYN | ACK) != SYN | ACK or seg.ack != syn_ack_wire:
            return STRAY  # e.g. a late segment of the old connection
        opts = parse_options(seg.options)
        ours = None if self.fake else self._syn_opts
        out = self._out
        out.ts_ok = bool(ours and ours.ts_val is not None and opts.ts_val is not None)
        self.smss = min(opts.mss or DEFAULT_SUT_MSS, self._mss)
        if out.ts_ok:
            out.ts_recent = opts.ts_val or 0
            self.smss -= TIMESTAMP_OPTION_LEN
        self.wscale = opts.wscale if ours and ours.wscale is not None and opts.wscale is not None else 0
        self.establish_at = None
        return ACCEPTED
