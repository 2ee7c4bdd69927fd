"""The channel codec: round trips, batching, byte-at-a-time feeds, and malformed input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_tcpcopy.channel.protocol import (
    MAX_BODY,
    PROTOCOL_VERSION,
    Bye,
    Capability,
    Channel,
    Error,
    FrameReader,
    Heartbeat,
    Hello,
    ProtocolError,
    Records,
    Register,
    Role,
    Unregister,
    encode,
)
from pytest_tcpcopy.endpoint import Endpoint

V4_PAIR = (Endpoint.parse("198.18.0.7:40001"), Endpoint.parse("10.0.0.2:8080"))
V6_PAIR = (Endpoint.parse("[2001:db8::7]:40001"), Endpoint.parse("[2001:db8::1]:443"))
# IPv4 10.0.0.2:8080 -> 198.18.0.7:40001, SYN-ACK, seq 1000 (checksums not filled in).
SYN_ACK = bytes.fromhex("45000028000040004006000a0a000002c6120007" "1f909c41000003e8000000015012ffff00000000")

EVENTS = [
    Hello(Role.COPIER, "copier-1", Capability.RESPONSE_PAYLOAD),
    Hello(Role.INTERCEPT, "ic"),
    Register((V4_PAIR, V6_PAIR)),
    Unregister((V6_PAIR,)),
    Records((SYN_ACK, b"\x45" * 1500, b"x")),
    Heartbeat(),
    Error("copier is not reading"),
    Bye(),
]


def feed_all(data: bytes, chunk: int) -> list:
    reader = FrameReader()
    events = []
    for i in range(0, len(data), chunk):
        events += reader.feed(data[i : i + chunk])
    return events


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 20])
def test_round_trip_whole_and_in_pieces(chunk: int) -> None:
    stream = b"".join(encode(e) for e in EVENTS)
    assert feed_all(stream, chunk) == EVENTS


def test_frame_header_layout() -> None:
    assert encode(Heartbeat()) == b"\x05\x00\x00\x00"
    frame = encode(Register((V4_PAIR,)))
    assert frame[:4] == struct.pack("!BBH", 2, 0, 13)
    assert frame[4:] == b"\x04" + V4_PAIR[0].addr + struct.pack("!H", 40001) + V4_PAIR[1].addr + struct.pack("!H", 8080)
    hello = encode(Hello(Role.COPIER, "c"))
    assert hello == struct.pack("!BBH4sBBI", 1, 0, 11, b"TCPC", PROTOCOL_VERSION, 1, 0) + b"c"


def test_docs_examples_are_what_encode_produces() -> None:
    """docs/protocol.md shows these bytes; keep the two in step."""
    hello = encode(Hello(Role.COPIER, "copier-1", Capability.RESPONSE_PAYLOAD))
    assert hello.hex(" ") == "01 00 00 12 54 43 50 43 01 01 00 00 00 01 63 6f 70 69 65 72 2d 31"
    assert encode(Register((V4_PAIR,))).hex(" ") == "02 00 00 0d 04 c6 12 00 07 9c 41 0a 00 00 02 1f 90"


def test_large_batches_split_into_bounded_frames() -> None:
    records = tuple(bytes([0x45]) + i.to_bytes(4, "big") * 300 for i in range(500))  # 500 x 1201 bytes
    pairs = tuple((Endpoint(i.to_bytes(4, "big"), 1000 + i % 50000), V4_PAIR[1]) for i in range(20000))
    stream = encode(Records(records)) + encode(Register(pairs))
    events = FrameReader().feed(stream)
    assert len(events) > 2
    assert tuple(r for e in events if isinstance(e, Records) for r in e.records) == records
    assert tuple(p for e in events if isinstance(e, Register) for p in e.pairs) == pairs
    pos = 0
    while pos < len(stream):
        (length,) = struct.unpack_from("!H", stream, pos + 2)
        assert length <= MAX_BODY
        pos += 4 + length


@pytest.mark.parametrize(
    "frame, complaint",
    [
        (b"\x09\x00\x00\x00", "unknown frame type 9"),
        (b"\x00\x00\x00\x00", "unknown frame type 0"),
        (b"\x05\x01\x00\x00", "reserved flags"),
        (b"\x05\x00\x00\x01x", "HEARTBEAT frame must be empty"),
        (b"\x02\x00\x00\x00", "empty REGISTER"),
        (b"\x02\x00\x00\x02\x05\x00", "address family 5"),
        (b"\x02\x00\x00\x05\x04\x01\x02\x03\x04", "cut short"),
        (b"\x04\x00\x00\x03\x00\x05x", "claims 5 bytes"),
        (b"\x04\x00\x00\x02\x00\x00", "claims 0 bytes"),
        (b"\x04\x00\x00\x01\x00", "length prefix"),
        (b"\x01\x00\x00\x0bXXXX\x01\x01\x00\x00\x00\x00c", "bad magic"),
        (b"\x01\x00\x00\x0bTCPC\x01\x07\x00\x00\x00\x00c", "bad HELLO"),
        (b"\x01\x00\x00\x02TC", "HELLO body of 2 bytes"),
    ],
)
def test_malformed_frames_raise_protocol_error(frame: bytes, complaint: str) -> None:
    reader = FrameReader()
    with pytest.raises(ProtocolError, match=complaint):
        reader.feed(frame)
    with pytest.raises(ProtocolError):
        reader.feed(encode(Heartbeat()))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
def test_fuzz_random_bytes_give_events_or_protocol_error(data: bytes, chunk: int) -> None:
    for role in Role:
        channel = Channel(role, "fuzz")
        try:
            for i in range(0, len(data), chunk):
                channel.receive(data[i : i + chunk])
        except ProtocolError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(EVENTS[2:]), max_size=8), st.binary(max_size=40))
def test_fuzz_valid_prefix_then_garbage(events: list, tail: bytes) -> None:
    stream = encode(EVENTS[1]) + b"".join(encode(e) for e in events) + tail
    try:
        FrameReader().feed(stream)
    except ProtocolError:
        pass


def pair() -> tuple[Channel, Channel]:
    copier = Channel(Role.COPIER, "copier", Capability.RESPONSE_PAYLOAD)
    intercept = Channel(Role.INTERCEPT, "intercept", Capability.RESPONSE_PAYLOAD)
    assert intercept.receive(copier.hello()) == []
    assert copier.receive(intercept.hello()) == []
    return copier, intercept


def test_channel_pair_exchanges_hello_then_frames() -> None:
    copier, intercept = pair()
    assert copier.peer == Hello(Role.INTERCEPT, "intercept", Capability.RESPONSE_PAYLOAD)
    assert intercept.peer.name == "copier"
    assert intercept.receive(encode(Register((V4_PAIR,)))) == [Register((V4_PAIR,))]
    assert copier.receive(encode(Records((SYN_ACK,)))) == [Records((SYN_ACK,))]
    assert intercept.receive(encode(Bye())) == [Bye()]
    with pytest.raises(ProtocolError, match="after BYE"):
        intercept.receive(encode(Heartbeat()))


def test_channel_rejects_version_mismatch_with_a_clear_reason() -> None:
    intercept = Channel(Role.INTERCEPT, "intercept")
    future = encode(Hello(Role.COPIER, "new-copier", version=PROTOCOL_VERSION + 1))
    with pytest.raises(ProtocolError, match=r"version mismatch: 'new-copier' speaks version 2"):
        intercept.receive(future)


@pytest.mark.parametrize(
    "first, complaint",
    [
        (encode(Register((V4_PAIR,))), "expected HELLO first, got Register"),
        (encode(Hello(Role.INTERCEPT, "other")), "also a intercept"),
        (encode(Error("go away")), "peer refused the channel: go away"),
    ],
)
def test_channel_rejects_bad_openings(first: bytes, complaint: str) -> None:
    with pytest.raises(ProtocolError, match=complaint):
        Channel(Role.INTERCEPT, "intercept").receive(first)


def test_channel_rejects_frames_the_peer_role_may_not_send() -> None:
    copier, intercept = pair()
    with pytest.raises(ProtocolError, match="copier may not send Records"):
        intercept.receive(encode(Records((SYN_ACK,))))
    with pytest.raises(ProtocolError, match="intercept may not send Register"):
        copier.receive(encode(Register((V4_PAIR,))))
    _, intercept = pair()
    with pytest.raises(ProtocolError, match="second HELLO"):
        intercept.receive(encode(Hello(Role.COPIER, "again")))


def test_encode_refuses_mixed_families_and_oversized_records() -> None:
    with pytest.raises(ValueError, match="both be IPv4 or both IPv6"):
        encode(Register(((V4_PAIR[0], V6_PAIR[1]),)))
    with pytest.raises(ValueError, match="a record must hold"):
        encode(Records((b"",)))
