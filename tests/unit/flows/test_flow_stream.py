"""ByteStream: each byte once, gaps explicit, wraparound, snap-length truncation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pytest_tcpcopy.flows import ByteStream
from pytest_tcpcopy.flows.stream import IGNORED, NEW, OUT_OF_ORDER, RETRANSMITTED

MOD = 1 << 32


def joined(stream: ByteStream) -> bytes:
    return b"".join(chunk.data for chunk in stream.chunks)


def test_in_order_segments_are_one_contiguous_stream():
    s = ByteStream()
    s.anchor(99)
    assert s.add(100, b"hello ", 6, 1.0) == NEW
    assert s.add(106, b"world", 5, 2.0) == NEW
    assert s.data() == b"hello world"
    assert len(s) == 11 and s.end == 11
    assert s.gaps == [] and s.complete
    assert [(c.offset, c.ts) for c in s.chunks] == [(0, 1.0), (6, 2.0)]


def test_missing_segment_is_an_explicit_gap_not_zeros():
    s = ByteStream()
    s.anchor(0)
    s.add(1, b"aaaa", 4, 1.0)
    s.add(9, b"cccc", 4, 2.0)  # bytes 4..7 never captured
    assert s.gaps == [(4, 4)]
    assert not s.complete
    assert len(s) == 8
    assert s.data() == b"aaaa"  # only the contiguous prefix
    assert b"\x00" not in joined(s)


def test_gap_before_first_byte_when_isn_known():
    s = ByteStream()
    s.anchor(0)
    s.add(11, b"xyz", 3, 1.0)
    assert s.gaps == [(0, 10)]
    assert s.data() == b""


def test_retransmission_is_kept_once_and_reported():
    s = ByteStream()
    s.anchor(0)
    s.add(1, b"abcd", 4, 1.0)
    assert s.add(1, b"abcd", 4, 2.0) == RETRANSMITTED
    assert s.add(3, b"cdef", 4, 3.0) == RETRANSMITTED  # overlaps, adds "ef"
    assert s.data() == b"abcdef"
    assert len(s) == 6
    assert [c.ts for c in s.chunks] == [1.0, 3.0]


def test_out_of_order_segment_fills_the_hole():
    s = ByteStream()
    s.anchor(0)
    assert s.add(1, b"aa", 2, 1.0) == NEW
    assert (
        s.add(5, b"cc", 2, 2.0) == NEW
    )  # ahead: leaves a hole, not itself out of order
    assert s.add(3, b"bb", 2, 3.0) == OUT_OF_ORDER
    assert s.data() == b"aabbcc" and s.gaps == []
    assert [(c.offset, c.data) for c in s.chunks] == [
        (0, b"aa"),
        (2, b"bb"),
        (4, b"cc"),
    ]


def test_sequence_wraparound_near_2_32():
    isn = MOD - 5
    s = ByteStream()
    s.anchor(isn)
    s.add(MOD - 4, b"0123", 4, 1.0)  # ends exactly at 2**32
    s.add(0, b"4567", 4, 2.0)  # wrapped
    s.add(4, b"89", 2, 3.0)
    assert s.data() == b"0123456789"
    assert s.end == 10 and s.gaps == []


def test_wraparound_with_reordering_across_the_boundary():
    s = ByteStream()
    s.anchor(MOD - 3)
    s.add(2, b"cc", 2, 1.0)  # after the wrap, first
    s.add(MOD - 2, b"aa", 2, 2.0)
    s.add(0, b"bb", 2, 3.0)
    assert s.data() == b"aabbcc"


def test_truncated_segment_keeps_captured_bytes_and_a_gap_for_the_rest():
    s = ByteStream()
    s.anchor(0)
    s.add(1, b"head", 10, 1.0)  # 10 bytes on the wire, 4 captured
    s.add(11, b"next", 4, 2.0)
    assert s.gaps == [(4, 6)]
    assert len(s) == 8 and s.end == 14
    assert s.data() == b"head"


def test_truncated_tail_is_a_gap_at_the_end():
    s = ByteStream()
    s.anchor(0)
    s.add(1, b"ab", 5, 1.0)
    assert s.gaps == [(2, 3)]


def test_retransmission_fills_what_truncation_lost():
    s = ByteStream()
    s.anchor(0)
    s.add(1, b"ab", 6, 1.0)
    s.add(1, b"abcdef", 6, 2.0)
    assert s.data() == b"abcdef" and s.complete


def test_mid_stream_offsets_start_at_lowest_seq_seen():
    s = (
        ByteStream()
    )  # no SYN: offset 0 is the first seq, moved back if earlier bytes arrive
    s.add(5000, b"later", 5, 1.0)
    s.add(4995, b"first", 5, 2.0)
    assert s.data() == b"firstlater"
    assert s.base_seq == 4995


def test_mid_stream_base_moves_back_across_the_wrap():
    s = ByteStream()
    s.add(2, b"cd", 2, 1.0)
    s.add(MOD - 2, b"ab", 2, 2.0)
    assert s.gaps == [(2, 2)]
    assert [c.data for c in s.chunks] == [b"ab", b"cd"]
    assert s.base_seq == MOD - 2


def test_data_before_the_isn_is_ignored():
    s = ByteStream()
    s.anchor(1000)
    assert s.add(900, b"bogus", 5, 1.0) == IGNORED
    assert len(s) == 0


def test_late_syn_anchors_a_mid_stream_stream():
    s = ByteStream()
    s.add(1011, b"xyz", 3, 1.0)
    s.anchor(1000)
    assert s.gaps == [(0, 10)]
    assert s.chunks[0].offset == 10


def test_without_data_only_coverage_is_kept():
    s = ByteStream(keep_data=False)
    s.anchor(0)
    s.add(1, b"aaaa", 4, 1.0)
    s.add(9, b"cccc", 4, 2.0)
    assert s.add(1, b"aaaa", 4, 3.0) == RETRANSMITTED
    assert s.chunks == [] and len(s) == 8 and s.gaps == [(4, 4)]


@st.composite
def segmented_stream(draw):
    data = draw(st.binary(min_size=1, max_size=300))
    isn = draw(st.integers(0, MOD - 1))
    cuts = (
        sorted(set(draw(st.lists(st.integers(1, len(data) - 1), max_size=20))))
        if len(data) > 1
        else []
    )
    bounds = [0, *cuts, len(data)]
    segments = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    # Duplicates, and overlapping retransmissions that span several original segments.
    extra = draw(st.lists(st.sampled_from(segments), max_size=10))
    spans = draw(
        st.lists(
            st.tuples(st.integers(0, len(data) - 1), st.integers(1, 50)), max_size=5
        )
    )
    extra += [(a, min(len(data), a + n)) for a, n in spans]
    order = draw(st.permutations(segments + extra))
    return data, isn, order


@given(segmented_stream(), st.booleans())
def test_any_permutation_or_duplication_reassembles_to_the_same_stream(case, with_syn):
    data, isn, order = case
    s = ByteStream()
    if with_syn:
        s.anchor(isn)
    for i, (a, b) in enumerate(order):
        s.add((isn + 1 + a) % MOD, data[a:b], b - a, float(i))
    assert joined(s) == data
    assert s.data() == data and s.gaps == [] and len(s) == len(data)
    offsets = [c.offset for c in s.chunks]
    assert offsets == sorted(offsets)
