"""What ReplayEngine reports per session and per exchange: responses read to their end or cut
(and why), sessions with nothing to replay, and a replay stopped early that still reports every
session of the capture. Sessions replayed into in-memory servers (tcpsim) on a hand-driven clock."""

from __future__ import annotations

import json

from tcpsim import TARGET, Script, SimServer, Stall, capture, decode_and_check

from pytest_tcpcopy.endpoint import Endpoint, parse_addr
from pytest_tcpcopy.replay.engine import ReplayEngine
from pytest_tcpcopy.replay.results import Outcome
from pytest_tcpcopy.tcp import TranslatorConfig

REQ = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
REPLAY_ADDR = parse_addr("198.18.0.7")


def session(k: int, **kw) -> list:
    """One single-request session from client port 41000 + k, starting k seconds in."""
    return [p._replace(sport=41000 + k, ts=p.ts + k) for p in capture([REQ], [len(RESP)], **kw)]


class Rig:
    """An engine, one simulated server per replay client endpoint (answering ``response``), a clock."""

    def __init__(self, response=RESP, **engine_kw) -> None:
        self.engine = ReplayEngine(TARGET, lambda c, n: Endpoint(REPLAY_ADDR, c.port + 1000 * n), **engine_kw)
        self.response = response
        self.servers: dict[tuple[bytes, int], SimServer] = {}
        self.now = 10.0

    def exchange(self) -> None:
        while True:
            for server in self.servers.values():
                for out in server.out:
                    self.engine.feed_sut(out, self.now)
                server.out.clear()
            packets = self.engine.packets_to_send()
            if not packets:
                return
            for raw in packets:
                seg = decode_and_check(raw)
                server = self.servers.setdefault(
                    (seg.src, seg.sport), SimServer(TARGET, Script([len(REQ)], [self.response]))
                )
                server.receive(raw, self.now)

    def feed(self, pkts: list) -> None:
        for pkt in pkts:
            self.engine.feed_capture(pkt, self.now)
            self.exchange()

    def run_out(self) -> None:
        """Fire timers (the engine's and the servers') until the engine has finished."""
        while not self.engine.finished:
            timers = [t for t in [self.engine.next_timer(), *(s.next_timer() for s in self.servers.values())] if t]
            assert timers, "stuck"
            self.now = max(self.now, min(timers))
            for server in self.servers.values():
                if (t := server.next_timer()) is not None and t <= self.now:
                    server.on_timer(self.now)
            self.engine.on_timer(self.now)
            self.exchange()

    def result(self) -> dict:
        return json.loads(json.dumps(self.engine.result(self.now).to_json()))


def test_a_response_read_to_its_end_says_by_which_rule():
    rig = Rig(config=TranslatorConfig(capture_payload=True))
    rig.feed(session(0))
    rig.engine.capture_done(rig.now)
    rig.run_out()
    (s,) = rig.result()["sessions"]
    (exchange,) = s["exchanges"]
    assert s["outcome"] == "complete"
    assert exchange["complete"] is True and exchange["cut"] is None
    assert exchange["response_end"] == "framing" and exchange["expected_response_bytes"] == len(RESP)


def test_a_response_cut_by_the_timeout_is_a_timeout_and_the_exchange_says_so():
    head = RESP[:-5]
    rig = Rig([head, Stall(60.0), b"hello"], config=TranslatorConfig(capture_payload=True, response_timeout=2.0))
    rig.feed(session(0))
    rig.engine.capture_done(rig.now)
    rig.run_out()
    doc = rig.result()
    (s,) = doc["sessions"]
    reason = f"SUT too slow: {len(head)} of {len(RESP)} bytes after 2.0 s"
    assert (s["outcome"], s["reason"]) == ("timeout", reason)
    (exchange,) = s["exchanges"]
    assert exchange["complete"] is False and exchange["cut"] == reason
    assert exchange["response_end"] == "timeout" and exchange["response_bytes"] == len(head)
    assert doc["totals"]["completed"] == 0 and doc["totals"]["aborted"] == {f"timeout: {reason}": 1}


def test_a_session_with_nothing_to_replay_is_reported_not_replayed():
    acks_only = [p for p in session(0, syn=False) if not p.payload][:2]  # no SYN, no payload
    rig = Rig()
    rig.feed(acks_only)
    rig.engine.capture_done(rig.now)
    rig.run_out()
    (s,) = rig.result()["sessions"]
    assert s["outcome"] == "not_replayed" and "nothing to replay" in s["reason"]
    assert s["established_at"] is None and not rig.servers


def test_a_stopped_replay_reports_every_session_of_the_capture():
    pkts = [p for k in range(5) for p in session(k)]
    first_three = [p for p in pkts if p.sport < 41003]
    rig = Rig([RESP[:10], Stall(60.0), RESP[10:]], max_active=1, amplify=2)
    rig.feed(first_three)  # session 0 runs (and waits for its response), 1 and 2 wait for a slot
    assert rig.engine.active == 1 and rig.engine.waiting == 2
    rig.engine.stop("intercept at 10.0.0.2:36524 closed the channel", rig.now)
    assert rig.engine.packets_to_send() == [] and rig.engine.next_timer() is None
    rig.feed([p for p in pkts if p.sport >= 41003])  # the rest of the capture, only counted
    rig.engine.capture_done(rig.now)
    assert rig.engine.packets_to_send() == []
    doc = rig.result()
    by_session = {(s["session"], s["copy"]): s for s in doc["sessions"]}
    assert sorted(by_session) == [(k, n) for k in range(5) for n in range(2)]  # all, both copies
    assert {by_session[0, n]["outcome"] for n in range(2)} == {"unfinished"}
    assert by_session[0, 0]["reason"] == "the replay stopped: intercept at 10.0.0.2:36524 closed the channel"
    assert by_session[0, 0]["exchanges"][0]["complete"] is False
    assert by_session[0, 0]["exchanges"][0]["cut"] == by_session[0, 0]["reason"]
    for k in range(1, 5):
        for n in range(2):
            s = by_session[k, n]
            assert s["outcome"] == Outcome.NOT_REPLAYED.value and s["established_at"] is None
            assert s["reason"] == "not replayed: the replay stopped: intercept at 10.0.0.2:36524 closed the channel"
    assert doc["totals"]["sessions"] == 10 and doc["totals"]["not_replayed"] == 8
    assert doc["stopped"] == {"reason": "intercept at 10.0.0.2:36524 closed the channel", "failure": False}
    assert rig.engine.sessions_total == 10


def test_finished_sessions_are_handed_out_as_they_end_and_no_longer_held():
    rig = Rig()
    rig.feed(session(0))
    rig.engine.capture_done(rig.now)
    rig.run_out()
    (done,) = rig.engine.take_finished()
    assert done.session == 0 and done.outcome is Outcome.COMPLETE
    assert rig.engine.take_finished() == [] and rig.engine.sessions_done == 1
    assert rig.engine.result(rig.now).sessions == []
