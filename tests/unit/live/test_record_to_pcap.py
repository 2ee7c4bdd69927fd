"""record_to_pcap: what a source produced, written as raw-IP pcap and read back to the same Packets."""

from __future__ import annotations

import os
import socket

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.utils import RawPcapReader

from pytest_tcpcopy.capture import CaptureStats, decode_ip_tcp, open_capture
from pytest_tcpcopy.live.source import ip_bytes, record_to_pcap

CRAFTED = [
    IP(src="10.0.0.1", dst="10.0.0.2", id=7, ttl=61) / TCP(sport=40000, dport=8080, flags="S", seq=1, window=64240,
                                                            options=[("MSS", 1460), ("SAckOK", b""), ("WScale", 7)]),
    IP(src="10.0.0.2", dst="10.0.0.1", id=9) / TCP(sport=8080, dport=40000, flags="SA", seq=2**32 - 5, ack=2),
    IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=8080, flags="PA", seq=2, ack=2**32 - 4) / b"GET / HTTP/1.1\r\n\r\n",
    IPv6(src="fd00::1", dst="fd00::2", hlim=33) / TCP(sport=40001, dport=8080, flags="PA") / (b"z" * 1001),
]  # fmt: skip


class ListSource:
    """A PacketSource that has everything at once and is then finished."""

    def __init__(self, packets) -> None:
        self._packets = list(packets)
        self._r, self._w = socket.socketpair()
        self._w.send(b"x")  # readable at once

    @property
    def finished(self) -> bool:
        return not self._packets

    def filenos(self) -> list[int]:
        return [self._r.fileno()]

    def read_packets(self):
        out, self._packets = self._packets, []
        return out

    def close(self) -> None:
        self._r.close()
        self._w.close()


def decoded(cut_last: int = 0):
    stats = CaptureStats()
    out = []
    for i, pkt in enumerate(CRAFTED):
        raw = bytes(pkt)
        if i == len(CRAFTED) - 1 and cut_last:
            raw = raw[:-cut_last]
        out.append(decode_ip_tcp(i, 1_700_000_000.25 + i * 0.001, raw, stats))
    return out


def test_packets_come_back_identical(tmp_path):
    packets = decoded(cut_last=500)
    assert packets[-1].truncated
    source = ListSource(packets)
    try:
        recording = record_to_pcap(source, tmp_path / "live.pcap", duration=5)
    finally:
        source.close()
    assert recording.packets == len(packets)
    with open_capture(tmp_path / "live.pcap") as reader:
        back = list(reader)
        assert reader.stats.link_types == {101}
    assert [p._replace(ts=0) for p in back] == [p._replace(ts=0) for p in packets]
    assert [p.ts for p in back] == [p.ts for p in packets]


def test_rebuilt_headers_carry_valid_checksums():
    for pkt, packet in zip(CRAFTED, decoded()):
        rebuilt = ip_bytes(packet)
        parsed = (IP if pkt.version == 4 else IPv6)(rebuilt)
        fresh = parsed.copy()
        if pkt.version == 4:
            del fresh.chksum
        del fresh[TCP].chksum
        again = fresh.__class__(bytes(fresh))
        if pkt.version == 4:
            assert parsed.chksum == again.chksum
        assert parsed[TCP].chksum == again[TCP].chksum
        assert bytes(parsed[TCP].payload) == bytes(pkt[TCP].payload)


def test_original_length_of_a_cut_packet_is_kept(tmp_path):
    packets = decoded(cut_last=500)
    source = ListSource(packets)
    try:
        record_to_pcap(source, tmp_path / "cut.pcap", duration=5)
    finally:
        source.close()
    lengths = [(len(data), meta.wirelen) for data, meta in RawPcapReader(os.fspath(tmp_path / "cut.pcap"))]
    assert lengths[-1] == (len(CRAFTED[-1]) - 500, len(CRAFTED[-1]))
    assert all(cap == wire for cap, wire in lengths[:-1])
