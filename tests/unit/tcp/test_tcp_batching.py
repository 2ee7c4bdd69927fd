"""What the replay engine relies on to drain translators once per batch: which captured segments
change nothing, and SUT segments fed together answered together."""

from __future__ import annotations

from tcpsim import Script, capture, decode_and_check, make_pair

from pytest_tcpcopy.capture.packet import ACK, FIN, SYN
from pytest_tcpcopy.tcp import Closed, SessionState, Side, parse_sut_segment

REQ = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\n\r\n" + b"r" * 1000


def sut_reply(s):
    """The server's answer to the request: its ack, the response, then its FIN right behind it
    (as nginx does for a `Connection: close` request)."""
    ack, response, fin = s.out
    s.out.clear()
    assert [decode_and_check(p).flags & (FIN | ACK) for p in (ack, response, fin)] == [ACK, ACK, FIN | ACK]
    return ack, response, fin


def close_with_the_sut_ack(t, s, fin):
    """Deliver our FIN; the server's ack of it ends the session, and nothing more is sent."""
    s.receive(fin, 1.004)
    (ack,) = s.out
    s.out.clear()
    t.feed_sut(parse_sut_segment(ack), 1.005)
    assert t.packets_to_send() == []
    assert t.state is SessionState.DONE


def handshake(t, s, pkts, now=1.0):
    """Feed the captured SYN, pass our SYN to the server and its SYN-ACK back."""
    assert t.feed_client(pkts[0], now) is True
    (syn,) = t.packets_to_send()
    s.receive(syn, now)
    (syn_ack,) = s.out
    s.out.clear()
    t.feed_sut(parse_sut_segment(syn_ack), now)


def test_feed_client_reports_which_captured_segments_matter():
    t, s = make_pair(Script([len(REQ)], [RESP]))
    pkts = capture([REQ], [len(RESP)])  # SYN, third ACK, request, ACK of the response, FIN
    assert [p.flags & (SYN | FIN) or bool(p.payload) for p in pkts] == [SYN, False, True, False, FIN]
    handshake(t, s, pkts)
    assert t.feed_client(pkts[1], 1.0) is True  # the third ACK: the request gate's baseline
    assert t.feed_client(pkts[2], 1.0) is True  # the request
    assert t.feed_client(pkts[3], 1.0) is False  # a pure ACK: nothing to send, no new timer
    before = (t.next_timer(), t.state)
    assert t.packets_to_send() and t.events()
    assert t.feed_client(pkts[3], 1.1) is False and (t.next_timer(), t.state) == before
    assert t.packets_to_send() == [] and t.events() == []
    assert t.feed_client(pkts[4], 1.1) is True  # the FIN


def _answered_and_closed():
    """A one-request session whose SUT answered and closed: the translator, the SUT, and the SUT's
    ack, response and FIN, not fed to the translator yet."""
    t, s = make_pair(Script([len(REQ)], [RESP], close_after_last=True))
    pkts = capture([REQ], [len(RESP)])
    handshake(t, s, pkts)
    for pkt in pkts[1:]:
        t.feed_client(pkt, 1.0)
    (request,) = t.packets_to_send()
    s.receive(request, 1.001)
    return t, s, sut_reply(s)


def test_response_and_fin_fed_together_are_answered_by_one_fin():
    t, s, (ack, response, sut_fin) = _answered_and_closed()
    t.feed_sut(parse_sut_segment(ack), 1.002)
    t.feed_sut(parse_sut_segment(response), 1.002)
    t.feed_sut(parse_sut_segment(sut_fin), 1.002)
    (fin,) = (decode_and_check(p) for p in t.packets_to_send())
    assert fin.flags == FIN | ACK
    assert fin.ack == (decode_and_check(sut_fin).seq + 1) & 0xFFFFFFFF  # it acks the SUT's FIN too
    close_with_the_sut_ack(t, s, fin.raw)
    assert Closed(by=Side.SUT, reset=False) in t.events()


def test_response_and_fin_fed_apart_still_close_cleanly():
    t, s, (ack, response, sut_fin) = _answered_and_closed()
    t.feed_sut(parse_sut_segment(ack), 1.002)
    t.feed_sut(parse_sut_segment(response), 1.002)
    (fin,) = (decode_and_check(p) for p in t.packets_to_send())  # the captured FIN, at once
    assert fin.flags == FIN | ACK and t.state is SessionState.CLOSING
    t.feed_sut(parse_sut_segment(sut_fin), 1.003)
    (last_ack,) = (decode_and_check(p) for p in t.packets_to_send())
    assert last_ack.flags == ACK and last_ack.ack == (decode_and_check(sut_fin).seq + 1) & 0xFFFFFFFF
    close_with_the_sut_ack(t, s, fin.raw)
    assert Closed(by=Side.CLIENT, reset=False) in t.events()
