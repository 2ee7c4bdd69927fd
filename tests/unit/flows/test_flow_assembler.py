"""FlowAssembler: session identity, direction, port reuse, closing, counts, streaming release."""

from __future__ import annotations

import random
from itertools import pairwise

from flowkit import MOD, Conversation
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_tcpcopy.capture.packet import ACK, SYN, Packet
from pytest_tcpcopy.endpoint import Endpoint
from pytest_tcpcopy.flows import CloseKind, FlowAssembler, assemble_sessions

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def exchange(conv: Conversation) -> list:
    """A whole HTTP exchange: handshake, request, response, ACK, FIN both ways."""
    conv.handshake()
    conv.send(True, REQUEST)
    conv.send(False, RESPONSE)
    conv.ack(True)
    conv.close()
    return conv.packets


def sessions_of(packets, server_ports=()):
    return list(assemble_sessions(packets, server_ports))


def test_complete_exchange():
    conv = Conversation()
    [s] = sessions_of(exchange(conv))
    assert s.index == 0
    assert s.client == Endpoint.parse("198.18.0.1:40000")
    assert s.server == Endpoint.parse("198.18.0.2:80")
    assert s.handshake and s.close is CloseKind.FIN
    assert s.client_stream.data() == REQUEST
    assert s.server_stream.data() == RESPONSE
    assert s.client_isn == conv.client_isn and s.server_isn == conv.server_isn
    assert s.packets == len(conv.packets) == 9
    assert s.retransmitted == s.out_of_order == 0 and s.gaps == 0
    assert s.first_ts == conv.packets[0].ts and s.last_ts == conv.packets[-1].ts


def test_client_segments_hold_every_client_packet_in_capture_order():
    conv = Conversation()
    conv.handshake()
    conv.send(True, b"abc")
    conv.send(True, b"abc", seq=conv.client_isn + 1)  # retransmission
    conv.ack(True)
    conv.rst(True)
    [s] = sessions_of(conv.packets)
    expected = [p for p in conv.packets if p.sport == 40000]
    assert s.client_segments == expected
    assert [p.flags & SYN for p in s.client_segments][:1] == [SYN]


def test_rst_closes_the_session():
    conv = Conversation()
    conv.handshake()
    conv.send(True, REQUEST)
    conv.rst(False)
    [s] = sessions_of(conv.packets)
    assert s.close is CloseKind.RST


def test_one_fin_only_leaves_the_session_open():
    conv = Conversation()
    conv.handshake()
    conv.send(True, REQUEST)
    conv.fin(True)
    [s] = sessions_of(conv.packets)
    assert s.close is CloseKind.OPEN


def test_handshake_needs_the_ack_of_the_syn_ack():
    conv = Conversation()
    conv.syn()
    conv.synack()
    [s] = sessions_of(conv.packets)
    assert not s.handshake


def test_syn_direction_sets_the_server_even_on_a_high_port():
    conv = Conversation(client="10.0.0.1:80", server="10.0.0.2:50000")
    [s] = sessions_of(exchange(conv))
    assert s.server == Endpoint.parse("10.0.0.2:50000")


def test_syn_ack_without_the_syn_still_sets_the_direction():
    conv = Conversation(client="10.0.0.1:80", server="10.0.0.2:50000")
    exchange(conv)
    [s] = sessions_of(conv.packets[1:])
    assert s.server == Endpoint.parse("10.0.0.2:50000")
    assert not s.handshake and s.server_isn == conv.server_isn and s.client_isn is None


def test_configured_server_port_wins_over_the_syn():
    conv = Conversation(client="10.0.0.1:7000", server="10.0.0.2:9000")
    exchange(conv)
    [s] = sessions_of(conv.packets, server_ports=[7000])
    assert s.server == Endpoint.parse("10.0.0.1:7000")
    assert s.client_stream.data() == RESPONSE


def test_packets_off_the_configured_ports_are_ignored():
    conv = Conversation(server="198.18.0.2:80")
    exchange(conv)
    asm = FlowAssembler(server_ports=[8080])
    assert all(asm.feed(p) is None for p in conv.packets)
    assert asm.finish() == []


def test_mid_stream_session_takes_the_lower_port_as_server():
    conv = Conversation(client="10.0.0.1:51000", server="10.0.0.2:8080")
    exchange(conv)
    mid = [p for p in conv.packets if not p.flags & SYN][1:]  # from the request on
    [s] = sessions_of(mid)
    assert s.server == Endpoint.parse("10.0.0.2:8080")
    assert not s.handshake and s.client_isn is None and s.server_isn is None
    assert s.client_stream.data() == REQUEST and s.server_stream.data() == RESPONSE
    assert s.close is CloseKind.FIN


def test_mid_stream_server_sending_first_is_still_the_server():
    conv = Conversation(client="10.0.0.1:51000", server="10.0.0.2:22")
    conv.handshake()
    conv.send(False, b"SSH-2.0-x\r\n")
    conv.send(True, b"SSH-2.0-y\r\n")
    [s] = sessions_of(conv.packets[3:])
    assert s.server.port == 22 and s.server_stream.data() == b"SSH-2.0-x\r\n"


def test_port_reuse_after_fin_starts_a_new_session():
    first = Conversation(client_isn=1000, t0=100.0)
    exchange(first)
    second = Conversation(
        client_isn=5_000_000, server_isn=77, t0=100.05
    )  # within the linger
    exchange(second)
    sessions = sessions_of(first.packets + second.packets)
    assert [s.index for s in sessions] == [0, 1]
    assert [s.client_isn for s in sessions] == [1000, 5_000_000]
    assert all(s.packets == 9 and s.close is CloseKind.FIN for s in sessions)
    assert all(s.client_stream.data() == REQUEST for s in sessions)


def test_port_reuse_after_rst_starts_a_new_session():
    first = Conversation(client_isn=1000)
    first.handshake()
    first.rst(True)
    second = Conversation(
        client_isn=1000 + 10, t0=first.ts + 0.01
    )  # a close ISN still differs
    exchange(second)
    sessions = sessions_of(first.packets + second.packets)
    assert [(s.close, s.client_isn) for s in sessions] == [
        (CloseKind.RST, 1000),
        (CloseKind.FIN, 1010),
    ]


def test_far_syn_on_a_live_session_starts_a_new_session():
    first = Conversation(client_isn=1000)
    first.handshake()
    first.send(True, REQUEST)  # never closed in the capture
    second = Conversation(client_isn=2_000_000_000, t0=first.ts + 1)
    exchange(second)
    sessions = sessions_of(first.packets + second.packets)
    assert [(s.index, s.close, s.packets) for s in sessions] == [
        (0, CloseKind.OPEN, 4),
        (1, CloseKind.FIN, 9),
    ]


def test_syn_with_a_new_isn_just_above_a_live_session_is_a_new_session():
    first = Conversation(client_isn=1000)
    first.handshake()
    first.send(True, REQUEST)  # its FINs were not captured
    second = Conversation(
        client_isn=first.c_next + 64_000, t0=first.ts + 1
    )  # after TIME_WAIT
    exchange(second)
    sessions = sessions_of(first.packets + second.packets)
    assert [(s.client_isn, s.packets) for s in sessions] == [
        (1000, 4),
        (second.client_isn, 9),
    ]


def test_late_syn_of_a_mid_stream_session_is_adopted():
    conv = Conversation()
    syn = conv.syn()
    data = conv.send(True, REQUEST)
    [s] = sessions_of([data, syn])
    assert s.client_isn == conv.client_isn and s.packets == 2
    assert s.client_stream.data() == REQUEST and s.client_stream.gaps == []


def test_far_syn_after_a_mid_stream_session_is_a_new_session():
    old = Conversation(client_isn=3_000_000_000)
    old.send(True, REQUEST)
    new = Conversation(client_isn=1000, t0=old.ts + 1)
    exchange(new)
    sessions = sessions_of(old.packets + new.packets)
    assert [(s.client_isn, s.packets) for s in sessions] == [(None, 1), (1000, 9)]


def test_retransmitted_syn_is_not_a_new_session():
    conv = Conversation()
    conv.syn()
    conv.syn()
    conv.synack()
    conv.ack()
    [s] = sessions_of(conv.packets)
    assert s.retransmitted == 1 and s.packets == 4 and s.handshake


def test_retransmissions_and_reordering_are_counted_and_bytes_kept_once():
    conv = Conversation()
    conv.handshake()
    base = conv.c_next
    conv.send(True, b"aaaa")
    conv.send(True, b"aaaa", seq=base)  # client retransmission
    c_seg = conv.send(True, b"cccc", seq=base + 8)  # ahead of "bbbb"
    conv.send(True, b"bbbb", seq=base + 4)  # out of order: fills the hole
    conv.c_next = (c_seg.seq + 4) % MOD
    sbase = conv.s_next
    conv.send(False, b"xy")
    conv.send(False, b"xyz", seq=sbase)  # server: overlapping retransmission
    conv.s_next = (sbase + 3) % MOD
    conv.close()
    [s] = sessions_of(conv.packets)
    assert s.client_stream.data() == b"aaaabbbbcccc"
    assert s.server_stream.data() == b"xyz"
    assert s.retransmitted == 2 and s.out_of_order == 1
    assert s.close is CloseKind.FIN


def test_fin_retransmission_is_counted():
    conv = Conversation()
    conv.handshake()
    fin = conv.fin(True)
    conv.packet(True, fin.flags, seq=fin.seq)
    conv.fin(False)
    [s] = sessions_of(conv.packets)
    assert s.retransmitted == 1 and s.close is CloseKind.FIN


def test_sequence_wraparound_within_a_session():
    conv = Conversation(client_isn=MOD - 10, server_isn=MOD - 3)
    conv.handshake()
    body = bytes(range(40))
    for i in range(0, 40, 8):
        conv.send(True, body[i : i + 8])
    conv.send(False, b"ok" * 10)
    conv.close()
    [s] = sessions_of(conv.packets)
    assert s.client_stream.data() == body and s.server_stream.data() == b"ok" * 10
    assert s.handshake and s.gaps == 0 and s.retransmitted == 0


def test_lost_segment_is_a_gap():
    conv = Conversation()
    conv.handshake()
    conv.send(True, b"aaaa")
    conv.c_next += 4  # "bbbb" never captured
    conv.send(True, b"cccc")
    conv.close()
    [s] = sessions_of(conv.packets)
    assert s.client_stream.gaps == [(4, 4)] and s.gaps == 1
    assert len(s.client_stream) == 8 and s.client_stream.data() == b"aaaa"


def test_truncated_packets_keep_only_captured_bytes():
    conv = Conversation()
    conv.handshake()
    conv.send(False, b"HTTP/1.1 2", wire_len=1400)
    conv.send(False, b"tail")
    [s] = sessions_of(conv.packets)
    assert s.server_stream.gaps == [(10, 1390)]
    assert len(s.server_stream) == 14 and s.server_stream.end == 1404


def test_syn_with_data_counts_the_data_after_the_isn():
    conv = Conversation()
    conv.packet(True, SYN, b"early", seq=conv.client_isn)
    conv.c_next = conv.client_isn + 6
    conv.synack()
    conv.ack()
    [s] = sessions_of(conv.packets)
    assert s.client_stream.data() == b"early" and s.client_stream.gaps == []


def test_sessions_are_indexed_in_creation_order():
    convs = [
        Conversation(client=f"198.18.0.{i}:40000", t0=100 + i) for i in range(1, 4)
    ]
    for conv in convs:
        conv.handshake()
    packets = sorted((p for c in convs for p in c.packets), key=lambda p: p.ts)
    asm = FlowAssembler()
    routes = [asm.feed(p) for p in packets]
    assert [r[0].index for r in routes] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [r[1] for r in routes[:3]] == [True, False, True]


def test_closed_session_lingers_then_is_handed_out_and_forgotten():
    conv = Conversation(t0=100.0)
    exchange(conv)
    asm = FlowAssembler(linger=2.0)
    for p in conv.packets:
        asm.feed(p)
    assert asm.pop_finished() == [] and asm.live == 1
    late = conv.send(
        True, REQUEST, seq=conv.client_isn + 1, gap=1.0
    )  # retransmit in the linger
    session, from_client = asm.feed(late)
    assert from_client and session.retransmitted == 1
    other = Conversation(client="198.18.0.9:1234", t0=late.ts + 5)
    asm.feed(other.syn())
    [done] = asm.pop_finished()
    assert done is session and done.packets == 10
    assert asm.pop_finished() == [] and asm.live == 1
    assert [s.index for s in asm.finish()] == [1]
    assert asm.live == 0


def test_assemble_sessions_yields_finished_sessions_before_the_end():
    convs = [
        Conversation(client=f"198.18.0.{i}:40000", t0=100 + 10 * i) for i in range(1, 4)
    ]
    for conv in convs:
        exchange(conv)
    convs[
        2
    ].packets.pop()  # the third never sees its last ACK: closes, still lingers at the end
    packets = [p for c in convs for p in c.packets]
    seen = []

    def source():
        for p in packets:
            seen.append(p)
            yield p

    gen = assemble_sessions(source())
    first = next(gen)
    assert first.index == 0 and len(seen) < len(packets)
    assert [s.index for s in gen] == [1, 2]


def test_keep_streams_false_keeps_counts_only():
    conv = Conversation()
    exchange(conv)
    asm = FlowAssembler(keep_streams=False)
    for p in conv.packets:
        asm.feed(p)
    [s] = asm.finish()
    assert s.client_segments == [] and s.client_stream.chunks == []
    assert len(s.client_stream) == len(REQUEST) and len(s.server_stream) == len(
        RESPONSE
    )
    assert s.handshake and s.close is CloseKind.FIN and s.packets == 9


def test_keep_segments_false_keeps_the_streams_without_the_client_packets():
    conv = Conversation()
    exchange(conv)
    [kept] = assemble_sessions(conv.packets)
    [s] = assemble_sessions(conv.packets, keep_segments=False)
    assert s.client_segments == [] and kept.client_segments
    assert s.client_stream.data() == REQUEST and s.server_stream.data() == RESPONSE
    assert s.client_stream.chunks == kept.client_stream.chunks
    assert s.server_stream.chunks == kept.server_stream.chunks
    assert (s.handshake, s.close, s.packets) == (kept.handshake, kept.close, kept.packets)


def test_pure_ack_of_a_new_four_tuple_opens_a_mid_stream_session():
    conv = Conversation(client="10.0.0.1:50000", server="10.0.0.2:443")
    pkt = conv.packet(True, ACK)
    [s] = sessions_of([pkt])
    assert s.server.port == 443 and s.packets == 1 and len(s.client_stream) == 0


@settings(max_examples=60, deadline=None)
@given(
    st.randoms(use_true_random=False), st.integers(0, MOD - 1), st.integers(0, MOD - 1)
)
def test_shuffled_and_duplicated_data_segments_reassemble_to_the_same_streams(
    rnd, cisn, sisn
):
    conv = Conversation(client_isn=cisn, server_isn=sisn)
    conv.handshake()
    req = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 200)))
    resp = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 200)))
    for data, from_client in ((req, True), (resp, False)):
        pos = 0
        while pos < len(data):
            n = rnd.randint(1, 40)
            conv.send(from_client, data[pos : pos + n])
            pos += n
    packets = conv.packets + [
        rnd.choice(conv.packets) for _ in range(rnd.randint(0, 10))
    ]
    rnd.shuffle(
        packets
    )  # the handshake too: the session may start mid-stream, then adopt its SYN
    [s] = sessions_of(packets)
    assert s.client_stream.data() == req and s.server_stream.data() == resp
    assert s.gaps == 0 and s.packets == len(packets)
    assert (s.client_isn, s.server_isn) == (cisn, sisn)
    assert s.client.port == 40000 and s.server.port == 80


def test_many_interleaved_sessions_match_their_own_bytes():
    rnd = random.Random(7)
    convs = [
        Conversation(
            client=f"198.18.1.{i}:{40000 + i}", client_isn=rnd.getrandbits(32), t0=100.0
        )
        for i in range(1, 30)
    ]
    for conv in convs:
        exchange(conv)
    packets = sorted(
        (p for c in convs for p in c.packets), key=lambda p: (p.ts, rnd.random())
    )
    sessions = sessions_of(packets)
    assert len(sessions) == len(convs)
    by_client = {s.client.port: s for s in sessions}
    for conv in convs:
        s = by_client[conv.client[1]]
        assert s.client_isn == conv.client_isn and s.client_stream.data() == REQUEST


@st.composite
def arbitrary_packets(draw):
    """Packets of a few 4-tuples with arbitrary flags, sequence numbers and payloads."""
    hosts = [b"\xc6\x12\x00\x01", b"\xc6\x12\x00\x02"]
    ports = [80, 40000, 40001]
    packets = []
    for i in range(draw(st.integers(1, 25))):
        src, dst = draw(st.permutations(hosts))
        payload = draw(st.binary(max_size=20))
        packets.append(
            Packet(
                index=i,
                ts=100.0 + draw(st.floats(0, 10)),
                src=src,
                dst=dst,
                sport=draw(st.sampled_from(ports)),
                dport=draw(st.sampled_from(ports)),
                seq=draw(
                    st.sampled_from([0, 1, 5, 1000, MOD - 3, MOD - 1])
                    | st.integers(0, MOD - 1)
                ),
                ack=draw(st.integers(0, MOD - 1)),
                flags=draw(st.integers(0, 0xFF)),
                window=0,
                options=b"",
                payload=payload,
                payload_len=len(payload) + draw(st.sampled_from([0, 0, 3])),
                ip_id=0,
                ttl=64,
            )
        )
    return packets


@settings(max_examples=50, deadline=None)
@given(arbitrary_packets(), st.sampled_from([(), (80,)]))
def test_arbitrary_packets_never_break_the_assembler(packets, server_ports):
    sessions = sessions_of(packets, server_ports)
    assert [s.index for s in sorted(sessions, key=lambda s: s.index)] == list(
        range(len(sessions))
    )
    routed = sum(s.packets for s in sessions)
    assert routed == sum(
        1 for p in packets if not server_ports or {p.sport, p.dport} & {80}
    )
    for s in sessions:
        for stream in (s.client_stream, s.server_stream):
            chunks = stream.chunks
            assert sum(len(c.data) for c in chunks) == len(stream)
            assert all(a.offset + len(a.data) <= b.offset for a, b in pairwise(chunks))
            assert all(start >= 0 and length > 0 for start, length in stream.gaps)
            assert b"".join(c.data for c in chunks).startswith(stream.data())


def _routing(packets, server_coverage: bool) -> list:
    """Everything a replay reads from the assembler: each packet's route, each handout."""
    asm = FlowAssembler(keep_streams=False, server_coverage=server_coverage, linger=0.05)
    seen = []
    for p in packets:
        route = asm.feed(p)
        seen.append(None if route is None else (route[0].index, route[0].client, route[1]))
        seen.append([(s.index, s.close) for s in asm.pop_finished()])
    seen.append([(s.index, s.close, s.client_isn, s.server_isn) for s in asm.finish()])
    return seen


@settings(max_examples=80, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(0, MOD - 1), st.integers(0, MOD - 1))
def test_without_server_coverage_routes_and_closes_stay_the_same(rnd, cisn, sisn):
    """Port reuse (after FIN, RST, or a far SYN), mid-stream starts, duplicates and reordering:
    the routes and handouts a replay reads do not depend on the server stream's coverage."""
    packets = []
    for n in range(rnd.randint(1, 4)):  # connections one after another on the same 4-tuple
        conv = Conversation(client_isn=(cisn + n * rnd.choice((7, 1 << 21, 1 << 30))) % MOD,
                            server_isn=(sisn + n * 99_991) % MOD, t0=100.0 + n * rnd.choice((0.01, 1.0)))
        conv.handshake()
        for _ in range(rnd.randint(0, 3)):
            conv.send(True, b"q" * rnd.randint(1, 50))
            conv.send(False, b"r" * rnd.randint(1, 90))
            conv.ack(True)
        rnd.choice((conv.close, lambda c=conv: c.rst(rnd.random() < 0.5), lambda: None))()
        conv_packets = conv.packets[rnd.choice((0, 0, 2)):]  # sometimes captured mid-stream
        conv_packets += [rnd.choice(conv_packets) for _ in range(rnd.randint(0, 3))] if conv_packets else []
        if len(conv_packets) > 2 and rnd.random() < 0.3:
            i = rnd.randrange(len(conv_packets) - 1)
            conv_packets[i], conv_packets[i + 1] = conv_packets[i + 1], conv_packets[i]
        packets += conv_packets
    assert _routing(packets, server_coverage=False) == _routing(packets, server_coverage=True)
