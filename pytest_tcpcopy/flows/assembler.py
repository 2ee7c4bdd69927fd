"""Streaming TCP flow assembly: capture packets in, one ``CapturedSession`` per connection out.

The rules, in the order ``feed`` applies them:

- A session is keyed by its 4-tuple. A packet of an unknown 4-tuple opens a session; which end is
  the server comes from ``server_ports`` when given (packets on other ports are ignored), else
  from a SYN (a SYN without ACK travels client to server, a SYN-ACK server to client), else, for a
  connection already running when the capture began, the lower port is the server's (well-known
  and registered ports lie below the ephemeral range); equal ports: the lower address.
- Port reuse: a SYN on a known 4-tuple repeating that side's ISN is a retransmission. Any other
  SYN starts a new session (the old one is finished as it stands) when the ISN is known (a
  connection's SYN always carries its ISN; a port reused after TIME_WAIT often gets an ISN just
  above the old sequence numbers) or the old session is closed. When the capture began
  mid-connection (ISN unknown), a SYN whose ISN + 1 lies up to ``SEQ_JUMP`` before the first byte
  seen is that connection's own late SYN; one further away starts a new session.
- A session closes at the first RST, or once both sides sent a FIN. It stays routable for
  ``linger`` seconds of capture time, so late retransmissions and the last ACK still land in it,
  and is then handed out by ``pop_finished``; ``finish`` hands out the rest at end of capture.

Memory follows the live sessions: a session handed out is forgotten. Two documented bounds keep
it finite on hostile or unusual captures, each a ``FlowLimitError`` naming the packet, the session
and the limit past it: ``max_session_bytes`` (``MAX_SESSION_BYTES``) on the bytes kept of one
direction of one session (only when streams are kept), and ``max_live`` (``MAX_LIVE_SESSIONS``) on
the sessions open at once (about 1.3 KB each without streams).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Iterator

from ..endpoint import Endpoint, new_endpoint
from ..errors import CaptureError, TcpcopyError
from ..kernel.packet import ACK, FIN, RST, SYN, Packet
from .session import CapturedSession, CloseKind
from .stream import OUT_OF_ORDER, RETRANSMITTED, ByteStream

SEQ_JUMP = 1 << 20
MAX_SESSION_BYTES = 256 * 1024 * 1024  # kept bytes of one direction of one session
MAX_LIVE_SESSIONS = 2_000_000  # sessions open at once (about 2.6 GB of them without streams)
_MOD = 1 << 32
_CONTROL = SYN | FIN | RST

Route = tuple[CapturedSession, bool]


class FlowAssembler:
    """Routes packets to sessions in capture order and reassembles both directions.

    ``keep_streams=False`` keeps counts, coverage and gaps but neither stream bytes nor
    ``client_segments``: for summaries of captures of any size. ``server_coverage=False`` also
    skips the server stream's coverage and counts (its retransmitted, out-of-order and gap
    figures stay empty) and the ``packets``/``last_ts`` of server-side segments: sessions,
    routes and closes are exactly the same, with less work for a replay, which reads none of it.
    ``keep_segments=False`` keeps the stream bytes but not ``client_segments`` (for a judge,
    which reads the bytes only).
    """

    def __init__(
        self,
        server_ports: Collection[int] = (),
        *,
        keep_streams: bool = True,
        server_coverage: bool = True,
        keep_segments: bool = True,
        linger: float = 2.0,
        max_session_bytes: int = MAX_SESSION_BYTES,
        max_live: int = MAX_LIVE_SESSIONS,
    ) -> None:
        self._server_ports = frozenset(server_ports)
        self._keep = keep_streams
        self._keep_segments = keep_streams and keep_segments
        self._server_coverage = server_coverage
        self._linger = linger
        self._max_bytes = max_session_bytes
        self._max_routes = 2 * max_live  # two routes per session
        # (source address, destination address, source port << 16 | destination port): three
        # items hash and compare for less than four, per packet.
        self._routes: dict[tuple[bytes, bytes, int], Route] = {}
        self._closing: deque[tuple[float, CapturedSession]] = deque()
        self._finished: list[CapturedSession] = []
        self._created = 0

    @property
    def live(self) -> int:
        """Sessions not handed out yet (the ones that hold memory)."""
        return len(self._routes) // 2

    def has_finished(self) -> bool:
        """True when ``pop_finished`` has sessions to hand out."""
        return bool(self._finished)

    def feed(self, pkt: Packet) -> Route | None:
        """Route one packet; return (session, is_from_client), or None if the packet is ignored."""
        closing = self._closing
        if closing and closing[0][0] < pkt.ts:
            self._expire(pkt.ts)
        route = self._routes.get((pkt.src, pkt.dst, (pkt.sport << 16) | pkt.dport))
        if route is None or pkt.flags & SYN:
            route = self._route_new(pkt, route)
            if route is None:
                return None
        self._add(route[0], route[1], pkt)
        return route

    def _add(self, session: CapturedSession, from_client: bool, pkt: Packet) -> None:
        """Count ``pkt`` into its session: packets, streams, handshake and close."""
        flags, payload_len = pkt.flags, pkt.payload_len
        if not (from_client or self._server_coverage or flags & _CONTROL):
            stream = session.server_stream
            if payload_len and stream.base_seq is None:  # a mid-stream session's first server bytes
                stream.add(pkt.seq, pkt.payload, payload_len, pkt.ts)  # anchor the offsets port reuse is judged by
            return
        session.packets += 1
        session.last_ts = max(session.last_ts, pkt.ts)
        if from_client:
            if self._keep_segments:
                session.client_segments.append(pkt)
            stream = session.client_stream
            if not session.handshake and session.server_isn is not None and flags & ACK:
                session.handshake = (
                    session.client_isn is not None
                    and pkt.ack == (session.server_isn + 1) % _MOD
                )
        else:
            stream = session.server_stream
        if flags & _CONTROL:
            self._control(session, from_client, flags, pkt.seq, payload_len, pkt.ts)
        if payload_len:
            kind = stream.add(pkt.seq + 1 if flags & SYN else pkt.seq, pkt.payload, payload_len, pkt.ts)
            if self._keep and len(stream) > self._max_bytes:
                raise FlowLimitError(pkt.index, f"session {session.index} (client {session.client}) holds more than "
                                     f"{self._max_bytes} bytes in one direction", "max_session_bytes")  # fmt: skip
            if kind == RETRANSMITTED:
                session.retransmitted += 1
            elif kind == OUT_OF_ORDER:
                session.out_of_order += 1

    def pop_finished(self) -> list[CapturedSession]:
        """Sessions finished since the last call: closed and lingered, or replaced by port reuse."""
        finished = self._finished
        self._finished = []
        return finished

    def finish(self) -> list[CapturedSession]:
        """At end of capture: every session not handed out yet, finished ones first."""
        for _, session in self._closing:
            if not session.released:
                self._release(session)
        self._closing.clear()
        live = {id(s): s for s, _ in self._routes.values()}
        for session in sorted(live.values(), key=_index):
            self._release(session)
        return self.pop_finished()

    def _route_new(self, pkt: Packet, route: Route | None) -> Route | None:
        """The route of a packet opening a 4-tuple, or of a SYN on a known one (maybe port reuse)."""
        if route is not None:
            if not self._is_new_connection(route[0], route[1], pkt.seq):
                return route
            self._release(route[0])
        from_client = self._from_client(pkt)
        if from_client is None:
            return None
        if len(self._routes) >= self._max_routes:
            raise FlowLimitError(pkt.index, f"more than {self._max_routes // 2} sessions open at once", "max_live")
        src, dst = new_endpoint((pkt.src, pkt.sport)), new_endpoint((pkt.dst, pkt.dport))
        client, server = (src, dst) if from_client else (dst, src)
        session = CapturedSession(
            index=self._created,
            client=client,
            server=server,
            first_ts=pkt.ts,
            last_ts=pkt.ts,
            client_stream=ByteStream(self._keep),
            server_stream=ByteStream(self._keep),
        )
        self._created += 1
        self._routes[_key(client, server)] = (session, True)
        self._routes[_key(server, client)] = (session, False)
        return (session, from_client)

    def _from_client(self, pkt: Packet) -> bool | None:
        """Whether a packet opening a session travels client to server; None: not on our ports."""
        if self._server_ports:
            if pkt.dport in self._server_ports:
                return True
            if pkt.sport in self._server_ports:
                return False
            return None
        if pkt.flags & SYN:
            return not pkt.flags & ACK
        return (pkt.dport, pkt.dst) < (pkt.sport, pkt.src)

    def _is_new_connection(self, session: CapturedSession, from_client: bool, seq: int) -> bool:
        """Whether a SYN with ``seq`` on a known route opens a new connection (port reuse)."""
        isn = session.client_isn if from_client else session.server_isn
        if isn == seq:
            return False
        if isn is not None or session.closed:
            return True
        stream = session.client_stream if from_client else session.server_stream
        if stream.base_seq is None:
            return False
        return not -SEQ_JUMP <= stream.offset_of(seq + 1) <= 0

    def _control(
        self,
        session: CapturedSession,
        from_client: bool,
        flags: int,
        seq: int,
        payload_len: int,
        ts: float,
    ) -> None:
        if flags & SYN:
            if from_client:
                seen, session.client_isn = session.client_isn, seq
                session.client_stream.anchor(seq)
            else:
                seen, session.server_isn = session.server_isn, seq
                session.server_stream.anchor(seq)
            if seen == seq and not payload_len:
                session.retransmitted += 1
        if flags & FIN:
            side = 1 if from_client else 2
            if session.fins & side and not payload_len:
                session.retransmitted += 1
            session.fins |= side
            if session.fins == 3 and not session.closed:
                session.close = CloseKind.FIN
                self._closing.append((ts + self._linger, session))
        if flags & RST and not session.closed:
            session.close = CloseKind.RST
            self._closing.append((ts + self._linger, session))

    def _expire(self, now: float) -> None:
        closing = self._closing
        while closing and closing[0][0] < now:
            _, session = closing.popleft()
            if not session.released:
                self._release(session)

    def _release(self, session: CapturedSession) -> None:
        session.released = True
        c, s = session.client, session.server
        for key in (_key(c, s), _key(s, c)):
            route = self._routes.get(key)
            if route is not None and route[0] is session:
                del self._routes[key]
        self._finished.append(session)


def _key(src: Endpoint, dst: Endpoint) -> tuple[bytes, bytes, int]:
    """The route key of packets from ``src`` to ``dst`` (as ``feed`` builds it)."""
    return (src.addr, dst.addr, (src.port << 16) | dst.port)


def _index(session: CapturedSession) -> int:
    return session.index


class FlowLimitError(TcpcopyError):
    """A capture past one of the assembler's bounds (see the module comment): ``record`` is the
    packet's record index, ``limit`` the bound's name."""

    def __init__(self, record: int, reason: str, limit: str) -> None:
        self.record = record
        self.reason = reason
        self.limit = limit
        super().__init__(f"at record {record}: {reason}")

    def in_file(self, path: str) -> CaptureError:
        """The same error naming the capture file."""
        return CaptureError(path, self.record, f"{self.reason} (the {self.limit} bound of flow assembly)")


def assemble_sessions(
    packets: Iterable[Packet],
    server_ports: Collection[int] = (),
    *,
    keep_streams: bool = True,
    keep_segments: bool = True,
    path: str | None = None,
) -> Iterator[CapturedSession]:
    """Sessions of a packet stream, each as soon as it finishes, then the ones left open
    (``keep_streams``, ``keep_segments``: as ``FlowAssembler`` takes them); a bound passed is a
    CaptureError naming ``path`` when given."""
    assembler = FlowAssembler(server_ports, keep_streams=keep_streams, keep_segments=keep_segments)
    feed = assembler.feed
    try:
        for pkt in packets:
            feed(pkt)
            if assembler.has_finished():
                yield from assembler.pop_finished()
    except FlowLimitError as exc:
        if path is None:
            raise
        raise exc.in_file(path) from None
    yield from assembler.finish()
