"""SessionOutput: what one translator produced and its driver has not taken yet.

The translator's parts queue here, and only here: the IPv4 packets to send (built here, with the
session's addresses, IP ids and, once negotiated, the RFC 7323 timestamp option) and the events.
The driver takes both through the translator's output calls (`packets_to_send`, `events`). Only
IPv4 is implemented: a client or a target of another family is refused at once.
"""

from __future__ import annotations

from pytest_tcpcopy.endpoint import Endpoint
from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.kernel.codecs import SegmentBuilder, SutSegment
from pytest_tcpcopy.tcp.events import Event, SessionCounters
from pytest_tcpcopy.tcp.seq import seq_ge

WINDOW = 65535  # the receive window we advertise: the replay sink never runs out of room


class SessionOutput:
    __slots__ = ("_builder", "_ip_id", "counters", "events", "packets", "ts_last", "ts_ok", "ts_recent")

    def __init__(self, client: Endpoint, target: Endpoint, ip_id: int, counters: SessionCounters) -> None:
        if len(target.addr) != 4 or len(client.addr) != 4:
            raise UsageError(
                f"cannot replay {client} -> {target}: only IPv4 targets and client addresses "
                "are implemented; give an IPv4 target and an IPv4 client network"
            )
        self._builder = SegmentBuilder(client, target)
        self._ip_id = ip_id & 0xFFFF
        self.counters = counters
        self.packets: list[bytes] = []
        self.events: list[Event] = []
        # Timestamps (RFC 7323), used when both SYN and SYN-ACK carried them.
        self.ts_ok = False
        self.ts_recent = 0  # the SUT's latest TSval: our TSecr
        self.ts_last = 0  # our latest TSval: never goes back

    def segment(self, seq: int, ack: int, flags: int, payload: bytes = b"", psum: int = 0) -> None:
        """Queue a segment of the connection (our window; the timestamp option when negotiated)."""
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        if self.ts_ok:
            packet = self._builder.build_timestamped(
                seq, ack, flags, WINDOW, self.ts_last, self.ts_recent, payload, psum, self._ip_id
            )
        else:
            packet = self._builder.build(seq, ack, flags, WINDOW, b"", payload, psum, self._ip_id)
        self.packets.append(packet)
        self.counters.packets_sent += 1

    def build(self, seq: int, ack: int, flags: int, window: int, options: bytes) -> bytes:
        """A segment outside the connection's rules (a SYN with its own options and window, a
        bare RST), built but not queued: a SYN is kept for retransmission."""
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        return self._builder.build(seq, ack, flags, window, options, b"", 0, self._ip_id)

    def queue(self, packet: bytes) -> None:
        self.packets.append(packet)
        self.counters.packets_sent += 1

    def echo(self, seg: SutSegment) -> None:
        """The SUT's segment carries the TSval our next segments echo (unless it went back)."""
        if self.ts_ok and seg.has_ts and seq_ge(seg.ts_val, self.ts_recent):
            self.ts_recent = seg.ts_val

    def sent_ts(self, ts_val: int) -> None:
        """A captured TSval goes out with the next segments, unless it would go back."""
        if self.ts_ok and seq_ge(ts_val, self.ts_last):
            self.ts_last = ts_val

    def take_packets(self) -> list[bytes]:
        out, self.packets = self.packets, []
        return out

    def take_events(self) -> list[Event]:
        out, self.events = self.events, []
        return out
