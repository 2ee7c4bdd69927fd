"""The flow assembler's bounds: one session's kept bytes and the sessions open at once, each a
clear error naming the packet, the session and the bound (the file too, through assemble_sessions)."""

from __future__ import annotations

import pytest
from flowkit import Conversation

from pytest_tcpcopy.errors import CaptureError
from pytest_tcpcopy.flows import FlowAssembler
from pytest_tcpcopy.flows.assembler import MAX_LIVE_SESSIONS, MAX_SESSION_BYTES, FlowLimitError


def test_the_defaults_are_documented_bounds():
    assert MAX_SESSION_BYTES == 256 * 1024 * 1024 and MAX_LIVE_SESSIONS == 2_000_000


def test_a_session_past_its_byte_bound_is_an_error_naming_packet_session_and_bound():
    conv = Conversation()
    packets = [*conv.handshake(), conv.send(True, b"x" * 600), conv.send(True, b"y" * 600)]
    assembler = FlowAssembler(max_session_bytes=1000)
    with pytest.raises(FlowLimitError) as caught:
        for pkt in packets:
            assembler.feed(pkt)
    assert caught.value.record == packets[-1].index and caught.value.limit == "max_session_bytes"
    assert "session 0 (client 198.18.0.1:40000) holds more than 1000 bytes in one direction" in str(caught.value)


def test_without_kept_streams_no_byte_bound_applies():
    conv = Conversation()
    assembler = FlowAssembler(keep_streams=False, max_session_bytes=10)
    for pkt in [*conv.handshake(), conv.send(True, b"x" * 600)]:
        assembler.feed(pkt)
    assert assembler.live == 1


def test_more_open_sessions_than_the_bound_is_an_error():
    assembler = FlowAssembler(max_live=2)
    opened = [Conversation(client=f"198.18.0.{n}:40000").handshake()[0] for n in (1, 2, 3)]
    assembler.feed(opened[0])
    assembler.feed(opened[1])
    with pytest.raises(FlowLimitError, match="more than 2 sessions open at once"):
        assembler.feed(opened[2])


def test_the_error_names_the_file_once_it_is_known():
    error = FlowLimitError(41, "session 3 (client 198.18.0.1:40000) holds more than 10 bytes in one direction",
                           "max_session_bytes")  # fmt: skip
    named = error.in_file("big.pcap")
    assert isinstance(named, CaptureError) and named.record == 41
    assert str(named) == ("big.pcap at record 41: session 3 (client 198.18.0.1:40000) holds more than 10 bytes in "
                          "one direction (the max_session_bytes bound of flow assembly)")  # fmt: skip
