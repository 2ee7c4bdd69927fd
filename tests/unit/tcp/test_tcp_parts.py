"""The translator's parts, each on its own: the state machine's triggers and flags, the captured
stream cursor, loss recovery, the request gate and the receiver."""

from __future__ import annotations

import pytest
from tcpsim import CLIENT, TARGET, capture

from pytest_tcpcopy.capture.packet import ACK, FIN, PSH
from pytest_tcpcopy.tcp import (
    Aborted,
    AbortReason,
    Closed,
    Established,
    Reconnected,
    ResponseData,
    ResponseEnd,
    ResponseEnded,
    SessionCounters,
    Side,
)
from pytest_tcpcopy.tcp._state import WAIT_NOTHING, WAIT_RESPONSE, SessionState, SessionStateMachine
from pytest_tcpcopy.tcp.cursor import DATA, FIN_MARK, CapturedStream
from pytest_tcpcopy.tcp.gate import QUIET_FACTOR, RequestGate
from pytest_tcpcopy.tcp.output import SessionOutput
from pytest_tcpcopy.tcp.receiver import Receiver
from pytest_tcpcopy.tcp.recovery import RTO_MAX, Recovery
from pytest_tcpcopy.kernel.codecs import SutSegment

S = SessionState


# ---------------------------------------------------------------------------- the state machine


def test_each_trigger_that_reports_returns_its_event():
    sm = SessionStateMachine()
    sm.send_syn()
    assert sm.established(True) == Established(fake_syn=True) and sm.state is S.ESTABLISHED
    sm.on_sut_fin()
    assert sm.sut_closed and sm.closed_first is Side.SUT
    sm.wait_for(WAIT_RESPONSE)
    assert sm.reconnect(1, 500) == Reconnected(1, 500)
    assert (sm.state, sm.sut_closed, sm.closed_first, sm.waiting_for) == (S.SYN_SENT, False, None, WAIT_NOTHING)
    sm.established(True)
    sm.send_fin()
    assert sm.closed_first is Side.CLIENT and sm.state is S.CLOSING
    assert sm.finish(Side.CLIENT, False) == Closed(Side.CLIENT, False) and sm.terminal


def test_aborting_clears_what_the_session_waited_for():
    sm = SessionStateMachine()
    sm.send_syn()
    sm.wait_for(WAIT_RESPONSE)
    assert sm.abort(AbortReason.IDLE_TIMEOUT, "x") == Aborted(AbortReason.IDLE_TIMEOUT, "x")
    assert sm.waiting_for == WAIT_NOTHING and sm.state is S.ABORTED


# ---------------------------------------------------------------------------- the captured stream


def _stream(requests, responses, **kw):
    sm = SessionStateMachine()
    cap = CapturedStream(sm, SessionCounters())
    pkts = capture(requests, responses, **kw)
    return sm, cap, pkts


def test_deltas_give_each_response_its_captured_length_and_pure_acks_the_last():
    _sm, cap, pkts = _stream([b"a" * 10, b"b" * 20, b"c" * 5], [100, 200, 300], fin=False)
    changed = [cap.feed(p) for p in pkts]
    # SYN, third ACK and the three requests matter; the acks of the responses only say how much
    assert changed == [True, True, True, False, True, False, True, False]
    chunks = list(cap.unsent)
    assert [(c.kind, c.delta, c.until) for c in chunks] == [(DATA, 0, 0), (DATA, 100, 100), (DATA, 200, 300)]
    assert cap.last_response_length(False) == 300  # from the last request's ack to the last pure ACK
    assert cap.last_response_length(True) == 600  # pipelined: everything since the first request


def test_a_captured_fin_carries_the_last_response_length():
    sm, cap, pkts = _stream([b"q" * 10], [1234])
    for p in pkts:
        cap.feed(p)
    (_request, fin) = cap.unsent
    assert (fin.kind, fin.delta) == (FIN_MARK, 1234) and sm.capture_closed


def test_without_an_ack_of_the_last_response_its_length_is_unknown():
    _sm, cap, pkts = _stream([b"q" * 10], [0], fin=False)
    for p in pkts:
        cap.feed(p)
    assert cap.last_response_length(False) is None


def test_a_hole_left_at_the_end_of_capture_is_a_gap():
    sm, cap, pkts = _stream([b"x" * 3000], [10], mss=1000)
    data = [p for p in pkts if p.payload]
    for p in pkts:
        if p is not data[1]:
            cap.feed(p)
    assert cap.held and not sm.gap
    cap.end()
    assert sm.gap


def test_take_piece_never_joins_two_requests():
    _sm, cap, pkts = _stream([b"a" * 700, b"b" * 700], [10, 10], mss=500)
    for p in pkts:
        cap.feed(p)
    assert cap.take_piece(1460)[0] == b"a" * 700  # two captured segments, one request
    assert cap.take_piece(1460)[0] == b"b" * 700


# ---------------------------------------------------------------------------------- recovery


def test_three_duplicate_acks_resend_the_head_and_partial_acks_the_next_hole():
    counters = SessionCounters()
    tx = Recovery(counters, rto=0.2, mss=1000)
    tx.start(0, 65535, 0, 1000)
    sent = [tx.track(b"x" * 1000, 0, ACK, 0.0) for _ in range(4)]
    assert tx.on_ack(1000, 65535, True, 0.1) is None  # the first segment arrived
    for n in range(2):
        assert tx.on_ack(1000, 65535, True, 0.1) is None
    assert tx.on_ack(1000, 65535, True, 0.1) is sent[1] and counters.fast_retransmits == 1
    assert tx.on_ack(2000, 65535, False, 0.2) is sent[2]  # partial ack: the next hole at once
    assert tx.on_ack(4000, 65535, False, 0.3) is None and tx.recover is None and tx.rto_at is None


def test_the_retransmission_timeout_backs_off_up_to_its_cap():
    tx = Recovery(SessionCounters(), rto=1.0, mss=1000)
    tx.start(0, 65535, 0, 1000)
    head = tx.track(b"x", 0, ACK | PSH, 0.0)
    rtos = []
    for _ in range(6):
        assert tx.on_timeout(0.0) is head
        rtos.append(tx.rto)
    assert rtos == [2.0, 4.0, 8.0, RTO_MAX, RTO_MAX, RTO_MAX]


def test_unacked_data_is_what_a_new_connection_resends():
    tx = Recovery(SessionCounters(), rto=0.2, mss=1000)
    tx.start(0, 65535, 0, 1000)
    tx.track(b"abcd", 0, ACK, 0.0)
    tx.track(b"efgh", 0, ACK, 0.0)
    tx.on_ack(2, 65535, False, 0.1)
    assert tx.unacked() == [b"cd", b"efgh"]


# -------------------------------------------------------------------------------- the gate


def _gate(**kw):
    sm = SessionStateMachine()
    out = SessionOutput(CLIENT, TARGET, 0, SessionCounters())
    settings = {"pipeline": False, "capture_payload": False, "response_timeout": 5.0, "quiet_floor": 1.0} | kw
    gate = RequestGate(sm, out, **settings)
    gate.connect(0.0)
    return sm, out, gate


def test_the_captured_length_ends_a_response_and_the_verdict_is_reported_once():
    _sm, out, gate = _gate()
    gate.on_request(b"GET", 0.0, True)
    gate.on_data(600, None, 0.1)
    assert not gate.over(1000, 0.2, False, False)
    gate.on_data(400, None, 0.3)
    assert gate.over(1000, 0.3, False, False) and gate.over(1000, 0.4, False, False)
    assert out.events == [ResponseEnded(ResponseEnd.LENGTH, 1000, 1000)]


def test_a_hole_holds_any_verdict_but_the_sut_closing():
    sm, out, gate = _gate()
    gate.on_request(b"x", 0.0, True)
    gate.on_data(1000, None, 0.1)
    assert not gate.over(1000, 0.2, True, False)
    sm.on_sut_fin()
    assert gate.over(1000, 0.2, True, False) and out.events[-1].by is ResponseEnd.CLOSE


def test_the_framing_decides_over_the_captured_length():
    _sm, out, gate = _gate(capture_payload=True)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    gate.on_request(b"GET / HTTP/1.1\r\n\r\n", 0.0, True)
    gate.on_data(len(head), head, 0.1)
    assert not gate.over(len(head), 30.0, False, False)  # the captured length is reached, the body is not
    assert gate.deadline(False) == 0.1 + 5.0  # no quiet period: only the timeout bounds the wait
    gate.on_data(10, b"0123456789", 0.5)
    assert gate.over(1, 0.5, False, False) and out.events[-1] == ResponseEnded(ResponseEnd.FRAMING, len(head) + 10, len(head) + 10)


def test_silence_ends_an_unknown_length_only_after_the_sut_settled_and_scaled_to_its_gaps():
    _sm, out, gate = _gate()
    gate.on_request(b"x", 0.0, True)
    gate.on_data(10, None, 0.5)  # the first byte took 0.5 s
    assert gate.quiet_until() == pytest.approx(0.5 + QUIET_FACTOR * 0.5)
    assert gate.deadline(False) == pytest.approx(0.5 + QUIET_FACTOR * 0.5)
    assert not gate.over(None, 2.4, False, False)
    assert not gate.over(None, 2.6, False, True)  # our bytes still in flight: no judgement by time
    assert gate.over(None, 2.6, False, False) and out.events[-1].by is ResponseEnd.QUIET


def test_nothing_received_of_a_captured_response_waits_for_the_timeout():
    _sm, out, gate = _gate()
    gate.on_request(b"x", 1.0, True)
    gate.on_acked(1.2)
    assert not gate.over(500, 100.0, False, False)
    assert gate.deadline(False) == pytest.approx(1.2 + 5.0)  # from when the SUT had the request
    assert gate.cut(6.2) == "SUT too slow: 0 of 500 bytes after 5.2 s"
    assert out.events[-1] == ResponseEnded(ResponseEnd.TIMEOUT, 0, 500)


def test_pipelined_requests_share_one_response_count():
    _sm, _out, gate = _gate(pipeline=True)
    gate.on_request(b"a", 0.0, True)
    gate.on_data(100, None, 0.1)
    gate.on_request(b"b", 0.1, True)
    assert gate.got == 100
    assert gate.expected_of(50, 300) == 300


# ------------------------------------------------------------------------------ the receiver


def _segment(seq, n, flags=ACK):
    return SutSegment(TARGET.addr, CLIENT.addr, TARGET.port, CLIENT.port, seq, 0, flags, 65535, b"", n, None)


def test_the_receiver_delivers_in_order_holds_beyond_a_hole_and_sees_the_fin():
    sm = SessionStateMachine()
    out = SessionOutput(CLIENT, TARGET, 0, SessionCounters())
    gate = RequestGate(sm, out, pipeline=False, capture_payload=False, response_timeout=5.0, quiet_floor=1.0)
    rx = Receiver(sm, gate, out, SessionCounters(), False)
    rx.connect(999)
    rx.receive(_segment(1100, 50, ACK | FIN), 0.1)  # beyond a hole: held
    assert out.events == [] and rx.ack() == 1000
    rx.receive(_segment(1000, 100), 0.2)
    assert out.events == [ResponseData(0, 100, None), ResponseData(100, 50, None)]
    assert sm.sut_closed and rx.ack() == 1151 and gate.got == 150
