"""The mirror protocol in memory: round trips, any chunking, the receiver's rules, and a fuzz
harness whose invariant is "returns events or raises MirrorProtocolError, never anything else"."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_tcpcopy.live.protocol import (
    MAGIC,
    MAX_BODY,
    PROTOCOL_VERSION,
    Bye,
    Error,
    FrameReader,
    FrameType,
    Hello,
    MirrorProtocolError,
    MirrorReceiver,
    Packets,
    Stats,
    encode,
    encode_packets,
)

HELLO = Hello("web-1/eth0", "eth0", (80, 8080), 65535)
PACKETS = Packets(((1_700_000_000_123_456_789, b"\x45" + b"a" * 59), (1_700_000_000_223_456_789, b"\x60" * 80)))
STATS = Stats(captured=10, kernel_dropped=1, buffer_dropped=2, sent=7, connections=1)
BYE = Bye("duration of 60 s reached")
STREAM = encode(HELLO) + encode(PACKETS) + encode(STATS) + encode(BYE)


def test_round_trip_of_every_event():
    for event in (HELLO, PACKETS, STATS, BYE, Error("go away")):
        assert FrameReader().feed(encode(event)) == [event]


def test_receiver_takes_a_whole_conversation():
    receiver = MirrorReceiver()
    assert receiver.receive(STREAM) == [PACKETS, STATS, BYE]
    assert receiver.hello == HELLO and receiver.bye == BYE


def test_byte_by_byte_gives_the_same_events():
    receiver = MirrorReceiver()
    events = []
    for i in range(len(STREAM)):
        events += receiver.receive(STREAM[i : i + 1])
    assert events == [PACKETS, STATS, BYE]


def test_large_batches_split_into_frames_under_the_limit():
    records = [(i, bytes([i % 256]) * 1000) for i in range(50)]
    data = encode_packets(records, max_body=10_000)
    frames = FrameReader().feed(data)
    assert len(frames) == 6
    assert [r for f in frames for r in f.records] == records
    assert all(sum(12 + len(r[1]) for r in f.records) <= 10_000 for f in frames)


def test_encoder_refuses_records_it_cannot_frame():
    with pytest.raises(ValueError, match="1.."):
        encode_packets([(0, b"")])
    with pytest.raises(ValueError, match="at most"):
        encode(Hello("x" * 300, "eth0", (80,), 100))


def frame(kind: int, body: bytes, flags: int = 0) -> bytes:
    return struct.pack("!BBI", kind, flags, len(body)) + body


HELLO_BYTES = encode(HELLO)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (encode(PACKETS), "expected HELLO first"),
        (encode(STATS), "expected HELLO first"),
        (HELLO_BYTES + HELLO_BYTES, "second HELLO"),
        (HELLO_BYTES + encode(Error("x")), "may not send ERROR"),
        (HELLO_BYTES + encode(BYE) + encode(STATS), "after BYE"),
        (frame(1, b"NOPE" + HELLO_BYTES[10:]), "not a pytest-tcpcopy mirror agent"),
        (frame(1, MAGIC + bytes([PROTOCOL_VERSION + 1]) + HELLO_BYTES[11:]), "version mismatch"),
        (frame(1, MAGIC + bytes([PROTOCOL_VERSION])), "shorter than"),
        (frame(1, HELLO_BYTES[6:20]), "cut short"),
        (frame(1, struct.pack("!4sBHIH", MAGIC, 1, 1, 100, 1) + b"\x00\x50\x00"), "link type 1"),
        (frame(1, struct.pack("!4sBHIH", MAGIC, 1, 101, 100, 0) + b"\x00"), "expected one or more"),
        (frame(1, struct.pack("!4sBHIH", MAGIC, 1, 101, 100, 1) + b"\x00\x50\x01\xff"), "not UTF-8"),
        (frame(9, b""), "unknown frame type 9"),
        (frame(2, b"", flags=1), "reserved flags"),
        (struct.pack("!BBI", 2, 0, MAX_BODY + 1), "at most"),
        (HELLO_BYTES + frame(2, b""), "empty PACKETS"),
        (HELLO_BYTES + frame(2, b"\x00" * 11), "cut short"),
        (HELLO_BYTES + frame(2, struct.pack("!qI", 1, 50) + b"x" * 10), "claims 50 bytes"),
        (HELLO_BYTES + frame(2, struct.pack("!qI", 1, 0)), "claims 0 bytes"),
        (HELLO_BYTES + frame(3, b"\x00" * 39), "STATS body of 39"),
        (HELLO_BYTES + frame(4, b"x" * 256), "BYE reason"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_receiver_refuses_with_a_reason(data, reason):
    receiver = MirrorReceiver()
    with pytest.raises(MirrorProtocolError, match=reason):
        receiver.receive(data)
    with pytest.raises(MirrorProtocolError):  # a broken stream stays broken
        receiver.receive(b"")


def test_frame_types_are_stable():
    assert [t.value for t in FrameType] == [1, 2, 3, 4, 5]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), prefix=st.booleans())
def test_fuzz_returns_events_or_raises_our_error(data, prefix):
    receiver = MirrorReceiver()
    try:
        receiver.receive((HELLO_BYTES if prefix else b"") + data)
    except MirrorProtocolError:
        pass


@settings(max_examples=100, deadline=None)
@given(records=st.lists(st.tuples(st.integers(0, 2**62), st.binary(min_size=1, max_size=300)), max_size=20),
       cuts=st.lists(st.integers(1, 50), max_size=30))  # fmt: skip
def test_any_chunking_gives_the_records_back(records, cuts):
    data = HELLO_BYTES + encode_packets(records, max_body=700)
    receiver = MirrorReceiver()
    events = []
    pos = 0
    for n in cuts:
        events += receiver.receive(data[pos : pos + n])
        pos += n
    events += receiver.receive(data[pos:])
    assert [r for e in events for r in e.records] == records
