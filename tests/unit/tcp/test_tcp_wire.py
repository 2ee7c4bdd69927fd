"""Sequence arithmetic, checksums, options, packet parsing and building; golden packets."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from tcpsim import CLIENT, TARGET, rfc1071

from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.kernel.codecs import (
    SegmentBuilder,
    finish,
    internet_checksum,
    parse_options,
    parse_sut_segment,
    partial_sum,
    timestamp_of,
    timestamp_option,
    verify,
)
from pytest_tcpcopy.kernel.packet import ACK, PSH, Packet
from pytest_tcpcopy.tcp import SessionTranslator, TranslatorConfig
from pytest_tcpcopy.tcp.seq import seq_add, seq_diff, seq_ge, seq_gt, seq_le, seq_lt, unwrap

U32 = st.integers(0, 2**32 - 1)


@pytest.mark.parametrize(
    "a,b,diff",
    [(0, 0, 0), (1, 0, 1), (0, 1, -1), (0, 2**32 - 1, 1), (2**32 - 1, 0, -1),
     (5, 2**32 - 5, 10), (2**31 - 1, 0, 2**31 - 1), (2**31, 0, -(2**31))],
)
def test_seq_diff_wraps(a, b, diff):
    assert seq_diff(a, b) == diff
    assert seq_lt(a, b) == (diff < 0) and seq_gt(a, b) == (diff > 0)
    assert seq_le(a, b) == (diff <= 0) and seq_ge(a, b) == (diff >= 0)


@given(U32, st.integers(-(2**31) + 1, 2**31 - 1))
def test_seq_add_and_diff_are_inverse(a, n):
    assert seq_diff(seq_add(a, n), a) == n


@given(U32, st.integers(0, 2**40), st.integers(-(2**30), 2**30))
def test_unwrap_recovers_offsets_near_the_reference(base, near, delta):
    off = max(near + delta, 0)
    seq = (base + off) & 0xFFFFFFFF
    assert unwrap(seq, base, near) == off


@given(st.binary(min_size=1, max_size=3000).filter(any))  # documented: non-zero data only
def test_checksum_matches_rfc1071(data):
    folded = rfc1071(data)
    assert internet_checksum(data) == (~folded & 0xFFFF)
    field = struct.pack("!H", internet_checksum(data))
    if len(data) % 2 == 0:
        assert verify(data + field)


@given(st.binary(min_size=2, max_size=200).filter(lambda b: len(b) % 2 == 0),
       st.binary(min_size=2, max_size=200).filter(lambda b: len(b) % 2 == 0))
def test_partial_sums_combine(a, b):
    assert finish((partial_sum(a) + partial_sum(b)) % 0xFFFF) == internet_checksum(a + b)


@given(st.binary(max_size=3000))
def test_partial_sums_are_word_sums_of_any_bytes_like(data):
    words = sum(int.from_bytes(data[i : i + 2].ljust(2, b"\0"), "big") for i in range(0, len(data), 2))
    assert partial_sum(data) == words % 0xFFFF
    assert partial_sum(bytearray(data)) == partial_sum(memoryview(data)) == partial_sum(data)


def test_options_parse_and_build():
    raw = bytes.fromhex("020405b40402080a000003e80000000001030307")
    opts = parse_options(raw)
    assert (opts.mss, opts.wscale, opts.sack_permitted, opts.ts_val, opts.ts_ecr) == (1460, 7, True, 1000, 0)
    assert timestamp_of(raw) == (1000, 0)
    ts = timestamp_option(5, 6)
    assert ts == b"\x01\x01\x08\x0a" + struct.pack("!II", 5, 6) and timestamp_of(ts) == (5, 6)
    assert timestamp_of(b"") is None and parse_options(b"\x02\x04").mss is None  # truncated


def test_wscale_is_capped_at_14():
    assert parse_options(b"\x03\x03\x20\x00").wscale == 14


OPTIONS = [
    (b"", []),
    (timestamp_option(1, 2), [("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]),
    (b"\x02\x04\x05\xb4", [("MSS", 1460)]),
]


@given(U32, U32, st.integers(0, 255), st.integers(0, 65535), st.binary(max_size=1500),
       st.sampled_from(OPTIONS))
def test_builder_matches_scapy(seq, ack, flags, window, payload, options):
    """The builder builds exactly what scapy builds."""
    raw_opts, scapy_opts = options
    b = SegmentBuilder(CLIENT, TARGET)
    ref = IP(src="198.18.0.7", dst="10.9.0.2", id=77, flags="DF", ttl=64) / TCP(
        sport=CLIENT.port, dport=TARGET.port, seq=seq, ack=ack, flags=flags, window=window,
        options=scapy_opts) / payload
    assert b.build(seq, ack, flags, window, raw_opts, payload, partial_sum(payload), 77) == bytes(ref)


@given(U32, U32, st.integers(0, 255), st.integers(0, 65535), U32, U32, st.binary(max_size=300))
def test_timestamped_build_writes_the_timestamp_option(seq, ack, flags, window, ts_val, ts_ecr, payload):
    """The same packet as building with timestamp_option() as the options, and it reads back."""
    b = SegmentBuilder(CLIENT, TARGET)
    psum = partial_sum(payload)
    pkt = b.build_timestamped(seq, ack, flags, window, ts_val, ts_ecr, payload, psum, 3)
    assert pkt == b.build(seq, ack, flags, window, timestamp_option(ts_val, ts_ecr), payload, psum, 3)
    seg = parse_sut_segment(pkt)
    assert (seg.has_ts, seg.ts_val, seg.ts_ecr, seg.payload) == (True, ts_val, ts_ecr, payload or None)
    assert verify(pkt[:20]) and internet_checksum(pseudo_tcp(pkt)) == 0


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_builders_and_option_parsers_take_any_bytes_like(kind):
    """Compiled as in pure Python: payloads and options need not be bytes."""
    b = SegmentBuilder(CLIENT, TARGET)
    opts, payload = b"\x02\x04\x05\xb4", b"abc"
    expected = b.build(1, 2, ACK, 512, opts, payload, partial_sum(payload), 3)
    assert b.build(1, 2, ACK, 512, kind(opts), kind(payload), partial_sum(payload), 3) == expected
    stamped = b.build(1, 2, ACK, 512, timestamp_option(7, 8), payload, partial_sum(payload), 3)
    assert b.build_timestamped(1, 2, ACK, 512, 7, 8, kind(payload), partial_sum(payload), 3) == stamped
    assert parse_options(kind(opts + timestamp_option(7, 8))) == parse_options(opts + timestamp_option(7, 8))
    assert timestamp_of(kind(timestamp_option(7, 8))) == (7, 8)


def pseudo_tcp(pkt: bytes) -> bytes:
    """The TCP segment with its pseudo-header, for checking its checksum."""
    return pkt[12:20] + struct.pack("!BBH", 0, 6, len(pkt) - 20) + pkt[20:]


def test_parse_sut_segment_header_only_and_with_payload():
    ref = IP(src="10.9.0.2", dst="198.18.0.7") / TCP(
        sport=8080, dport=40000, seq=9, ack=10, flags="PA", window=512,
        options=[("Timestamp", (3, 4))]) / (b"z" * 100)
    full = bytes(ref)
    seg = parse_sut_segment(full)
    assert (seg.seq, seg.ack, seg.flags, seg.window, seg.payload_len, seg.payload) == (9, 10, ACK | PSH, 512, 100, b"z" * 100)
    assert timestamp_of(seg.options) == (3, 4)
    head = parse_sut_segment(full[:-100])  # the intercept cut the payload: the length stays
    assert head.payload_len == 100 and head.payload is None
    cut = parse_sut_segment(full[:-60])  # a copy-range limit: a prefix, never padding
    assert cut.payload_len == 100 and cut.payload == b"z" * 40


def test_parse_sut_segment_ipv6():
    from scapy.layers.inet6 import IPv6

    seg = parse_sut_segment(bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(seq=5) / b"abc"))
    assert seg.seq == 5 and seg.payload == b"abc" and len(seg.src) == 16


@pytest.mark.parametrize("buf", [b"", b"\x45" + b"\0" * 30, bytes(IP(proto=17) / (b"x" * 30))])
def test_parse_sut_segment_rejects_non_tcp(buf):
    with pytest.raises(UsageError):
        parse_sut_segment(buf)


_SUT_OPTIONS = [b"", timestamp_option(7, 2**32 - 1), b"\x02\x04\x05\xb4", b"\x08\x0a" + bytes(8) + b"\x01\x01",
                b"\x02\x04\x05\xb4\x01\x03\x03\x07" + timestamp_option(2**31, 5)]


@settings(max_examples=300)
@given(U32, U32, st.integers(0, 255), st.integers(0, 65535), st.binary(max_size=300),
       st.sampled_from(_SUT_OPTIONS), st.integers(0, 4))
def test_sut_segments_read_back_what_was_built(seq, ack, flags, window, payload, options, padding):
    """Every field, the options' own timestamp, and the payload without the link's padding."""
    pkt = SegmentBuilder(TARGET, CLIENT).build(seq, ack, flags, window, options, payload, partial_sum(payload), 9)
    seg = parse_sut_segment(pkt + bytes(padding))
    fields = (seg.src, seg.dst, seg.sport, seg.dport, seg.seq, seg.ack, seg.flags, seg.window, seg.options)
    assert fields == (TARGET.addr, CLIENT.addr, TARGET.port, CLIENT.port, seq, ack, flags, window, options)
    ts = timestamp_of(options)
    assert (seg.has_ts, seg.ts_val, seg.ts_ecr) == ((True, *ts) if ts else (False, 0, 0))
    assert (seg.payload, seg.payload_len) == (payload or None, len(payload))


def _reference_parse(buf: bytes):
    """What a SUT segment says, by struct unpacking (IPv4 or IPv6), or None where parse_sut_segment
    must refuse it."""
    if len(buf) < 20 or buf[0] >> 4 not in (4, 6):
        return None
    if buf[0] >> 4 == 4:
        ip_len, proto, total, src, dst = (buf[0] & 15) * 4, buf[9], struct.unpack_from("!H", buf, 2)[0], buf[12:16], buf[16:20]
        if proto != 6 or ip_len < 20:
            return None
    else:
        if len(buf) < 40 or buf[6] != 6:
            return None
        ip_len, total, src, dst = 40, 40 + struct.unpack_from("!H", buf, 4)[0], buf[8:24], buf[24:40]
    if len(buf) < ip_len + 20:
        return None
    sport, dport, seq, ack, offflags, window = struct.unpack_from("!HHIIHH", buf, ip_len)
    start = ip_len + (offflags >> 12) * 4
    if start < ip_len + 20 or len(buf) < start or total < start:
        return None
    options = buf[ip_len + 20 : start]
    ts = timestamp_of(options)
    payload = buf[start:total] if total > start and len(buf) > start else None
    return (src, dst, sport, dport, seq, ack, offflags & 0xFF, window, options, total - start, payload,
            ts is not None, *(ts or (0, 0)))


@pytest.mark.parametrize("options", _SUT_OPTIONS)
def test_damaged_sut_segments_are_refused_or_read_as_they_say(options):
    """Every cut, and every damaged byte of the headers and the timestamp's kind and length: a
    UsageError, or exactly the fields the bytes say."""
    pkt = SegmentBuilder(TARGET, CLIENT).build(5, 6, ACK, 512, options, b"xyz", partial_sum(b"xyz"), 9)
    variants = [pkt[:cut] for cut in range(len(pkt) + 1)]
    for spot in range(min(len(pkt), 48)):
        for value in (0, 1, 6, 0x45, 0x46, 0x50, 0x60, 0x80, 0xFF, pkt[spot] ^ 1):
            variants.append(pkt[:spot] + bytes([value]) + pkt[spot + 1 :])
    for variant in variants:
        expected = _reference_parse(variant)
        if expected is None:
            with pytest.raises(UsageError):
                parse_sut_segment(variant)
            continue
        seg = parse_sut_segment(variant)
        assert (seg.src, seg.dst, seg.sport, seg.dport, seg.seq, seg.ack, seg.flags, seg.window, seg.options,
                seg.payload_len, seg.payload, seg.has_ts, seg.ts_val, seg.ts_ecr) == expected, variant.hex()


def test_golden_mid_stream_exchange():
    """A mid-stream session: fake SYN, fake third ACK carried by the data, exact bytes."""
    t = SessionTranslator(TranslatorConfig(), CLIENT, TARGET, session_id=1)
    req = b"GET / HTTP/1.0\r\n\r\n"
    t.feed_client(Packet(0, 10.0, b"\xc0\0\2\x0a", b"\xc0\0\2\x01", 40000, 80, 1001, 7777,
                         ACK | PSH, 229, b"", req, len(req), 1, 64), 0.0)
    (syn,) = t.packets_to_send()
    # IP id 40504, DF, TTL 64; seq = captured seq - 1; MSS 1460 only; window 65535
    assert syn.hex() == (
        "4500002c9e3840004006cc6fc61200070a090002"
        "9c401f90000003e8000000006002ffff084a0000020405b4"
    )
    synack = bytes(IP(src="10.9.0.2", dst="198.18.0.7") / TCP(
        sport=8080, dport=40000, seq=555, ack=1001, flags="SA", window=29200, options=[("MSS", 1400)]))
    t.feed_sut(parse_sut_segment(synack), 0.001)
    (data,) = t.packets_to_send()
    # the captured ack 7777 became the SUT's ISN + 1 (556); the captured window 229 became 65535
    assert data.hex() == (
        "4500003a9e3940004006cc60c61200070a090002"
        "9c401f90000003e90000022c5018ffff3f110000" + req.hex()
    )
    assert t.packets_to_send() == [] and t.next_timer() == pytest.approx(0.001 + 0.2)
