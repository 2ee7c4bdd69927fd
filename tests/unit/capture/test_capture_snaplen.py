"""Packets cut by the snap length at every possible byte: a complete TCP header gives a truncated
Packet (payload as captured, payload_len as on the wire); anything shorter is counted, never guessed."""

from __future__ import annotations

from pathlib import Path

import pytest
from capture_helpers import pcap_file
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from pytest_tcpcopy.capture import CaptureStats, decode_ip_tcp, open_capture

MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
PAYLOAD = bytes(range(200)) * 5
OPTIONS = [("MSS", 1460), ("NOP", None), ("WScale", 7)]

CASES = {
    # name: (frame, bytes before the TCP header, TCP header length)
    "ethernet-ipv4": (Ether(**MAC) / IP() / TCP(options=OPTIONS) / Raw(PAYLOAD), 14 + 20, 28),
    "vlan-ipv4-options": (Ether(**MAC) / Dot1Q() / IP(options=b"\x01" * 4) / TCP() / Raw(PAYLOAD), 18 + 24, 20),
    "ethernet-ipv6-ext": (Ether(**MAC) / IPv6() / IPv6ExtHdrDestOpt() / TCP() / Raw(PAYLOAD), 14 + 48, 20),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_cut_length(tmp_path: Path, case: str) -> None:
    frame, before_tcp, tcp_len = CASES[case]
    whole = bytes(frame)
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap_file(1, [(1.0, whole[:cut], len(whole)) for cut in range(len(whole) + 1)]))
    with open_capture(path) as reader:
        packets = {p.index: p for p in reader}
    header_end = before_tcp + tcp_len
    assert sorted(packets) == list(range(header_end, len(whole) + 1))
    for cut, packet in packets.items():
        assert packet.payload == PAYLOAD[: cut - header_end]
        assert packet.payload_len == len(PAYLOAD)
        assert packet.truncated == (cut < len(whole))
    stats = reader.stats
    assert stats.unparsable == header_end and stats.truncated_packets == len(packets) - 1


def test_decode_ip_tcp_alone() -> None:
    """The IP-level decoder that live capture will call: same result as the file reader's fast path."""
    ip = bytes(IP(src="198.18.0.1", dst="10.0.0.1", id=5, ttl=9) / TCP(sport=1, dport=2, seq=3, ack=4) / Raw(b"hi"))
    stats = CaptureStats()
    packet = decode_ip_tcp(7, 1.5, ip, stats)
    assert packet is not None
    assert packet._replace(index=0) == decode_ip_tcp(0, 1.5, ip, stats)
    assert (packet.index, packet.ts, packet.sport, packet.dport, packet.seq, packet.ack) == (7, 1.5, 1, 2, 3, 4)
    assert (packet.payload, packet.payload_len, packet.ip_id, packet.ttl) == (b"hi", 2, 5, 9)
    assert decode_ip_tcp(8, 1.5, ip[:30], stats) is None
    assert (stats.tcp_packets, stats.unparsable) == (2, 1)
