"""IPv4 reassembly (in order, reordered, interleaved, duplicated) and the fragments that must never
come out: overlapping, incomplete, expired, cut, evicted. IPv6 fragments are counted and skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from capture_helpers import as_fields, expected_from_scapy
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw
from scapy.utils import wrpcap

from pytest_tcpcopy.capture import CaptureStats, open_capture
from pytest_tcpcopy.capture.fragments import FragmentTable

T0 = 1_700_000_000.0


def _datagram(ip_id: int, size: int = 3000) -> ScapyPacket:
    body = bytes(range(256)) * (size // 256 + 1)
    return (
        IP(src="198.18.0.9", dst="10.0.0.9", id=ip_id)
        / TCP(sport=5000, dport=80, seq=77, flags="PA")
        / Raw(body[:size])
    )


def _write(path: Path, packets: list[ScapyPacket], start: float = T0, step: float = 0.001) -> Path:
    for n, packet in enumerate(packets):
        packet.time = start + n * step
    wrpcap(str(path), packets, linktype=101)
    return path


def _read(path: Path, **options: bool) -> tuple[list, CaptureStats]:
    with open_capture(path, **options) as reader:
        return list(reader), reader.stats


def _expected_whole(tmp_path: Path, datagram: ScapyPacket) -> tuple:
    return expected_from_scapy(_write(tmp_path / "whole.pcap", [datagram]))[0]


def test_in_order_fragments_make_one_segment(tmp_path: Path) -> None:
    datagram = _datagram(1)
    pieces = fragment(datagram, fragsize=1000)
    packets, stats = _read(_write(tmp_path / "f.pcap", pieces))
    assert len(packets) == 1
    # same fields as scapy's dissection of the unfragmented datagram; index and time of the first fragment
    assert as_fields(packets[0])[2:] == _expected_whole(tmp_path, datagram)[2:]
    assert packets[0].index == 0 and not packets[0].truncated
    assert (stats.fragments, stats.reassembled, stats.fragments_dropped, stats.tcp_packets) == (len(pieces), 1, 0, 1)


def test_reordered_interleaved_and_duplicated_fragments(tmp_path: Path) -> None:
    first, second = _datagram(1), _datagram(2, 2000)
    a, b = fragment(first, fragsize=800), fragment(second, fragsize=800)
    mixed = [a[2], b[1], a[0], a[0], b[0], a[1], b[2], a[3]]  # a[0] twice: an exact duplicate is ignored
    packets, stats = _read(_write(tmp_path / "f.pcap", mixed))
    assert [p.payload for p in packets] == [bytes(second[Raw]), bytes(first[Raw])]
    assert [p.index for p in packets] == [1, 0]  # the record index of each datagram's first fragment seen
    assert (stats.reassembled, stats.fragments_dropped) == (2, 0)


def test_overlapping_fragments_are_dropped_not_yielded(tmp_path: Path) -> None:
    pieces = fragment(_datagram(3), fragsize=1000)
    liar = pieces[1].copy()
    liar[Raw].load = b"X" * len(liar[Raw].load)
    liar.frag -= 8  # overlaps the first fragment by 64 bytes with different data
    packets, stats = _read(_write(tmp_path / "f.pcap", [pieces[0], liar, *pieces[1:]]))
    assert packets == []
    assert stats.fragments_dropped == 1 and stats.reassembled == 0


def test_incomplete_datagram_is_dropped_at_the_end(tmp_path: Path) -> None:
    pieces = fragment(_datagram(4), fragsize=1000)
    packets, stats = _read(_write(tmp_path / "f.pcap", [pieces[0], pieces[2], pieces[3]]))
    assert packets == [] and stats.fragments_dropped == 1


def test_fragments_too_far_apart_expire(tmp_path: Path) -> None:
    pieces = fragment(_datagram(5), fragsize=1000)
    packets, stats = _read(_write(tmp_path / "f.pcap", pieces, step=20.0))  # 60 s from first to last
    assert packets == [] and stats.fragments_dropped >= 1


def test_fragment_cut_by_snap_length_spoils_its_datagram(tmp_path: Path) -> None:
    pieces = fragment(_datagram(6), fragsize=1000)
    path = _write(tmp_path / "f.pcap", pieces)
    data = bytearray(path.read_bytes())
    # shorten record 1's captured length by 100 bytes (its original length stays), dropping those bytes
    first_len = len(bytes(pieces[0]))
    header = 24 + 16 + first_len
    captured = int.from_bytes(data[header + 8 : header + 12], "little")
    data[header + 8 : header + 12] = (captured - 100).to_bytes(4, "little")
    del data[header + 16 + captured - 100 : header + 16 + captured]
    path.write_bytes(bytes(data))
    packets, stats = _read(path)
    assert packets == [] and stats.fragments_dropped == 1


def test_without_reassembly_fragments_are_counted_and_skipped(tmp_path: Path) -> None:
    pieces = fragment(_datagram(7), fragsize=1000)
    packets, stats = _read(_write(tmp_path / "f.pcap", pieces), reassemble_fragments=False)
    assert packets == [] and stats.fragments == len(pieces) and stats.reassembled == 0


def test_udp_fragments_are_not_tcp(tmp_path: Path) -> None:
    udp = IP(src="198.18.0.9", dst="10.0.0.9", id=8) / UDP() / Raw(b"u" * 3000)
    pieces = fragment(udp, fragsize=1000)
    packets, stats = _read(_write(tmp_path / "f.pcap", pieces))
    assert packets == [] and stats.non_tcp == len(pieces) and stats.fragments == 0


def test_ipv6_fragments_are_counted_and_skipped(tmp_path: Path) -> None:
    big = IPv6(src="2001:db8::9", dst="2001:db8::1") / IPv6ExtHdrFragment() / TCP(sport=1, dport=2) / Raw(b"z" * 3000)
    pieces = fragment6(big, 1280)
    packets, stats = _read(_write(tmp_path / "f.pcap", pieces))
    assert len(pieces) > 2
    assert packets == [] and stats.fragments == len(pieces) and stats.unparsable == 0


def test_table_stays_bounded(tmp_path: Path) -> None:
    stats = CaptureStats()
    table = FragmentTable(stats, max_datagrams=10)
    first = bytes(fragment(_datagram(0), fragsize=1000)[0])
    for ip_id in range(1000):  # a thousand datagrams that never complete
        ip = first[:4] + ip_id.to_bytes(2, "big") + first[6:]
        assert table.add(ip_id, T0, ip, 20, len(ip), 0x2000, (b"s", b"d", ip_id)) is None
    assert stats.fragments_dropped == 990  # evicted while reading, not only at the end
    table.close()
    assert stats.fragments_dropped == 1000


@pytest.mark.parametrize("fragsize", [8, 16, 304])
def test_fragment_sizes(tmp_path: Path, fragsize: int) -> None:
    datagram = _datagram(9, 600)
    packets, stats = _read(_write(tmp_path / "f.pcap", fragment(datagram, fragsize=fragsize)))
    assert [as_fields(p)[2:] for p in packets] == [_expected_whole(tmp_path, datagram)[2:]]
    assert stats.reassembled == 1
