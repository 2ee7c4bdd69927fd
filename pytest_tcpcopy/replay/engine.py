"""The copier's sans-IO core: captured packets and SUT segments in, packets to send and results out.

``ReplayEngine`` routes each captured client packet to its session (flow assembly decides which
packets form a session, exactly as ``inspect`` shows them), creates one ``SessionTranslator`` per
session copy (``amplify`` copies, each on its own guaranteed-unique client endpoint), routes every
SUT segment the intercept reports to the translator that owns its destination, keeps the timers
of all translators in one heap, and turns translator events into ``SessionResult``s.

A bound on concurrently active sessions keeps the SUT's backlog and our memory in check: sessions
beyond it wait, their captured packets buffered, until a slot frees. The shell decides when to feed
(pacing) and does all I/O. A session that waited started later than the capture's schedule says:
those are counted (``delayed_starts``), since they mean the offered load was not met.

With a ``speed``, every request also gets its *scheduled* time: the capture timestamp of the
captured client segment holding its first byte, mapped onto replay time as the shell's
``CapturePacer`` maps it. Latency measured from there is free of coordinated omission: a slow SUT
that delays later requests is charged for the delay.

Counters for progress reports (``sessions_done``, ``requests``, ``errors``, ``delayed_starts``,
``active``, ``waiting``) are kept up to date as events arrive.

A replay that must end before its sessions did (its time limit, a lost intercept) calls `stop`:
from then on nothing is sent, the live copies stay UNFINISHED with the reason, and every session
not started, waiting or still to come in the capture (feed the rest of it: it is only counted),
is reported NOT_REPLAYED with the reason, so that every session of the capture appears.

Inputs only mark the translators they touched; their packets, events and timers are collected
when an output is asked for (`packets_to_send`, `next_timer`, `on_timer`, ...). The shell feeds a
batch (captured packets, or the intercept records of one read) at one `now`, so each touched
translator is drained once per batch and answers the SUT's segments of the batch together
(the FIN that acks the SUT's response and FIN at once, instead of a FIN and then an ACK).
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Callable, Collection
from dataclasses import dataclass

from ..endpoint import Endpoint
from ..flows.assembler import FlowAssembler
from ..flows.session import CapturedSession
from ..kernel.codecs import SutSegment, parse_sut_segment
from ..kernel.packet import SYN, Packet
from ..tcp.config import TranslatorConfig
from ..tcp.events import (
    Aborted,
    AbortReason,
    Closed,
    Established,
    Reconnected,
    RequestSent,
    ResponseData,
    ResponseEnded,
)
from ..tcp.pacing import CapturePacer
from ..tcp.seq import unwrap
from ..tcp.translator import SessionTranslator
from .results import ExchangeTiming, Outcome, ReplayResult, SessionResult

_OUTCOME_BY_REASON = {
    AbortReason.SUT_RESET: Outcome.SUT_RESET,
    AbortReason.NOT_ESTABLISHED: Outcome.NOT_ESTABLISHED,
    AbortReason.IDLE_TIMEOUT: Outcome.TIMEOUT,
    AbortReason.RESPONSE_TIMEOUT: Outcome.TIMEOUT,
    AbortReason.NOTHING_TO_REPLAY: Outcome.NOT_REPLAYED,
}
_DEFAULT_CONFIG = TranslatorConfig()

# Maps (captured client endpoint, copy number) to the client endpoint the SUT will see.
ClientMapper = Callable[[Endpoint, int], Endpoint]


class _Copy:
    """One live translator and the result it is building."""

    __slots__ = ("client_key", "queued", "result", "timer", "translator")

    def __init__(self, translator: SessionTranslator, result: SessionResult, client_key: tuple[bytes, int]) -> None:
        self.translator = translator
        self.result = result
        self.client_key = client_key  # the replay client endpoint, as SUT segments are routed
        self.timer: float | None = None  # the translator's deadline
        # The deadline of this copy's live entry in the timer heap: never later than `timer`
        # (a deadline that moves later keeps its entry, which is moved on when it comes up).
        self.queued: float | None = None


class _Schedule:
    """When the captured client sent each new byte of one session, in replay time: client-stream
    offsets (from the byte after the ISN, as the translator counts) to scheduled times."""

    __slots__ = ("_high", "_isn", "_starts", "_times")

    def __init__(self) -> None:
        self._isn: int | None = None
        self._starts: list[int] = []  # offset of the first new byte of each captured data segment
        self._times: list[float] = []
        self._high = 0  # end of the bytes seen so far

    def add(self, pkt: Packet, scheduled: float) -> None:
        if pkt.flags & SYN:
            if self._isn is None:
                self._isn = pkt.seq
            return
        if not pkt.payload_len:
            return
        if self._isn is None:
            self._isn = (pkt.seq - 1) & 0xFFFFFFFF  # no SYN captured: the translator's rule too
        off = unwrap(pkt.seq, self._isn + 1, self._high)
        end = off + pkt.payload_len
        if end <= self._high:
            return  # a retransmission: the bytes were scheduled when first captured
        self._starts.append(max(off, self._high))
        self._times.append(scheduled)
        self._high = end

    def at(self, offset: int) -> float | None:
        """Scheduled time of the captured segment holding client byte ``offset``."""
        i = bisect_right(self._starts, offset) - 1
        return self._times[max(i, 0)] if self._times else None


@dataclass(slots=True)
class _Waiting:
    """A captured session waiting for a free slot, with its packets so far."""

    packets: list[Packet]
    capture_ended: bool = False


class ReplayEngine:
    def __init__(
        self,
        target: Endpoint,
        client_mapper: ClientMapper,
        *,
        config: TranslatorConfig = _DEFAULT_CONFIG,
        server_ports: Collection[int] = (),
        amplify: int = 1,
        max_active: int = 10_000,
        only_sessions: Collection[int] | None = None,
        speed: float | None = None,
    ) -> None:
        """``speed`` is the shell's pacing factor (None: unpaced, so no request has a scheduled time)."""
        if amplify < 1:
            raise ValueError("amplify must be at least 1")
        self.target = target
        self._target_text = str(target)
        self._map_client = client_mapper
        self._config = config
        self._amplify = amplify
        self._max_active = max_active
        self._only = None if only_sessions is None else frozenset(only_sessions)
        self._flows = FlowAssembler(server_ports, keep_streams=False, server_coverage=False)
        self._copies: dict[int, list[_Copy]] = {}  # captured session index -> its live copies
        self._by_client: dict[tuple[bytes, int], _Copy] = {}  # replay client endpoint -> copy
        self._waiting: dict[int, _Waiting] = {}  # insertion-ordered: first come, first started
        # Deadlines in a heap of plain floats (a float compares in a fraction of a tuple's time),
        # each with the copies queued at it.
        self._timers: list[float] = []
        self._due: dict[float, list[_Copy]] = {}
        self._active = 0
        # Sessions whose copies all ended while the capture still has packets for them (and,
        # once the replay stopped, those reported not replayed): the rest of their packets is moot.
        self._ended_early: set[int] = set()
        self._out: list[bytes] = []
        self._registrations: list[tuple[Endpoint, Endpoint]] = []
        self._done: list[SessionResult] = []
        self._taken = 0  # results handed out by take_finished()
        self._epoch: float | None = None
        self._capture_done = False
        self._dirty: dict[int, _Copy] = {}  # id -> copy fed since the last drain, in feed order
        self._now = 0.0  # the `now` of the latest input, for draining the copies it touched
        self.unrouted_sut_segments = 0
        self._pacer = None if speed is None else CapturePacer(speed)
        self._schedules: dict[int, _Schedule] = {}  # captured session index -> its schedule
        self._sessions_seen = 0
        self.requests = 0  # RequestSent events so far, over every copy
        self.errors = 0  # copies that ended other than COMPLETE
        self.delayed_starts = 0  # sessions that had to wait for a slot (max_active) to start
        self._stopped: str | None = None  # why the replay stopped early (see `stop`)

    # -- inputs -------------------------------------------------------------------------------

    def feed_capture(self, pkt: Packet, now: float) -> None:
        """The next captured packet, in capture order, when pacing says it is due."""
        route = self._flows.feed(pkt)
        if self._epoch is None:
            self._epoch = now
            if self._pacer is not None:
                self._pacer.due(pkt.ts, 0.0)  # anchors the capture's first timestamp at replay time 0
        self._now = now
        if route is not None and route[1]:
            self._client_packet(route[0], pkt, now)
        if self._flows.has_finished():
            for session in self._flows.pop_finished():
                self._capture_ended(session.index, now)

    def capture_done(self, now: float) -> None:
        """No more captured packets will come."""
        self._now = now
        for session in self._flows.finish():
            self._capture_ended(session.index, now)
        self._capture_done = True

    def feed_sut(self, record: bytes, now: float) -> None:
        """One SUT segment as the intercept reported it (raw IP packet bytes)."""
        seg = parse_sut_segment(record)
        copy = self._by_client.get((seg.dst, seg.dport))
        if copy is None:
            self.unrouted_sut_segments += 1
            return
        self._now = now
        self._deliver_sut(copy, seg, now)

    def stop(self, reason: str, now: float) -> None:
        """The replay ends now, before its sessions did (see the module comment)."""
        if self._dirty:
            self._drain_dirty()
        self._now = now
        self._stopped = reason
        for copies in self._copies.values():
            for copy in copies:
                result = copy.result
                result.reason = f"the replay stopped: {reason}"
                if result.exchanges and result.exchanges[-1].response_end is None:
                    result.exchanges[-1].cut = result.reason
        for index, waiting in list(self._waiting.items()):
            first = waiting.packets[0]
            self._not_replayed(index, Endpoint(first.src, first.sport), now)
        self._waiting.clear()
        self._timers.clear()
        self._due.clear()
        self._out.clear()
        self._registrations.clear()

    def next_timer(self) -> float | None:
        if self._dirty:
            self._drain_dirty()
        timers = self._timers
        while timers:
            deadline = timers[0]
            queued = self._due[deadline]
            for copy in queued:
                if self._is_due(copy, deadline):
                    return deadline
            heapq.heappop(timers)  # nothing due then any more: superseded, moved later, or gone
            del self._due[deadline]
            for copy in queued:
                self._requeue(copy, deadline)
        return None

    def on_timer(self, now: float) -> None:
        if self._dirty:
            self._drain_dirty()
        timers = self._timers
        while timers and timers[0] <= now:
            deadline = heapq.heappop(timers)
            for copy in self._due.pop(deadline):
                self._fire(copy, deadline, now)

    # -- outputs ------------------------------------------------------------------------------

    def packets_to_send(self) -> list[bytes]:
        if self._dirty:
            self._drain_dirty()
        out = self._out
        self._out = []
        return out

    def registrations(self) -> list[tuple[Endpoint, Endpoint]]:
        """(client, target) pairs to register with the intercept(s) before sending their packets."""
        if self._dirty:
            self._drain_dirty()
        regs = self._registrations
        self._registrations = []
        return regs

    @property
    def active(self) -> int:
        if self._dirty:
            self._drain_dirty()
        return self._active

    @property
    def waiting(self) -> int:
        """Sessions waiting for a slot (not counting slots that copies fed since the last output
        call are about to free: the number only errs high, which is what a bound needs)."""
        return len(self._waiting)

    def take_finished(self) -> list[SessionResult]:
        """The session copies that ended since the last call; they are no longer held, nor in
        ``result()`` (a shell that streams results hands them on as they end)."""
        done, self._done = self._done, []
        self._taken += len(done)
        return done

    @property
    def sessions_done(self) -> int:
        """Session copies that ended."""
        return self._taken + len(self._done)

    @property
    def sessions_total(self) -> int | None:
        """Session copies this replay will run: known once the capture is read through (or from
        ``only_sessions``); None before."""
        if self._capture_done:
            return self._sessions_seen * self._amplify
        return None if self._only is None else len(self._only) * self._amplify

    @property
    def finished(self) -> bool:
        if self._dirty:
            self._drain_dirty()
        return self._capture_done and not self._active and not self._waiting

    @property
    def stopped(self) -> str | None:
        """Why the replay was stopped early (`stop`), or None."""
        return self._stopped

    def result(self, now: float, notes: list[str] | None = None) -> ReplayResult:
        """Results so far (those not taken by ``take_finished``); sessions still running are
        reported as UNFINISHED."""
        if self._dirty:
            self._drain_dirty()
        sessions = list(self._done)
        for copies in self._copies.values():
            sessions.extend(c.result for c in copies)
        elapsed = 0.0 if self._epoch is None else now - self._epoch
        notes = list(notes or [])
        if self.delayed_starts:
            notes.append(
                f"{self.delayed_starts} sessions waited for a free slot (max {self._max_active} active): "
                "they started later than the capture's schedule, so the offered load was not met"
            )
        if self.unrouted_sut_segments:
            notes.append(f"{self.unrouted_sut_segments} SUT segments matched no live session")
        return ReplayResult(sessions, elapsed, notes, delayed_starts=self.delayed_starts, stopped=self._stopped)

    # -- internals ----------------------------------------------------------------------------

    def _client_packet(self, session: CapturedSession, pkt: Packet, now: float) -> None:
        """A captured client packet of ``session``: to its live copies, or to the session's wait for
        a slot, or starting its copies."""
        index = session.index
        if self._only is not None and index not in self._only:
            return
        if self._stopped is not None:
            if self._not_replayed(index, session.client, now):
                self._sessions_seen += 1
            return
        copies = self._copies.get(index)
        if copies is None:
            if index in self._ended_early:
                return  # every copy already ended (e.g. refused); the rest of its capture is moot
            self._add_to_schedule(index, pkt)
            waiting = self._waiting.get(index)
            if waiting is not None:
                waiting.packets.append(pkt)
                return
            self._sessions_seen += 1
            clients = self._free_clients(session.client)
            if clients is None:
                if self._active >= self._max_active:
                    self.delayed_starts += 1
                self._waiting[index] = _Waiting([pkt])
                return
            copies = self._start(index, session.client, clients, now)
        else:
            self._add_to_schedule(index, pkt)
        for copy in copies:
            self._deliver_client(copy, pkt, now)

    def _deliver_client(self, copy: _Copy, pkt: Packet, now: float) -> None:
        """A captured client packet to one copy, to be drained if it changed anything."""
        if copy.translator.feed_client(pkt, now):
            self._dirty[id(copy)] = copy

    def _deliver_sut(self, copy: _Copy, seg: SutSegment, now: float) -> None:
        """A SUT segment to the copy it is for, to be drained."""
        copy.translator.feed_sut(seg, now)
        self._dirty[id(copy)] = copy

    def _deliver_end(self, copy: _Copy, now: float) -> None:
        """The end of the capture to one copy, to be drained."""
        copy.translator.end_of_capture(now)
        self._dirty[id(copy)] = copy

    def _add_to_schedule(self, index: int, pkt: Packet) -> None:
        if self._pacer is None:
            return
        schedule = self._schedules.get(index)
        if schedule is None:
            schedule = self._schedules[index] = _Schedule()
        schedule.add(pkt, self._pacer.due(pkt.ts, 0.0))

    def _free_clients(self, captured_client: Endpoint) -> list[Endpoint] | None:
        """The replay client endpoints of a session's copies when it can start: a free slot, and
        no live copy on the same replay client endpoint (a captured client that reused its port
        must not collide with its previous connection still replaying); else None."""
        if self._active >= self._max_active:
            return None
        clients = [self._map_client(captured_client, n) for n in range(self._amplify)]
        for client in clients:
            if (client.addr, client.port) in self._by_client:
                return None
        return clients

    def _start(self, index: int, captured_client: Endpoint, clients: list[Endpoint], now: float) -> list[_Copy]:
        rel = now - (self._epoch or now)
        copies = []
        target = self._target_text
        for n, client in enumerate(clients):
            translator = SessionTranslator(self._config, client, self.target, session_id=index, copy=n)
            # Endpoints, not their text: formatted when the result is serialised, off the hot path.
            result = SessionResult(index, n, captured_client, client, target, started_at=rel)
            copy = _Copy(translator, result, (client.addr, client.port))
            self._by_client[copy.client_key] = copy
            self._registrations.append((client, self.target))
            copies.append(copy)
        self._copies[index] = copies
        self._active += 1
        return copies

    def _capture_ended(self, index: int, now: float) -> None:
        self._ended_early.discard(index)
        if self._stopped is not None:
            return  # nothing more is sent: the live copies stay as they are
        waiting = self._waiting.get(index)
        if waiting is not None:
            waiting.capture_ended = True
            return
        for copy in self._copies.get(index, ()):
            self._deliver_end(copy, now)

    def _drain_dirty(self) -> None:
        """Drain every copy fed since the last drain, in the order they were first fed (a
        retiring copy may start waiting sessions; those are fed and drained on the spot)."""
        dirty, self._dirty = self._dirty, {}
        now = self._now
        for copy in dirty.values():
            self._drain(copy, now)

    def _drain(self, copy: _Copy, now: float) -> None:
        """Collect a translator's packets, events and timer after any call into it."""
        translator = copy.translator
        packets = translator.packets_to_send()
        if packets:
            self._out.extend(packets)
        events = translator.events()
        if events:
            self._record(copy.result, events, now - (self._epoch or now), self._schedules.get(copy.result.session))
        if translator.finished:
            self._retire(copy, now)
            return
        deadline = translator.next_timer()
        if deadline != copy.timer:
            copy.timer = deadline
            if deadline is not None and (copy.queued is None or deadline < copy.queued):
                self._queue(copy)

    def _is_due(self, copy: _Copy, deadline: float) -> bool:
        """Whether ``deadline`` is ``copy``'s timer and its live entry in the heap."""
        return copy.queued == deadline and copy.timer == deadline

    def _requeue(self, copy: _Copy, deadline: float) -> None:
        """The heap's entry at ``deadline`` is gone: ``copy``'s timer, if that was its live entry,
        gets a new one."""
        if copy.queued == deadline:
            copy.queued = None
            self._queue(copy)

    def _fire(self, copy: _Copy, deadline: float, now: float) -> None:
        """The heap's entry at ``deadline`` came up: run ``copy``'s timer if that is its deadline
        and live entry, or give its later deadline an entry."""
        if copy.queued != deadline:
            return  # superseded by an earlier entry
        copy.queued = None
        if copy.timer != deadline:
            self._queue(copy)  # the deadline moved later (or went)
            return
        copy.timer = None
        copy.translator.on_timer(now)
        self._drain(copy, now)

    def _queue(self, copy: _Copy) -> None:
        """Give ``copy``'s deadline an entry in the timer heap (any entry it had is superseded)."""
        if copy.timer is None:
            return
        deadline = copy.queued = copy.timer
        queued = self._due.get(deadline)
        if queued is None:
            self._due[deadline] = [copy]
            heapq.heappush(self._timers, deadline)
        else:
            queued.append(copy)

    def _record(self, result: SessionResult, events: list, rel: float, schedule: _Schedule | None) -> None:
        for event in events:  # the busiest kinds have methods: engine.pxd types their event
            kind = type(event)
            if kind is ResponseData:
                self._response_data(result, event, rel)
            elif kind is RequestSent:
                self._request_sent(result, event, rel, schedule)
            elif kind is ResponseEnded:
                if result.exchanges:
                    exchange = result.exchanges[-1]
                    exchange.response_end = event.by.value
                    exchange.expected_response_bytes = event.expected
            elif kind is Established:
                if result.established_at is None:
                    result.established_at = rel
            elif kind is Reconnected:
                result.reconnects += 1
            elif kind is Closed:
                result.outcome = Outcome.COMPLETE
                result.reason = f"closed by {event.by.value}" + (" (reset)" if event.reset else "")
                result.finished_at = rel
            elif kind is Aborted:
                result.outcome = _OUTCOME_BY_REASON.get(event.reason, Outcome.ABORTED)
                result.reason = event.detail or event.reason.value
                result.finished_at = rel
                if result.exchanges:
                    exchange = result.exchanges[-1]
                    if exchange.response_end is None or exchange.response_end == "timeout":
                        exchange.cut = result.reason  # given up while its response was awaited

    def _response_data(self, result: SessionResult, data: ResponseData, rel: float) -> None:
        result.response_bytes += data.length
        if result.exchanges:
            exchange = result.exchanges[-1]
            if exchange.first_response_at is None:
                exchange.first_response_at = rel
            exchange.last_response_at = rel
            exchange.response_bytes += data.length
        if data.data is not None:
            result.response_chunks[data.offset] = data.data

    def _request_sent(self, result: SessionResult, sent: RequestSent, rel: float, schedule: _Schedule | None) -> None:
        self.requests += 1
        result.requests_sent += 1
        result.request_bytes += sent.length
        scheduled = None if schedule is None else schedule.at(sent.offset)
        result.exchanges.append(ExchangeTiming(sent.offset, sent.length, rel, scheduled_at=scheduled))

    def _not_replayed(self, index: int, captured_client: Endpoint, now: float) -> bool:
        """Report a session the stopped replay never started (once, one result per copy);
        False when it was reported already, or is live (and left UNFINISHED)."""
        if index in self._ended_early or index in self._copies:
            return False
        self._ended_early.add(index)
        rel = now - (self._epoch or now)
        reason = f"not replayed: the replay stopped: {self._stopped}"
        for n in range(self._amplify):
            result = SessionResult(index, n, captured_client, self._map_client(captured_client, n), self._target_text,
                                   outcome=Outcome.NOT_REPLAYED, reason=reason, finished_at=rel)  # fmt: skip
            self._done.append(result)
            self.errors += 1
        return True

    def _retire(self, copy: _Copy, now: float) -> None:
        copy.timer = None
        result = copy.result
        result.retransmits = copy.translator.counters.retransmits
        self._by_client.pop(copy.client_key, None)
        index = result.session
        copies = self._copies[index]
        copies.remove(copy)
        self._done.append(result)
        if result.outcome is not Outcome.COMPLETE:
            self.errors += 1
        if not copies:
            del self._copies[index]
            self._schedules.pop(index, None)
            self._ended_early.add(index)
            self._active -= 1
            self._start_waiting(now)

    def _start_waiting(self, now: float) -> None:
        for index in list(self._waiting):
            if self._active >= self._max_active:
                return
            waiting = self._waiting[index]
            first = waiting.packets[0]
            captured_client = Endpoint(first.src, first.sport)
            clients = self._free_clients(captured_client)
            if clients is None:
                continue
            del self._waiting[index]
            copies = self._start(index, captured_client, clients, now)
            for pkt in waiting.packets:
                for copy in copies:
                    copy.translator.feed_client(pkt, now)
            for copy in list(copies):
                if waiting.capture_ended:
                    copy.translator.end_of_capture(now)
                self._drain(copy, now)
