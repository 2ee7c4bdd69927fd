"""SessionTranslator against an in-memory TCP server, packet bytes both ways, simulated clock."""

from __future__ import annotations

import struct

import pytest
from tcpsim import (
    CLIENT,
    TARGET,
    Link,
    Script,
    capture,
    decode_and_check,
    make_pair,
    response_bytes,
)

from pytest_tcpcopy.capture.packet import ACK, FIN, RST, SYN
from pytest_tcpcopy.endpoint import Endpoint, parse_addr
from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.tcp import (
    Aborted,
    AbortReason,
    Closed,
    Established,
    Reconnected,
    RequestSent,
    ResponseData,
    SessionState,
    SessionTranslator,
    Side,
    TranslatorConfig,
    parse_sut_segment,
)

REQS = [b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n"]
RESPS = [b"HTTP/1.1 200 OK\r\n\r\n" + b"a" * 2000, b"HTTP/1.1 404 Not Found\r\n\r\n"]


def run(reqs=REQS, resps=RESPS, *, config=None, cap_kw=None, link_kw=None, run_kw=None,
        script_kw=None, **server_kw):
    t, s = make_pair(Script([len(r) for r in reqs], list(resps), **(script_kw or {})), config,
                     **server_kw)
    link = Link(t, s, **(link_kw or {}))
    link.run(capture(reqs, [len(r) for r in resps], **(cap_kw or {})), **(run_kw or {}))
    assert s.errors == []
    return t, s, link


def kinds(events):
    return [type(e) for e in events]


def assert_all_responses(link, server):
    spans = sorted(response_bytes(link.events).items())
    pos = 0
    for off, n in spans:
        assert off == pos, "response offsets must be contiguous"
        pos += n
    assert pos == len(server.sent_payload)


def test_handshake_sends_captured_syn_and_learns_the_sut_isn():
    t, s, link = run(isn=123_456_789)
    pkts = capture(REQS, [len(r) for r in RESPS])
    syn = decode_and_check(link.sent[0])
    assert syn.flags == SYN
    assert syn.seq == pkts[0].seq and syn.window == pkts[0].window
    assert syn.raw[40 : 40 + len(pkts[0].options)] == pkts[0].options  # options kept as captured
    assert (syn.src, syn.sport, syn.dst, syn.dport) == (CLIENT.addr, CLIENT.port, TARGET.addr, TARGET.port)
    third = decode_and_check(link.sent[1])  # the data carries the third ACK: all was buffered
    assert third.flags & ACK and third.ack == 123_456_790 and third.payload == REQS[0]
    assert isinstance(link.events[0], Established) and not link.events[0].fake_syn
    assert bytes(s.received) == b"".join(REQS)
    assert link.events[-1] == Closed(by=Side.CLIENT, reset=False)
    assert t.finished and t.state is SessionState.DONE


def test_every_ack_is_what_the_sut_sent_not_the_captured_ack():
    _t, s, link = run(isn=7_000_000)
    captured_acks = {p.ack for p in capture(REQS, [len(r) for r in RESPS])}
    for raw in link.sent[1:]:
        seg = decode_and_check(raw)
        off = (seg.ack - 7_000_001) & 0xFFFFFFFF
        assert 0 <= off <= len(s.sent_payload) + 1
        assert seg.ack not in captured_acks
    assert_all_responses(link, s)


def test_keepalive_many_requests_waits_for_each_response():
    reqs = [f"GET /{i} HTTP/1.1\r\n\r\n".encode() for i in range(50)]
    resps = [f"resp {i} ".encode() * (i + 1) for i in range(50)]
    t, s, link = run(reqs, resps)
    assert bytes(s.received) == b"".join(reqs)
    assert_all_responses(link, s)
    # request i+1 goes out only after response i is complete
    sent_at, _resp_end = [], 0
    bounds = [sum(len(r) for r in resps[: i + 1]) for i in range(50)]
    got = 0
    for e in link.events:
        if isinstance(e, ResponseData):
            got = e.offset + e.length
        elif isinstance(e, RequestSent):
            sent_at.append(got)
    assert len(sent_at) == 50
    assert sent_at[0] == 0
    assert sent_at[1:] == bounds[:-1]
    assert t.counters.retransmits == 0


def test_responses_split_across_segments_and_payload_capture():
    resps = [b"".join(bytes([i % 251]) for i in range(30_000)), b"end"]
    _t, s, link = run(REQS, resps, mss=536, config=TranslatorConfig(capture_payload=True),
                     link_kw={"payload_reports": True})
    data = b"".join(e.data for e in link.events if isinstance(e, ResponseData))
    assert data == bytes(s.sent_payload)
    assert sum(1 for e in link.events if isinstance(e, ResponseData)) > 50


def test_sequence_wraparound_on_both_sides():
    reqs = [b"q" * 5000, b"r" * 3000, b"s" * 10]
    resps = [b"A" * 7000, b"B" * 9000, b"C"]
    _t, s, link = run(reqs, resps, cap_kw={"isn": 2**32 - 3000}, isn=2**32 - 4000)
    assert bytes(s.received) == b"".join(reqs)
    assert_all_responses(link, s)
    seqs = {decode_and_check(p).seq for p in link.sent}
    assert any(x > 2**32 - 3000 for x in seqs) and any(x < 20000 for x in seqs)
    assert link.events[-1] == Closed(by=Side.CLIENT, reset=False)


def test_captured_retransmissions_and_reordering_are_deduplicated():
    reqs = [b"x" * 4000, b"y" * 100]
    resps = [b"1" * 10, b"2" * 10]
    pkts = capture(reqs, [10, 10], mss=1000)
    data = [p for p in pkts if p.payload]
    # swap two segments of the first request, repeat one, and add an overlapping re-send
    i = pkts.index(data[1])
    j = pkts.index(data[2])
    pkts[i], pkts[j] = pkts[j], pkts[i]
    overlap = data[0]._replace(seq=data[0].seq + 500, payload=data[0].payload[500:] + data[1].payload[:300],
                               payload_len=800)
    pkts = pkts[: j + 1] + [data[1], overlap] + pkts[j + 1 :]
    t, s = make_pair(Script([4000, 100], resps))
    link = Link(t, s)
    link.run(pkts)
    assert s.errors == []
    assert bytes(s.received) == b"".join(reqs)
    assert t.counters.captured_out_of_order >= 1 and t.counters.captured_duplicates >= 2
    assert sum(e.length for e in link.events if isinstance(e, RequestSent)) == 4100


def test_sut_reset_mid_session_aborts():
    reqs = [b"GET / HTTP/1.1\r\n\r\n"]
    t, s = make_pair(Script([10**6], [b""]))  # never answers: it resets instead
    link = Link(t, s)
    link.run(capture(reqs, [100]), actions={0.5: s.reset})
    aborted = [e for e in link.events if isinstance(e, Aborted)]
    assert [a.reason for a in aborted] == [AbortReason.SUT_RESET]
    assert t.state is SessionState.ABORTED and link.now < 1


def test_sut_not_listening_aborts_at_once():
    t, _s, link = run(listening=False)
    assert [type(e) for e in link.events] == [Aborted]
    assert link.events[0].reason is AbortReason.NOT_ESTABLISHED
    assert "listening" in link.events[0].detail
    assert link.now < 0.01 and t.finished
    assert len(link.sent) == 1  # the SYN; the RST needs no answer


def test_establishment_timeout_retransmits_the_syn_then_gives_up():
    t, _s, link = run(answer_syn=False)
    assert link.events == [Aborted(AbortReason.NOT_ESTABLISHED, link.events[0].detail)]
    assert link.now == pytest.approx(3.0, abs=0.01)
    syns = [decode_and_check(p) for p in link.sent]
    assert [x.flags for x in syns] == [SYN] * (len(syns) - 1) + [RST]
    assert len(syns) - 1 == 1 + t.counters.retransmits >= 3
    assert syns[-1].seq == (syns[0].seq + 1) & 0xFFFFFFFF


def test_lost_syn_is_retransmitted():
    t, s, _link = run(link_kw={"drop_to_server": lambda i, pkt: i == 0})
    assert bytes(s.received) == b"".join(REQS)
    assert t.counters.retransmits == 1


def test_idle_timeout_aborts_and_releases_the_sut():
    cfg = TranslatorConfig(idle_timeout=5.0, response_timeout=30.0)
    t, s = make_pair(Script([10**6], [b""]), cfg)  # takes the request, never answers
    link = Link(t, s)
    link.run(capture([b"hello"], [100]))
    assert [e.reason for e in link.events if isinstance(e, Aborted)] == [AbortReason.IDLE_TIMEOUT]
    assert link.now == pytest.approx(5.0, abs=0.01)
    assert decode_and_check(link.sent[-1]).flags & RST
    assert s.resets_received == 1


def test_zero_window_then_window_update():
    t, s = make_pair(Script([len(r) for r in REQS], RESPS))
    s.zero_window = True
    link = Link(t, s)
    link.run(capture(REQS, [len(r) for r in RESPS]), actions={2.0: s.open_window})
    assert s.errors == []
    assert bytes(s.received) == b"".join(REQS)
    assert link.events[-1] == Closed(by=Side.CLIENT, reset=False)
    assert t.counters.window_probes >= 1
    # nothing but probes went out while the window was closed
    assert t.counters.bytes_sent == sum(map(len, REQS))


def test_lost_sut_segments_are_retransmitted_by_the_sut_and_reported_once():
    resps = [b"r" * 20_000, b"s" * 100]
    t, s = make_pair(Script([len(r) for r in REQS], resps))
    lost = set()

    def drop(seq, n, flags):
        key = (seq, n)
        if n and len(lost) < 3 and key not in lost and (seq - s.isn) % 3 == 0:
            lost.add(key)
            return True
        return False

    s.drop_out = drop
    link = Link(t, s)
    link.run(capture(REQS, [len(r) for r in resps]))
    assert lost
    assert_all_responses(link, s)
    assert t.counters.sut_out_of_order >= 1
    assert link.events[-1] == Closed(by=Side.CLIENT, reset=False)


def test_lost_translator_segments_fast_retransmit_and_rto():
    reqs = [b"p" * 20_000, b"q" * 10]
    lost = {3, 9}
    t, s, _link = run(reqs, [b"ok", b"ok"],
                     link_kw={"drop_to_server": lambda i, pkt: i in lost})
    assert bytes(s.received) == b"".join(reqs)
    assert t.counters.retransmits >= 2
    assert t.counters.dup_acks >= 3 and t.counters.fast_retransmits >= 1


def test_lost_tail_segment_recovers_by_rto_with_backoff():
    # drop the only data segment three times: RTO at 0.2, 0.4, 0.8 s
    drops = {"n": 0}

    def drop(i, pkt):
        seg = decode_and_check(pkt)
        if seg.payload and drops["n"] < 3:
            drops["n"] += 1
            return True
        return False

    t, s, link = run([b"tiny"], [b"ok"], link_kw={"drop_to_server": drop})
    assert bytes(s.received) == b"tiny"
    assert t.counters.rto_timeouts == 3 and t.counters.retransmits == 3
    first_data = 0.002  # the request goes out right after the handshake
    assert link.now > first_data + 0.2 + 0.4 + 0.8


def test_mid_stream_session_gets_fake_syn_and_third_ack():
    _t, s, link = run(cap_kw={"syn": False, "isn": 50_000}, mss=1400)
    syn = decode_and_check(link.sent[0])
    assert syn.flags == SYN and syn.seq == 50_000  # first captured seq - 1
    assert syn.options == {2: struct.pack("!H", 1460)} and syn.window == 65535
    third = decode_and_check(link.sent[1])
    assert third.flags & ACK and third.ack == s.isn + 1 and third.seq == 50_001
    assert link.events[0] == Established(fake_syn=True)
    assert bytes(s.received) == b"".join(REQS)
    assert all(8 not in decode_and_check(p).options for p in link.sent)  # no TS negotiated


def test_server_first_protocol_waits_for_the_greeting():
    greeting = b"220 smtp.example ESMTP ready\r\n"
    reqs, resps = [b"EHLO me\r\n", b"QUIT\r\n"], [b"250 hello\r\n", b"221 bye\r\n"]
    t, s = make_pair(Script([len(r) for r in reqs], resps, greeting=greeting))
    link = Link(t, s, latency=0.05)
    link.run(capture(reqs, [len(r) for r in resps], greeting=len(greeting)))
    assert s.errors == []
    first_req = next(i for i, e in enumerate(link.events) if isinstance(e, RequestSent))
    got = sum(e.length for e in link.events[:first_req] if isinstance(e, ResponseData))
    assert got == len(greeting)
    assert bytes(s.received) == b"".join(reqs)


def test_without_greeting_detection_the_first_request_goes_at_once():
    _t, _s, link = run(link_kw={"latency": 0.05})
    first_req = next(i for i, e in enumerate(link.events) if isinstance(e, RequestSent))
    assert not any(isinstance(e, ResponseData) for e in link.events[:first_req])


def test_pipeline_mode_sends_all_requests_before_responses():
    reqs = [f"GET /{i}\r\n".encode() for i in range(5)]
    resps = [b"r%d" % i for i in range(5)]
    _t, s, link = run(reqs, resps, config=TranslatorConfig(pipeline=True), link_kw={"latency": 0.01})
    first_resp = next(i for i, e in enumerate(link.events) if isinstance(e, ResponseData))
    sent = sum(e.length for e in link.events[:first_resp] if isinstance(e, RequestSent))
    assert sent == sum(map(len, reqs))
    assert bytes(s.received) == b"".join(reqs)


def test_reconnects_when_the_sut_closes_with_requests_pending():
    reqs = [f"GET /{i} HTTP/1.1\r\n\r\n".encode() for i in range(5)]
    resps = [b"resp%d" % i for i in range(5)]
    t, s, link = run(reqs, resps, script_kw={"close_every": 2})
    assert bytes(s.received) == b"".join(reqs)
    recon = [e for e in link.events if isinstance(e, Reconnected)]
    assert [r.attempt for r in recon] == [1, 2]
    assert s.connections == 3
    assert_all_responses(link, s)
    assert not any(isinstance(e, Aborted) for e in link.events)
    assert t.counters.reconnects == 2


def test_too_many_reconnects_aborts():
    reqs = [f"GET /{i}\r\n".encode() for i in range(6)]
    resps = [b"r"] * 6
    _t, s, link = run(reqs, resps, config=TranslatorConfig(max_reconnects=1),
                     script_kw={"close_every": 1})
    assert [e.reason for e in link.events if isinstance(e, Aborted)] == [AbortReason.TOO_MANY_RECONNECTS]
    assert s.connections == 2


def test_sut_closes_first_after_last_response():
    _t, s, link = run(script_kw={"close_after_last": True}, run_kw={"speed": 1.0})
    assert link.events[-1] == Closed(by=Side.SUT, reset=False)
    assert s.resets_received == 0


def test_capture_without_close_releases_with_rst_after_the_last_response():
    _t, s, link = run(cap_kw={"fin": False})
    assert link.events[-1] == Closed(by=Side.CLIENT, reset=True)
    assert s.resets_received == 1
    assert_all_responses(link, s)


def test_timestamps_are_rewritten():
    _t, s, link = run()
    segs = [decode_and_check(p) for p in link.sent]
    assert all(8 in seg.options for seg in segs)
    tsecrs = [struct.unpack("!II", seg.options[8])[1] for seg in segs[1:]]
    assert all(x in s.ts_sent for x in tsecrs)  # never the captured TSecr (4242)
    vals = [struct.unpack("!II", seg.options[8])[0] for seg in segs]
    assert vals == sorted(vals)


def test_late_sut_segment_after_the_end_is_reset():
    t, s, link = run()
    assert t.finished
    late = s.out.copy()
    s.send_ack()
    seg = parse_sut_segment(s.out.pop())
    t.feed_sut(seg, link.now + 1)
    (rst,) = t.packets_to_send()
    r = decode_and_check(rst)
    assert r.flags == RST and r.seq == seg.ack
    assert late == []


def test_ipv6_target_is_a_usage_error():
    v6 = Endpoint(parse_addr("2001:db8::1"), 80)
    with pytest.raises(UsageError, match="IPv4"):
        SessionTranslator(TranslatorConfig(), CLIENT, v6, session_id=1)


@pytest.mark.parametrize("field,value", [("mss", 10), ("rto", 0), ("max_reconnects", -1)])
def test_bad_config_is_a_usage_error(field, value):
    with pytest.raises(UsageError, match=field):
        TranslatorConfig(**{field: value})


def test_captured_segments_larger_than_the_sut_mss_are_recut_not_split_in_two():
    req = b"u" * 100_000
    _t, s, link = run([req], [b"ok"], mss=1000, cap_kw={"mss": 1460})
    data = [decode_and_check(p) for p in link.sent if decode_and_check(p).payload]
    assert bytes(s.received) == req
    assert len(data) == -(-len(req) // (1000 - 12))  # full segments (MSS less the TS option)


def test_header_only_reports_carry_no_payload_bytes():
    _t, s, link = run(config=TranslatorConfig(capture_payload=False), link_kw={"payload_reports": True})
    assert all(e.data is None for e in link.events if isinstance(e, ResponseData))
    assert_all_responses(link, s)


def test_captured_client_rst_is_replayed_after_the_response():
    pkts = capture(REQS[:1], [len(RESPS[0])], fin=False)
    last = pkts[-1]
    pkts.append(last._replace(index=last.index + 1, ts=last.ts + 0.01, flags=RST | ACK))
    t, s = make_pair(Script([len(REQS[0])], RESPS[:1]))
    link = Link(t, s)
    link.run(pkts)
    assert link.events[-1] == Closed(by=Side.CLIENT, reset=True)
    assert s.resets_received == 1
    assert_all_responses(link, s)


def test_sut_reset_after_answering_is_a_close_at_the_end_of_capture():
    t, s = make_pair(Script([len(r) for r in REQS], RESPS))
    link = Link(t, s)
    pkts = capture(REQS, [len(r) for r in RESPS], fin=False)
    link.run(pkts, end=False)
    link.run([], end=False, actions={link.now: s.reset})  # e.g. a keep-alive timeout on the SUT
    assert not t.finished
    link.run([], end=True)
    assert link.events[-1] == Closed(by=Side.SUT, reset=True)
    assert not any(isinstance(e, Aborted) for e in link.events)


def test_sut_reset_after_answering_then_more_requests_reconnects():
    reqs = REQS + [b"GET /three HTTP/1.1\r\n\r\n"]
    resps = RESPS + [b"third"]
    pkts = capture(reqs, [len(r) for r in resps])
    first_two = [p for p in pkts if p.seq - pkts[0].seq <= len(REQS[0]) + len(REQS[1]) and not p.flags & FIN]
    first_two = first_two[:-1]  # stop before the third request
    t, s = make_pair(Script([len(r) for r in reqs], resps))
    link = Link(t, s)
    link.run(first_two, end=False)
    s.reset()
    link.run(pkts[len(first_two):])
    assert bytes(s.received) == b"".join(reqs)
    assert [type(e) for e in link.events].count(Reconnected) == 1
    assert link.events[-1] == Closed(by=Side.CLIENT, reset=False)


def test_lost_third_ack_the_sut_repeats_its_syn_ack():
    # our RTO is longer than the SUT's, so its repeated SYN-ACK comes first and is re-acked
    t, s, link = run(config=TranslatorConfig(rto=1.0),
                     link_kw={"drop_to_server": lambda i, pkt: i == 1})
    assert bytes(s.received) == b"".join(REQS)
    assert t.counters.sut_retransmits >= 1 and t.counters.retransmits >= 1
    assert link.events[-1] == Closed(by=Side.CLIENT, reset=False)


def test_truncated_payload_reports_give_a_prefix_and_the_true_length():
    resps = [bytes(range(256)) * 20, b"end"]
    _t, s, link = run(REQS, resps, config=TranslatorConfig(capture_payload=True),
                      link_kw={"payload_reports": True, "copy_range": 1000})
    chunks = [e for e in link.events if isinstance(e, ResponseData)]
    assert sum(e.length for e in chunks) == len(s.sent_payload)
    assert any(len(e.data) < e.length for e in chunks)
    for e in chunks:  # every reported byte is a true byte at its offset
        assert e.data == bytes(s.sent_payload[e.offset : e.offset + len(e.data)])
