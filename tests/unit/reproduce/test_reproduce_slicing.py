"""Cutting one session out of a capture: exactly its packets, numbered as the reader numbers
sessions, in one pass that stops once nothing more can belong to the wanted sessions."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
from reprokit import Conversation, http_exchanges, write_capture
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.compare import exchanges_from_capture
from pytest_tcpcopy.errors import CaptureError
from pytest_tcpcopy.flows import FlowAssembler, assemble_sessions
from pytest_tcpcopy.reproduce import slice_sessions

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "jsonservice" / "traffic.pcap.gz"


def reference(capture: Path, ports=()) -> dict[int, list[tuple]]:
    """Per session index, its packets as the reader decodes them (record index left out)."""
    flows = FlowAssembler(ports)
    out: dict[int, list[tuple]] = {}
    with open_capture(capture) as reader:
        for packet in reader:
            route = flows.feed(packet)
            if route is not None:
                out.setdefault(route[0].index, []).append(_fields(packet))
    return out


def _fields(packet) -> tuple:
    return (round(packet.ts, 6), *packet.as_tuple()[2:])


def read_back(path: Path) -> list[tuple]:
    with open_capture(path) as reader:
        return [_fields(p) for p in reader]


def interleaved(tmp_path: Path, *more: Conversation) -> Path:
    """Three sessions whose packets interleave, a reused 4-tuple, UDP noise, and a request sent
    in IPv4 fragments (and ``more`` conversations)."""
    a = Conversation(("10.1.0.1", 40000), ("10.1.0.9", 8080), 100.0).handshake()
    b = Conversation(("10.1.0.2", 40001), ("10.1.0.9", 8080), 100.0005).handshake()
    for request, response in http_exchanges("/api/a", 3):
        a.turn(request, response)
    b.data(True, b"POST /api/b HTTP/1.1\r\nContent-Length: 300\r\n\r\n" + b"x" * 300, fragmented=True)
    b.data(False, b"HTTP/1.1 204 No Content\r\n\r\n")
    a.close()
    b.close()
    again = Conversation(("10.1.0.1", 40000), ("10.1.0.9", 8080), 100.2)  # port reuse, a new ISN
    again.c_seq += 10_000_000
    again.handshake()
    for request, response in http_exchanges("/api/again"):
        again.turn(request, response)
    again.close()
    noise = [(100.001, Ether() / IP(src="10.1.0.5", dst="10.1.0.9") / UDP(sport=53, dport=53))]
    return write_capture(tmp_path / "three.pcap", a, b, again, *more, extra=noise)


def test_each_slice_holds_exactly_its_sessions_packets(tmp_path):
    capture = interleaved(tmp_path)
    expected = reference(capture)
    assert len(expected) == 3
    wanted = {index: tmp_path / f"s{index}.pcap" for index in expected}
    slices = slice_sessions(capture, wanted)
    for index, packets in expected.items():
        cut = slices[index]
        assert cut.found and cut.packets == len(packets) and not cut.too_large
        assert read_back(cut.path) == packets, index
        assert cut.session is not None and cut.session.index == 0  # numbered as in its own file
    with open_capture(wanted[1]) as reader:
        [session] = list(assemble_sessions(reader))
    assert session.client_stream.data().endswith(b"x" * 300)  # the fragmented request, reassembled


def test_a_reassembled_datagram_is_written_whole_with_a_valid_header_checksum(tmp_path):
    capture = interleaved(tmp_path)
    slices = slice_sessions(capture, {1: tmp_path / "b.pcap"})
    with open_capture(slices[1].path) as reader:
        records = list(reader.records())
    assert all(r.linktype == 101 for r in records)  # raw IP: link-layer headers dropped
    big = [r.data for r in records if len(r.data) > 300]
    assert len(big) == 1
    header = big[0][:20]
    assert struct.unpack("!H", header[6:8])[0] & 0x3FFF == 0  # not a fragment any more
    words = sum(struct.unpack("!10H", header))
    while words > 0xFFFF:
        words = (words & 0xFFFF) + (words >> 16)
    assert words == 0xFFFF


def test_sessions_are_numbered_as_the_plugin_numbers_them_on_a_real_capture(tmp_path):
    with open_capture(EXAMPLE) as reader:
        sessions = {s.index: s for s in assemble_sessions(reader, [8080])}
    slices = slice_sessions(EXAMPLE, {i: tmp_path / f"{i}.pcap.gz" for i in sessions}, [8080])
    for index, session in sessions.items():
        cut = slices[index]
        assert cut.packets == session.packets
        assert cut.session.client_stream.data() == session.client_stream.data()
        assert cut.session.server_stream.data() == session.server_stream.data()
        ids = [e.id.partition("-")[2] for e in exchanges_from_capture(cut.session)]
        assert ids == [e.id.partition("-")[2] for e in exchanges_from_capture(session)]
    with gzip.open(slices[3].path) as compressed:  # .gz: a compressed pcap
        assert compressed.read(4) == struct.pack("<I", 0xA1B23C4D)


def test_server_ports_change_the_numbering_and_the_slice_follows_them(tmp_path):
    redis = Conversation(("10.1.0.3", 5000), ("10.1.0.9", 6379), 99.0).handshake().turn(b"PING\r\n", b"+PONG\r\n")
    capture = interleaved(tmp_path, redis.close())
    all_ports = reference(capture)
    http_only = reference(capture, [8080])
    assert len(all_ports) == 4 and len(http_only) == 3
    cut = slice_sessions(capture, {0: None}, [8080])[0]
    assert cut.path is None and cut.packets == len(http_only[0])
    assert cut.session.client_stream.data().startswith(b"GET /api/a")
    first = slice_sessions(capture, {0: None})[0]
    assert first.session.client_stream.data() == b"PING\r\n"


def test_the_pass_stops_once_the_wanted_sessions_are_over(tmp_path):
    """A corrupt record after the session's close (plus the linger) is never read; a session
    still open there makes the pass read on, to the error."""
    done = Conversation(("10.1.0.1", 40000), ("10.1.0.9", 8080), 100.0).handshake()
    done.turn(*http_exchanges("/x")[0]).close()
    open_ = Conversation(("10.1.0.2", 40001), ("10.1.0.9", 8080), 100.001).handshake()
    open_.turn(*http_exchanges("/y")[0])
    later = Conversation(("10.1.0.3", 40002), ("10.1.0.9", 8080), 110.0).handshake()  # past the linger
    capture = write_capture(tmp_path / "c.pcap", done, open_, later)
    with open(capture, "ab") as f:
        f.write(struct.pack("<IIII", 120, 0, 1 << 30, 1 << 30))  # a record no reader accepts
    with pytest.raises(CaptureError):
        list(open_capture(capture))
    cut = slice_sessions(capture, {0: tmp_path / "done.pcap"})[0]
    assert cut.found and cut.session.close.value == "fin"
    with pytest.raises(CaptureError):
        slice_sessions(capture, {1: tmp_path / "open.pcap"})


def test_a_session_the_capture_lacks_is_not_found(tmp_path):
    capture = interleaved(tmp_path)
    cut = slice_sessions(capture, {7: tmp_path / "none.pcap"})[7]
    assert not cut.found and cut.packets == 0 and cut.session is None
    assert read_back(cut.path) == []


def test_a_session_past_the_kept_bound_is_written_whole_but_not_kept(tmp_path):
    capture = interleaved(tmp_path)
    cut = slice_sessions(capture, {0: tmp_path / "a.pcap"}, max_kept_bytes=100)[0]
    assert cut.too_large and cut.session is None
    assert read_back(cut.path) == reference(capture)[0]


def test_a_bad_capture_is_a_capture_error(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    with pytest.raises(CaptureError, match="not a pcap or pcapng"):
        slice_sessions(bad, {0: tmp_path / "out.pcap"})
