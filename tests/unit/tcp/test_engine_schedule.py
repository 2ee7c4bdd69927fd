"""ReplayEngine's request schedule (coordinated omission), delayed starts and progress counters,
with sessions replayed into in-memory servers (tcpsim) on a hand-driven clock."""

from __future__ import annotations

import io
import json

import pytest
from tcpsim import TARGET, Script, SimServer, capture, decode_and_check

from pytest_tcpcopy.commands.replay import progress_printer
from pytest_tcpcopy.endpoint import Endpoint, parse_addr
from pytest_tcpcopy.replay.contract import Progress
from pytest_tcpcopy.replay.engine import ReplayEngine

REQ1 = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
REQ2 = b"GET /bb HTTP/1.1\r\nHost: x\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
REPLAY_ADDR = parse_addr("198.18.0.7")


def sessions(count: int, spacing: float) -> list:
    """``count`` keep-alive sessions of two requests each, the k-th starting ``k * spacing`` s
    after the first, each from its own client port; all packets in capture order."""
    pkts = []
    for k in range(count):
        one = capture([REQ1, REQ2], [len(RESP)] * 2, gap=0.05)
        pkts += [p._replace(sport=41000 + k, ts=p.ts + k * spacing) for p in one]
    return sorted(pkts, key=lambda p: p.ts)


class Rig:
    """An engine, one simulated server per replay client endpoint, and a clock."""

    def __init__(self, **engine_kw) -> None:
        self.engine = ReplayEngine(TARGET, lambda c, n: Endpoint(REPLAY_ADDR, c.port + 1000 * n), **engine_kw)
        self.servers: dict[tuple[bytes, int], SimServer] = {}
        self.now = 50.0  # the engine's epoch is the `now` of its first captured packet

    def exchange(self) -> None:
        """Pass packets both ways until neither side has more."""
        while True:
            packets = self.engine.packets_to_send()
            if not packets:
                return
            for raw in packets:
                seg = decode_and_check(raw)
                key = (seg.src, seg.sport)
                server = self.servers.setdefault(key, SimServer(TARGET, Script([len(REQ1), len(REQ2)], [RESP, RESP])))
                server.receive(raw, self.now)
                for out in server.out:
                    self.engine.feed_sut(out, self.now)
                server.out.clear()

    def advance(self, until: float) -> None:
        """Fire every engine timer due up to ``until``, then set the clock there."""
        while (timer := self.engine.next_timer()) is not None and timer <= until:
            self.now = max(self.now, timer)
            self.engine.on_timer(self.now)
            self.exchange()
        self.now = until

    def replay(self, pkts: list, speed: float | None) -> None:
        ts0, start = pkts[0].ts, self.now
        for pkt in pkts:
            if speed is not None:
                self.advance(start + (pkt.ts - ts0) / speed)
            self.engine.feed_capture(pkt, self.now)
            self.exchange()
        self.engine.capture_done(self.now)
        self.exchange()
        while not self.engine.finished:
            timer = self.engine.next_timer()
            assert timer is not None, "stuck"
            self.advance(max(timer, self.now))


def test_every_request_carries_the_capture_time_of_its_first_byte_at_the_replay_speed():
    pkts = sessions(2, spacing=1.0)
    rig = Rig(speed=2.0)
    rig.replay(pkts, speed=2.0)
    result = rig.engine.result(rig.now)
    ts0 = pkts[0].ts
    for session in result.sessions:
        requests = [p for p in pkts if p.payload_len and p.sport == 41000 + session.session]
        expected = [(p.ts - ts0) / 2.0 for p in requests]
        assert [e.scheduled_at for e in session.exchanges] == pytest.approx(expected)
        assert all(e.sent_at >= e.scheduled_at for e in session.exchanges)
        assert session.to_json()["exchanges"][1]["scheduled_at"] == pytest.approx(expected[1], abs=1e-6)
    second = next(s for s in result.sessions if s.session == 1)
    assert second.exchanges[0].scheduled_at == pytest.approx((1.0 + 0.002 + 0.05) / 2)  # SYN, ACK, request at x2


def test_a_request_sent_late_keeps_its_schedule():
    # Session 1 starts only when session 0 frees the one slot: its requests go out late.
    pkts = sessions(2, spacing=0.01)
    rig = Rig(speed=1.0, max_active=1)
    rig.replay(pkts, speed=1.0)
    result = rig.engine.result(rig.now)
    late = next(s for s in result.sessions if s.session == 1)
    first = late.exchanges[0]
    assert first.scheduled_at == pytest.approx(0.01 + 0.002 + 0.05)  # SYN, third ACK, then the request
    assert first.sent_at - first.scheduled_at > 0.05  # it waited for session 0's requests
    assert rig.engine.delayed_starts == 1 and result.totals()["delayed_starts"] == 1
    assert any("1 sessions waited for a free slot (max 1 active)" in note for note in result.notes)


def test_unpaced_replays_have_no_schedule_and_count_their_progress():
    pkts = sessions(3, spacing=0.5)
    rig = Rig(max_active=1)
    engine = rig.engine
    assert (engine.sessions_done, engine.sessions_total, engine.requests, engine.errors) == (0, None, 0, 0)
    for pkt in pkts:
        engine.feed_capture(pkt, rig.now)
    assert engine.sessions_total is None  # still reading the capture
    engine.capture_done(rig.now)
    rig.exchange()
    assert engine.sessions_total == 3 and engine.delayed_starts == 2
    while not engine.finished:
        rig.advance(max(engine.next_timer(), rig.now))
    result = engine.result(rig.now)
    assert (engine.sessions_done, engine.requests, engine.errors, engine.active, engine.waiting) == (3, 6, 0, 0, 0)
    assert all(e.scheduled_at is None for s in result.sessions for e in s.exchanges)
    assert result.to_json()["sessions"][0]["exchanges"][0]["scheduled_at"] is None


def test_sessions_the_sut_refuses_count_as_errors_and_the_total_is_known_from_the_selection():
    pkts = sessions(2, spacing=0.5)
    rig = Rig(amplify=2, only_sessions=[0, 1])
    assert rig.engine.sessions_total == 4  # 2 selected sessions x 2 copies, before the capture is read
    for server_key in [(REPLAY_ADDR, 41000 + d) for d in (0, 1, 1000, 1001)]:
        script = Script([len(REQ1), len(REQ2)], [RESP, RESP])
        rig.servers[server_key] = SimServer(TARGET, script, listening=False)
    rig.replay(pkts, speed=None)
    assert (rig.engine.sessions_done, rig.engine.errors, rig.engine.requests) == (4, 4, 0)


def test_the_progress_printer_writes_one_json_line_per_call_with_the_rate_since_the_last():
    pkts = sessions(2, spacing=0.5)
    rig = Rig()
    clock = [10.0]
    out = io.StringIO()
    report = progress_printer(out, clock=lambda: clock[0])
    clock[0] = 11.0
    report(rig.engine)
    rig.replay(pkts, speed=None)
    clock[0] = 11.5
    report(rig.engine)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first == {"event": "progress", "sessions_done": 0, "sessions_total": None, "active": 0, "waiting": 0,
                     "requests": 0, "rate": 0.0, "errors": 0}  # fmt: skip
    assert second == {"event": "progress", "sessions_done": 2, "sessions_total": 2, "active": 0, "waiting": 0,
                      "requests": 4, "rate": 4.0, "errors": 0}  # fmt: skip
    second.pop("event")
    assert Progress.from_line(out.getvalue().splitlines()[1]) == Progress(**second)
    assert Progress.from_line("Traceback (most recent call last):") is None
    assert Progress.from_line('{"event": "progress", "sessions_done": ') is None  # cut short
