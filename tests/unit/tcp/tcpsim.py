"""An in-memory SUT for translator tests: a small server-side TCP endpoint and a simulated link.

`SimServer` speaks real IPv4/TCP bytes: it parses every packet the translator sends (with its
own struct code and checksum routine, independent of the translator's), checks both checksums,
DF, TTL, addresses and that no ack covers bytes it never sent, and answers like a kernel would:
SYN-ACK with MSS/WS/TS, acks, a receive window that can close, scripted responses segmented by
MSS, its own retransmission, FIN, RST. `Link` joins it to a `SessionTranslator` with a
simulated clock, latency, loss and reordering (h11's ConnectionPair idea); the intercept is the
translator's own `parse_sut_segment` over the server's packets, header-only unless the test
asks for payloads.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_tcpcopy.capture.packet import ACK, FIN, PSH, RST, SYN, Packet
from pytest_tcpcopy.endpoint import Endpoint, parse_addr
from pytest_tcpcopy.tcp import SessionTranslator, TranslatorConfig, parse_sut_segment

IP = struct.Struct("!BBHHHBBH4s4s")
TCPH = struct.Struct("!HHIIHHHH")
M32 = 0xFFFFFFFF

CLIENT = Endpoint(parse_addr("198.18.0.7"), 40000)
TARGET = Endpoint(parse_addr("10.9.0.2"), 8080)
CAPTURED_CLIENT = Endpoint(parse_addr("192.0.2.10"), 40000)
CAPTURED_SERVER = Endpoint(parse_addr("192.0.2.1"), 80)


def rfc1071(data: bytes) -> int:
    """Plain ones'-complement sum, folded (the textbook loop, for cross-checking)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def ts_option(val: int, ecr: int) -> bytes:
    return b"\x01\x01\x08\x0a" + struct.pack("!II", val, ecr)


def parse_opts(raw: bytes) -> dict[int, bytes]:
    out, i = {}, 0
    while i < len(raw):
        kind = raw[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        length = raw[i + 1]
        out[kind] = raw[i + 2 : i + length]
        i += length
    return out


@dataclass
class Seg:
    """A decoded translator packet, as the server sees it."""

    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    options: dict[int, bytes]
    payload: bytes
    raw: bytes


def decode_and_check(pkt: bytes) -> Seg:
    """Decode a translator packet, asserting it is a well-formed IPv4/TCP packet."""
    vihl, _tos, total, _ipid, frag, ttl, proto, _csum, src, dst = IP.unpack_from(pkt)
    assert vihl == 0x45 and proto == 6 and total == len(pkt)
    assert frag == 0x4000, "DF must be set"
    assert ttl == 64
    assert rfc1071(pkt[:20]) == 0xFFFF, "bad IP header checksum"
    tcp = pkt[20:]
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    assert rfc1071(pseudo + tcp) == 0xFFFF, "bad TCP checksum"
    sport, dport, seq, ack, offflags, window, _, _urg = TCPH.unpack_from(tcp)
    hl = (offflags >> 12) * 4
    return Seg(src, dst, sport, dport, seq, ack, offflags & 0xFF, window,
               parse_opts(tcp[20:hl]), tcp[hl:], pkt)


@dataclass(frozen=True)
class Stall:
    """In a scripted response: the server's application sends nothing more for ``seconds``."""

    seconds: float


Response = bytes | list  # bytes, or the parts of a slow response: bytes and Stall, in order


def response_length(response: Response) -> int:
    return len(response) if isinstance(response, bytes) else sum(len(p) for p in response if isinstance(p, bytes))


@dataclass
class Script:
    """What the server does: a greeting, one response per request (by request lengths), and
    whether it closes after the last response."""

    request_lens: list[int]
    responses: list[Response]
    greeting: bytes = b""
    close_after_last: bool = False
    close_every: int | None = None  # close the connection after this many responses on it


@dataclass
class SimServer:
    addr: Endpoint
    script: Script
    isn: int = 1_000_000
    mss: int = 1460
    wscale: int | None = 7
    timestamps: bool = True
    listening: bool = True
    answer_syn: bool = True
    rto: float = 0.25
    window: int = 65535 * 4
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.out: list[bytes] = []
        self.state = "LISTEN"
        self.peer: Endpoint | None = None
        self.rcv_nxt = 0
        self.received = bytearray()  # client stream bytes in order, all connections
        self.conn_received = bytearray()
        self.snd_una = self.snd_nxt = 0
        self.send_buf = bytearray()  # response bytes queued from snd_una on
        self.fin_queued = self.fin_sent = False
        self.peer_fin = False
        self.peer_wscale = 0
        self.use_ws = self.use_ts = False
        self.peer_mss = 536
        self.peer_window = 0
        self.ts_recent = 0
        self.ts_sent: set[int] = set()
        self.last_peer_tsval: int | None = None
        self.rto_at: float | None = None
        self.responses_sent = 0
        self.zero_window = False
        self.connections = 0
        self.resets_received = 0
        self.now = 0.0
        self.sent_payload = bytearray()  # every response byte sent, all connections
        self.drop_out: Callable[[int, int, int], bool] = lambda seq, n, flags: False
        self.next_delivery_bytes = 0
        self.later: list[tuple[float, list]] = []  # the rest of slow responses, by when it goes on

    # ------------------------------------------------------------------ helpers
    def _tsval(self) -> int:
        v = int(self.now * 1000) + 7
        self.ts_sent.add(v)
        return v

    def _emit(self, seq: int, ack: int, flags: int, payload: bytes = b"", options: bytes = b"",
              window: int | None = None) -> None:
        if self.use_ts and not flags & RST:
            options = ts_option(self._tsval(), self.ts_recent) + options
        if window is None:
            w = 0 if self.zero_window else self.window
            window = min(w >> (self.wscale if self.use_ws else 0), 65535)
        hl = 20 + len(options)
        assert self.peer is not None
        tcp = TCPH.pack(self.addr.port, self.peer.port, seq & M32, ack & M32, (hl // 4) << 12 | flags,
                        window, 0, 0) + options + payload
        pseudo = self.addr.addr + self.peer.addr + struct.pack("!BBH", 0, 6, len(tcp))
        c = ~rfc1071(pseudo + tcp) & 0xFFFF
        tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
        ip = IP.pack(0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, self.addr.addr, self.peer.addr)
        ip = ip[:10] + struct.pack("!H", ~rfc1071(ip) & 0xFFFF) + ip[12:]
        if self.drop_out(seq & M32, len(payload), flags):
            return
        self.out.append(ip + tcp)

    def _ack_value(self) -> int:
        return self.peer_isn + 1 + len(self.conn_received) + (1 if self.peer_fin else 0)

    def send_ack(self) -> None:
        self._emit(self.isn + 1 + self.snd_nxt + (1 if self.fin_sent else 0), self._ack_value(), ACK)

    # ---------------------------------------------------------------- behaviour
    def receive(self, pkt: bytes, now: float) -> None:
        self.now = now
        s = decode_and_check(pkt)
        if s.dst != self.addr.addr or s.dport != self.addr.port:
            self.errors.append(f"packet to the wrong address {s.dst!r}:{s.dport}")
        if 8 in s.options and self.state != "LISTEN" and not s.flags & SYN:
            tsval, tsecr = struct.unpack("!II", s.options[8])
            if self.use_ts and tsecr not in self.ts_sent:
                self.errors.append(f"TSecr {tsecr} was never sent by the server")
            if self.last_peer_tsval is not None and ((tsval - self.last_peer_tsval) & M32) > 1 << 31:
                self.errors.append(f"TSval went back: {tsval} after {self.last_peer_tsval}")
            self.last_peer_tsval = tsval
            self.ts_recent = tsval
        if s.flags & RST:
            if self.state != "LISTEN" and s.seq == (self.peer_isn + 1 + len(self.conn_received)
                                                    + (1 if self.peer_fin else 0)) & M32:
                self.resets_received += 1
                self._to_listen()
            return
        if s.flags & SYN:
            self._on_syn(s)
            return
        if self.state == "LISTEN":
            return
        if self.state == "SYN_RCVD" and s.flags & ACK and s.ack == (self.isn + 1) & M32:
            self.state = "ESTABLISHED"
            self.rto_at = None
            if self.script.greeting and self.connections == 1:
                self._queue_response(self.script.greeting)
        if s.flags & ACK:
            self._on_ack(s)
        if s.payload or s.flags & FIN:
            self._on_data(s)
        self._transmit()

    def _on_syn(self, s: Seg) -> None:
        if not self.answer_syn:
            return
        self.peer = Endpoint(s.src, s.sport)
        if not self.listening:
            self._emit(0, s.seq + 1, RST | ACK)
            return
        if self.state == "SYN_RCVD" and ((s.seq + 1) & M32) == (self.peer_isn + 1) & M32:
            pass  # a retransmitted SYN: repeat the SYN-ACK
        elif self.state != "LISTEN":
            return
        else:
            self.connections += 1
            self.peer_isn = s.seq
            self.conn_received = bytearray()
            self.peer_fin = False
            self.snd_una = self.snd_nxt = 0
            self.send_buf = bytearray()
            self.fin_queued = self.fin_sent = False
            self.conn_responses = 0
        self.state = "SYN_RCVD"
        o = s.options
        self.peer_mss = struct.unpack("!H", o[2])[0] if 2 in o else 536
        self.use_ws = 3 in o and self.wscale is not None
        self.peer_wscale = o[3][0] if self.use_ws else 0
        self.use_ts = 8 in o and self.timestamps
        if self.use_ts:
            self.ts_recent = struct.unpack("!II", o[8])[0]
        self.peer_window = s.window
        opts = struct.pack("!BBH", 2, 4, self.mss)
        if self.use_ws:
            opts += bytes([1, 3, 3, self.wscale])
        self._emit(self.isn, s.seq + 1, SYN | ACK, options=opts,
                   window=0 if self.zero_window else min(self.window, 65535))
        self.rto_at = self.now + self.rto

    def _on_ack(self, s: Seg) -> None:
        ack = (s.ack - self.isn - 1) & M32
        top = self.snd_nxt + (1 if self.fin_sent else 0)
        if ack > top:
            self.errors.append(f"ack {ack} covers bytes never sent (sent up to {top})")
            return
        if ack > self.snd_una:
            n = min(ack, self.snd_nxt) - self.snd_una
            del self.send_buf[:n]
            self.snd_una = min(ack, self.snd_nxt)
            self.rto_at = self.now + self.rto if (self.snd_una < self.snd_nxt or
                                                  (self.fin_sent and ack < top)) else None
        self.peer_window = s.window << self.peer_wscale

    def _on_data(self, s: Seg) -> None:
        off = (s.seq - self.peer_isn - 1) & M32
        have = len(self.conn_received)
        if self.zero_window and s.payload:
            self.send_ack()  # no room: drop it, ack what we have
            return
        if off > have or (off + len(s.payload) <= have and not (s.flags & FIN and not self.peer_fin)):
            self.send_ack()  # out of order or old: dup ack
            return
        new = s.payload[have - off :]
        if new and self.fin_queued and not self.peer_fin:
            # data for a socket the application closed: the kernel resets, seq = their ack
            self._emit(s.ack, 0, RST)
            self._to_listen()
            return
        self.conn_received += new
        self.received += new
        if s.flags & FIN and off + len(s.payload) == len(self.conn_received):
            self.peer_fin = True
            self.fin_queued = True
        if not self.fin_queued or self.peer_fin:
            self._respond()
        self.send_ack()

    def _respond(self) -> None:
        total = len(self.received)
        bounds = 0
        for i, n in enumerate(self.script.request_lens):
            bounds += n
            if i >= self.responses_sent and total >= bounds:
                self.responses_sent += 1
                self._queue_response(self.script.responses[i])
                self.conn_responses += 1
                if self.script.close_after_last and self.responses_sent == len(self.script.responses):
                    self.fin_queued = True
                if self.script.close_every and self.conn_responses >= self.script.close_every:
                    self.fin_queued = True
                    break

    def _queue_response(self, data: Response) -> None:
        parts = [data] if isinstance(data, bytes) else list(data)
        if self.later:  # behind a response still stalled
            self.later[-1][1].extend(parts)
            return
        while parts:
            part = parts.pop(0)
            if isinstance(part, Stall):
                self.later.append((self.now + part.seconds, parts))
                return
            self.send_buf += part
            self.sent_payload += part

    def _transmit(self) -> None:
        if self.state != "ESTABLISHED" or self.peer is None:
            return
        mss = min(self.mss, self.peer_mss)
        while True:
            sent = self.snd_nxt - self.snd_una
            unsent = len(self.send_buf) - sent
            if unsent <= 0:
                break
            room = self.peer_window - sent
            if room <= 0:
                break
            n = min(unsent, mss - (12 if self.use_ts else 0), room)
            data = bytes(self.send_buf[sent : sent + n])
            self._emit(self.isn + 1 + self.snd_nxt, self._ack_value(), ACK | PSH, data)
            self.snd_nxt += n
            if self.rto_at is None:
                self.rto_at = self.now + self.rto
        if self.fin_queued and not self.fin_sent and not self.later and self.snd_nxt - self.snd_una == len(self.send_buf):
            self.fin_sent = True
            self._emit(self.isn + 1 + self.snd_nxt, self._ack_value(), FIN | ACK)
            if self.rto_at is None:
                self.rto_at = self.now + self.rto

    def _to_listen(self) -> None:
        self.state = "LISTEN"
        self.rto_at = None
        self.later.clear()
        self.send_buf = bytearray()
        self.fin_queued = self.fin_sent = False

    # ----------------------------------------------------------- test controls
    def reset(self) -> None:
        """Abort the connection with a RST (e.g. the SUT crashed)."""
        self._emit(self.isn + 1 + self.snd_nxt, self._ack_value(), RST | ACK)
        self._to_listen()

    def close(self) -> None:
        self.fin_queued = True
        self._transmit()

    def open_window(self) -> None:
        self.zero_window = False
        self.send_ack()  # the window update

    def next_timer(self) -> float | None:
        times = [t for t in (self.rto_at, *(when for when, _ in self.later[:1])) if t is not None]
        return min(times) if times else None

    def on_timer(self, now: float) -> None:
        self.now = now
        if self.later and now >= self.later[0][0]:
            _, rest = self.later.pop(0)
            self._queue_response(rest)
            self._transmit()
        if self.rto_at is None or now < self.rto_at:
            return
        self.rto_at = now + self.rto
        if self.state == "SYN_RCVD":
            opts = struct.pack("!BBH", 2, 4, self.mss)
            if self.use_ws:
                opts += bytes([1, 3, 3, self.wscale])
            self._emit(self.isn, self.peer_isn + 1, SYN | ACK, options=opts, window=65535)
        elif self.snd_una < self.snd_nxt:
            n = min(self.snd_nxt - self.snd_una, min(self.mss, self.peer_mss) - (12 if self.use_ts else 0))
            self._emit(self.isn + 1 + self.snd_una, self._ack_value(), ACK | PSH, bytes(self.send_buf[:n]))
        elif self.fin_sent:
            self._emit(self.isn + 1 + self.snd_nxt, self._ack_value(), FIN | ACK)
        else:
            self.rto_at = None


# ------------------------------------------------------------------ captures

def capture(
    requests: list[bytes], responses: list[int], *, isn: int = 5000, server_isn: int = 90_000,
    syn: bool = True, fin: bool = True, mss: int = 1460, greeting: int = 0,
    timestamps: bool = True, wscale: int | None = 7, gap: float = 0.01, rtt: float = 0.002,
) -> list[Packet]:
    """The client side of a session as a real client would have produced it: handshake,
    requests split by ``mss``, each sent after the previous response (captured acks grow),
    acks of responses, and a FIN."""
    pkts: list[Packet] = []
    t = [1000.0]
    tsv = [777]

    def add(seq: int, ack: int, flags: int, payload: bytes = b"", opts: bytes = b"", window: int = 502):
        if timestamps and not opts:
            opts = ts_option(tsv[0], 4242)
        tsv[0] += 1
        pkts.append(Packet(len(pkts), t[0], CAPTURED_CLIENT.addr, CAPTURED_SERVER.addr,
                           CAPTURED_CLIENT.port, CAPTURED_SERVER.port, seq & M32, ack & M32, flags,
                           window, opts, payload, len(payload), 100 + len(pkts), 64))
        t[0] += gap

    seq = isn + 1
    ack = server_isn + 1
    if syn:
        o = struct.pack("!BBH", 2, 4, mss)  # Linux's layout: MSS, SACK-perm, TS, NOP, WS
        o += b"\x04\x02\x08\x0a" + struct.pack("!II", tsv[0], 0) if timestamps else b"\x01\x01\x04\x02"
        o += bytes([1, 3, 3, wscale]) if wscale is not None else b""
        add(isn, 0, SYN, opts=o, window=64240)
        t[0] += rtt - gap
        add(seq, ack, ACK)
    ack += greeting
    for req, resp in zip(requests, responses):
        for i in range(0, len(req), mss):
            part = req[i : i + mss]
            add(seq, ack, ACK | (PSH if i + mss >= len(req) else 0), part)
            seq += len(part)
        ack += resp
        add(seq, ack, ACK)  # the client acks the response
    if fin:
        add(seq, ack, FIN | ACK)
    return pkts


# --------------------------------------------------------------------- the link

@dataclass
class Link:
    """Runs a translator against a SimServer on a simulated clock."""

    translator: SessionTranslator
    server: SimServer
    latency: float = 0.0005
    drop_to_server: Callable[[int, bytes], bool] = lambda i, pkt: False
    payload_reports: bool = False
    now: float = 0.0
    sent: list[bytes] = field(default_factory=list)  # everything the translator sent
    events: list = field(default_factory=list)
    reorder_to_translator: bool = False
    sut_log: list[bytes] | None = None  # if a list: every SUT packet fed, as bytes (benchmarks)
    copy_range: int | None = None  # the intercept reports at most this many bytes per packet

    def __post_init__(self) -> None:
        self._q: list[tuple[float, int, str, bytes]] = []
        self._n = 0

    def _schedule(self, when: float, target: str, pkt: bytes) -> None:
        self._n += 1
        heapq.heappush(self._q, (when, self._n, target, pkt))

    def _drain(self) -> None:
        for pkt in self.translator.packets_to_send():
            i = len(self.sent)
            self.sent.append(pkt)
            if not self.drop_to_server(i, pkt):
                self._schedule(self.now + self.latency, "server", pkt)
        self.events.extend(self.translator.events())
        batch = self.server.out[::-1] if self.reorder_to_translator else self.server.out
        for pkt in batch:
            if not self.payload_reports:
                # header-only report: the IP length still tells the real payload length
                pkt = pkt[: 20 + (pkt[32] >> 4) * 4]
            if self.copy_range is not None:
                pkt = pkt[: self.copy_range]
            self._schedule(self.now + self.latency, "translator", pkt)
        self.server.out.clear()

    def run(self, packets: list[Packet], *, speed: float | None = None, end: bool = True,
            until: float = 300.0, actions: dict[float, Callable[[], None]] | None = None) -> None:
        """Feed ``packets`` (paced by capture time / speed, or all at once), then the end of
        capture, exchanging packets until the translator finishes or ``until``."""
        t0 = packets[0].ts if packets else 0.0
        feed = [(self.now + ((p.ts - t0) / speed if speed else 0.0), p) for p in packets]
        todo = sorted((actions or {}).items())
        i = 0
        ended = not end
        stuck, last = 0, -1.0
        while self.now < until:
            stuck = stuck + 1 if self.now == last else 0
            last = self.now
            assert stuck < 10_000, f"no progress at t={self.now}: a timer fires without effect"

            cands = []
            if i < len(feed):
                cands.append(feed[i][0])
            elif not ended:
                cands.append(self.now)
            if self._q:
                cands.append(self._q[0][0])
            for t in (self.translator.next_timer(), self.server.next_timer()):
                if t is not None:
                    cands.append(t)
            if todo:
                cands.append(todo[0][0])
            if not cands:
                break
            self.now = max(self.now, min(cands))
            if todo and todo[0][0] <= self.now:
                todo.pop(0)[1]()
            elif i < len(feed) and feed[i][0] <= self.now:
                self.translator.feed_client(feed[i][1], self.now)
                i += 1
            elif i >= len(feed) and not ended:
                self.translator.end_of_capture(self.now)
                ended = True
            elif self._q and self._q[0][0] <= self.now:
                _, _, target, pkt = heapq.heappop(self._q)
                if target == "server":
                    self.server.receive(pkt, self.now)
                else:
                    if self.sut_log is not None:
                        self.sut_log.append(pkt)
                    self.translator.feed_sut(parse_sut_segment(pkt), self.now)
            else:
                tt = self.translator.next_timer()
                if tt is not None and tt <= self.now:
                    self.translator.on_timer(self.now)
                st = self.server.next_timer()
                if st is not None and st <= self.now:
                    self.server.on_timer(self.now)
            self._drain()
            if self.translator.finished and not self._q and ended and i >= len(feed):
                break


def make_pair(script: Script, config: TranslatorConfig | None = None, **server_kw) -> tuple[SessionTranslator, SimServer]:
    t = SessionTranslator(config or TranslatorConfig(), CLIENT, TARGET, session_id=1)
    s = SimServer(TARGET, script, **server_kw)
    return t, s


def response_bytes(events: list) -> dict[int, int]:
    """offset -> length of every ResponseData event."""
    from pytest_tcpcopy.tcp import ResponseData

    return {e.offset: e.length for e in events if isinstance(e, ResponseData)}
