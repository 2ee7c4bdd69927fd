"""When a response is over: the translator against a slow simulated SUT, on a simulated clock.

A response is over when its framing, its captured length or the SUT's close says so, never
because the SUT paused; a response that stops making progress is cut by the response timeout,
and the session says so ("SUT too slow").
"""

from __future__ import annotations

import pytest
from tcpsim import Link, Script, Stall, capture, decode_and_check, make_pair, response_length

from pytest_tcpcopy.capture.packet import ACK, RST
from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.tcp import (
    Aborted,
    AbortReason,
    Closed,
    RequestSent,
    ResponseData,
    ResponseEnd,
    ResponseEnded,
    SessionState,
    Side,
    TranslatorConfig,
    parse_sut_segment,
)
from pytest_tcpcopy.tcp.gate import QUIET_FACTOR

REQS = [b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % name for name in (b"one", b"two", b"three")]
BODY = b"b" * 3000


def head(length: int, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (length, extra)


OK = head(len(BODY)) + BODY
SLOW = [head(len(BODY)), Stall(0.3), BODY]  # 300 ms between the head and the body


def replay(sut_responses, *, captured=None, payload=True, config_kw=None, cap_kw=None, **server_kw):
    """Replay REQS (as many as responses) against a SUT scripted with ``sut_responses``; the
    capture shows responses of ``captured`` lengths (default: the SUT's own)."""
    reqs = REQS[: len(sut_responses)]
    lengths = captured or [response_length(r) for r in sut_responses]
    config = TranslatorConfig(capture_payload=payload, **(config_kw or {}))
    t, s = make_pair(Script([len(r) for r in reqs], list(sut_responses)), config, **server_kw)
    link = Link(t, s, payload_reports=payload)
    link.run(capture(reqs, lengths, **(cap_kw or {})))
    assert s.errors == []
    return t, s, link


def ends(link) -> list[tuple[ResponseEnd, int, int | None]]:
    return [(e.by, e.received, e.expected) for e in link.events if isinstance(e, ResponseEnded)]


def received_before_each_request(link) -> list[int]:
    """How many response bytes had arrived when each request went out."""
    got, out = 0, []
    for e in link.events:
        if isinstance(e, ResponseData):
            got = e.offset + e.length
        elif isinstance(e, RequestSent):
            out.append(got)
    return out


def assert_complete(t, s, link):
    assert not any(isinstance(e, Aborted) for e in link.events), link.events[-3:]
    assert isinstance(link.events[-1], Closed) and t.state is SessionState.DONE
    assert sum(e.length for e in link.events if isinstance(e, ResponseData)) == len(s.sent_payload)


@pytest.mark.parametrize("payload", [True, False], ids=["framing", "captured-length"])
def test_a_stall_between_head_and_body_is_waited_for(payload):
    t, s, link = replay([SLOW, OK], payload=payload)
    assert_complete(t, s, link)
    assert received_before_each_request(link) == [0, len(OK)]  # the second request waited for the body
    rule = ResponseEnd.FRAMING if payload else ResponseEnd.LENGTH
    assert ends(link) == [(rule, len(OK), len(OK)), (rule, len(OK), len(OK))]


@pytest.mark.parametrize("payload", [True, False], ids=["framing", "captured-length"])
def test_a_slow_first_byte_is_waited_for(payload):
    t, s, link = replay([[Stall(2.0), OK], OK], payload=payload)
    assert_complete(t, s, link)
    assert received_before_each_request(link) == [0, len(OK)]
    assert link.now > 2.0


def test_a_slow_chunked_body_is_waited_for_up_to_its_trailers():
    chunks = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
    for i in range(4):
        chunks += [b"400\r\n" + bytes([65 + i]) * 1024 + b"\r\n", Stall(0.7)]
    chunks += [b"0\r\nX-Trailer: 1\r\n\r\n"]
    t, s, link = replay([chunks, OK])
    assert_complete(t, s, link)
    first = response_length(chunks)
    assert received_before_each_request(link) == [0, first]
    assert ends(link)[0] == (ResponseEnd.FRAMING, first, first)
    assert link.now > 4 * 0.7


def test_a_stall_past_the_response_timeout_cuts_the_session_as_too_slow():
    stalled = [head(len(BODY)), Stall(6.0), BODY]
    t, s, link = replay([stalled, OK])
    aborted = link.events[-1]
    assert isinstance(aborted, Aborted) and aborted.reason is AbortReason.RESPONSE_TIMEOUT
    n, m = len(head(len(BODY))), len(OK)
    assert aborted.detail == f"SUT too slow: {n} of {m} bytes after 5.0 s"
    assert ends(link) == [(ResponseEnd.TIMEOUT, n, m)]
    assert received_before_each_request(link) == [0]  # the second request never went
    assert s.resets_received == 1 and t.state is SessionState.ABORTED


def test_a_response_timeout_with_nothing_received_says_what_the_capture_expected():
    _t, _s, link = replay([[Stall(30.0), OK]], payload=False, config_kw={"response_timeout": 2.0})
    assert link.events[-1] == Aborted(AbortReason.RESPONSE_TIMEOUT, f"SUT too slow: 0 of {len(OK)} bytes after 2.0 s")


def test_a_response_of_unknown_length_cut_says_so():
    # The capture shows nothing received (no acks of the response), the framing is unknown.
    _t, _s, link = replay([[b"partial", Stall(30.0), b" rest"]], captured=[0], config_kw={"quiet_floor": 10.0},
                        cap_kw={"fin": False})
    assert link.events[-1].detail == "SUT too slow: 7 bytes of unknown length after 5.0 s"


def test_keep_alive_gating_follows_the_framing_not_the_captured_length():
    longer = head(8000) + b"L" * 8000  # the SUT answers with more than production did ...
    shorter = head(10) + b"s" * 10  # ... and with less
    t, s, link = replay([[longer[:500], Stall(0.5), longer[500:]], shorter, OK], captured=[len(OK)] * 3)
    assert_complete(t, s, link)
    assert received_before_each_request(link) == [0, len(longer), len(longer) + len(shorter)]
    assert [e[0] for e in ends(link)] == [ResponseEnd.FRAMING] * 3
    assert link.now < 1.0 + 0.5  # the shorter response was not waited on for the capture's length


def test_head_and_no_content_responses_end_at_their_header_block():
    reqs = [b"HEAD / HTTP/1.1\r\n\r\n", b"DELETE /x HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n"]
    resps = [head(5000), b"HTTP/1.1 204 No Content\r\n\r\n", OK]
    t, s = make_pair(Script([len(r) for r in reqs], resps), TranslatorConfig(capture_payload=True))
    link = Link(t, s, payload_reports=True)
    link.run(capture(reqs, [len(resps[0]) + 5000, 999, len(OK)]))  # production's lengths differ
    assert_complete(t, s, link)
    assert [e[0] for e in ends(link)] == [ResponseEnd.FRAMING] * 3
    assert link.now < 1.0  # never waited for the capture's lengths


def test_a_close_delimited_response_ends_with_the_sut_fin():
    resp = [b"HTTP/1.0 200 OK\r\n\r\nfirst part", Stall(0.4), b" and the rest"]
    t, s = make_pair(Script([len(REQS[0])], [resp], close_after_last=True), TranslatorConfig(capture_payload=True))
    link = Link(t, s, payload_reports=True)
    link.run(capture(REQS[:1], [response_length(resp)]))
    assert_complete(t, s, link)
    assert ends(link) == [(ResponseEnd.CLOSE, response_length(resp), None)]  # the framing knows no length
    assert link.events[-1] == Closed(by=Side.SUT, reset=False)


def test_the_last_response_waits_for_the_captured_final_ack():
    # No captured FIN: the last pure ACK of the captured client tells how much it received.
    t, s, link = replay([OK, SLOW], payload=False, cap_kw={"fin": False})
    assert_complete(t, s, link)
    assert ends(link)[-1] == (ResponseEnd.LENGTH, len(OK), len(OK))
    assert link.events[-1] == Closed(by=Side.CLIENT, reset=True)
    assert s.resets_received == 1
    # the release went out after the body, not in the stall
    rst = next(i for i, p in enumerate(link.sent) if decode_and_check(p).flags & RST)
    assert all(not decode_and_check(p).flags & RST for p in link.sent[:rst])
    assert len(s.sent_payload) == 2 * len(OK)


def test_unknown_lengths_end_by_silence_scaled_to_what_the_sut_showed():
    # The capture shows no response acknowledged (lengths 0): only the last resort can end them.
    gap = 0.6
    t, s, link = replay([[b"x" * 100, Stall(gap), b"y" * 100]], captured=[0], payload=False, cap_kw={"fin": False})
    assert_complete(t, s, link)
    (end,) = ends(link)
    assert end[:2] == (ResponseEnd.QUIET, 200)  # the 0.6 s pause was waited for (floor 1 s) ...
    assert link.now == pytest.approx(gap + QUIET_FACTOR * gap, abs=0.05)  # ... and then 4 x 0.6 s


def test_a_session_with_nothing_to_replay_is_not_complete():
    # Only pure ACKs of a connection whose start the capture missed: nothing can be replayed.
    pkts = [p for p in capture(REQS[:1], [100], syn=False) if not p.payload][:2]
    t, s = make_pair(Script([], []))
    link = Link(t, s)
    link.run(pkts)
    (event,) = link.events
    assert isinstance(event, Aborted) and event.reason is AbortReason.NOTHING_TO_REPLAY
    assert link.sent == [] and t.state is SessionState.ABORTED


def test_the_response_timeout_waits_while_the_request_is_still_in_flight():
    # Every data segment is lost four times: the request takes about 3 s to get through.
    drops = {"n": 0}

    def drop(i, pkt):
        if decode_and_check(pkt).payload and drops["n"] < 4:
            drops["n"] += 1
            return True
        return False

    t, s = make_pair(Script([len(REQS[0])], [OK]), TranslatorConfig(capture_payload=True, response_timeout=1.0))
    link = Link(t, s, drop_to_server=drop, payload_reports=True)
    link.run(capture(REQS[:1], [len(OK)]))
    assert_complete(t, s, link)
    assert link.now > 3.0 and t.counters.retransmits == 4


def test_bad_response_timeouts_are_usage_errors():
    with pytest.raises(UsageError, match="response_timeout"):
        TranslatorConfig(response_timeout=0)
    with pytest.raises(UsageError, match="quiet_floor"):
        TranslatorConfig(quiet_floor=-1)


def test_the_deferred_send_decision_is_reported_as_due_and_made_by_an_output_call():
    t, s = make_pair(Script([len(REQS[0])], [OK]))
    syn, third_ack, request = capture(REQS[:1], [len(OK)])[:3]
    t.feed_client(syn, 1.0)
    s.receive(t.packets_to_send()[0], 1.0)
    t.feed_sut(parse_sut_segment(s.out.pop()), 1.0)  # the SYN-ACK: taken at once
    t.feed_client(third_ack, 1.0)
    t.feed_client(request, 1.0)
    for pkt in t.packets_to_send():
        s.receive(pkt, 1.001)
    answer = s.out[:]
    s.out.clear()
    for pkt in answer:
        t.feed_sut(parse_sut_segment(pkt), 1.002)
    assert t.next_timer() == 1.002  # a query: the decision is due, not made
    assert t.next_timer() == 1.002 and t.state is SessionState.ESTABLISHED
    (ack,) = t.packets_to_send()  # an output call makes it
    assert decode_and_check(ack).flags == ACK and t.next_timer() != 1.002


def test_a_body_sent_after_100_continue_waits_for_the_interim_response_only():
    head = b"POST /up HTTP/1.1\r\nContent-Length: 4000\r\nExpect: 100-continue\r\n\r\n"
    body = b"u" * 4000
    resps = [b"HTTP/1.1 100 Continue\r\n\r\n", OK]
    t, s = make_pair(Script([len(head), len(body)], resps), TranslatorConfig(capture_payload=True))
    link = Link(t, s, payload_reports=True)
    link.run(capture([head, body], [len(r) for r in resps]))
    assert_complete(t, s, link)
    assert received_before_each_request(link)[:2] == [0, len(resps[0])]  # the body went after the 100
    assert [e[0] for e in ends(link)] == [ResponseEnd.LENGTH, ResponseEnd.FRAMING]
    assert link.now < 1.0  # no wait for a final response that needs the body first
