"""pcapng structure: several sections in both byte orders, interfaces with their own link types,
timestamp resolutions and offsets, every packet block kind, and blocks the reader must skip."""

from __future__ import annotations

from pathlib import Path

import pytest
from capture_helpers import (
    pcapng_block,
    pcapng_enhanced,
    pcapng_interface,
    pcapng_obsolete_packet,
    pcapng_section,
    pcapng_simple,
)
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Ether
from scapy.packet import Raw

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.errors import CaptureError

SEGMENT_V4 = IP(src="198.18.0.1", dst="10.0.0.1", id=7) / TCP(sport=1000, dport=80, seq=10, flags="PA") / Raw(b"a")
SEGMENT_V6 = IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1001, dport=80, seq=20, flags="S")

ETHER = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / SEGMENT_V4)
RAW6 = bytes(SEGMENT_V6)
SLL = bytes(CookedLinux(proto=0x0800) / SEGMENT_V4)
SLL2 = bytes(CookedLinuxV2(proto=0x86DD) / SEGMENT_V6)


def multi_section_capture() -> bytes:
    little, big = "<", ">"
    return b"".join([
        pcapng_section(little),
        pcapng_interface(little, 1),  # default resolution: microseconds
        pcapng_interface(little, 101, tsresol=9),  # nanoseconds
        pcapng_interface(little, 113, tsresol=0x80 | 20, tsoffset=1_000_000_000),  # 2^-20 s, plus an offset
        pcapng_block(little, 4, b"\x00\x00\x00\x00"),  # name resolution block: skipped
        pcapng_enhanced(little, 0, 1_700_000_000_123_456, ETHER),
        pcapng_block(little, 0x40000BAD, b"custom block, skipped"),
        pcapng_enhanced(little, 1, 1_700_000_001_000_000_001, RAW6),
        pcapng_enhanced(little, 2, 700_000_000 * 2**20 + 2**19, SLL),
        pcapng_block(little, 5, b"\0" * 20),  # interface statistics: skipped
        pcapng_section(big),  # a new section forgets the old interfaces
        pcapng_interface(big, 276, tsresol=3),  # milliseconds
        pcapng_enhanced(big, 0, 1_700_000_002_500, SLL2),
        pcapng_simple(big, SLL2),  # no timestamp: takes the previous packet's
        pcapng_obsolete_packet(big, 0, 1_700_000_003_250, SLL2),
    ])  # fmt: skip


def test_sections_interfaces_and_block_kinds(tmp_path: Path) -> None:
    path = tmp_path / "multi.pcapng"
    path.write_bytes(multi_section_capture())
    with open_capture(path) as reader:
        packets = list(reader)
    assert [(p.index, p.sport, p.seq, p.payload) for p in packets] == [
        (0, 1000, 10, b"a"), (1, 1001, 20, b""), (2, 1000, 10, b"a"),
        (3, 1001, 20, b""), (4, 1001, 20, b""), (5, 1001, 20, b""),
    ]  # fmt: skip
    assert [p.ts for p in packets] == pytest.approx(
        [1_700_000_000.123456, 1_700_000_001.000000001, 1_700_000_000.5, 1_700_000_002.5, 1_700_000_002.5,
         1_700_000_003.25], abs=1e-6)  # fmt: skip
    assert reader.stats.link_types == {1, 101, 113, 276}
    assert (reader.stats.records, reader.stats.tcp_packets) == (6, 6)


def test_records_carry_each_interface_link_type(tmp_path: Path) -> None:
    path = tmp_path / "multi.pcapng"
    path.write_bytes(multi_section_capture())
    records = list(open_capture(path).records())
    assert [r.linktype for r in records] == [1, 101, 113, 276, 276, 276]
    assert [r.data for r in records] == [ETHER, RAW6, SLL, SLL2, SLL2, SLL2]


def test_packet_before_its_interface_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.pcapng"
    path.write_bytes(pcapng_section("<") + pcapng_interface("<", 1) + pcapng_enhanced("<", 1, 0, ETHER))
    with pytest.raises(CaptureError, match="interface 1") as caught:
        list(open_capture(path))
    assert (caught.value.path, caught.value.record) == (str(path), 0)


def test_block_with_mismatched_trailer_is_an_error(tmp_path: Path) -> None:
    good = pcapng_enhanced("<", 0, 0, ETHER)
    path = tmp_path / "bad.pcapng"
    path.write_bytes(pcapng_section("<") + pcapng_interface("<", 1) + good + good[:-4] + b"\x10\0\0\0")
    with pytest.raises(CaptureError, match="trailing length") as caught:
        list(open_capture(path))
    assert caught.value.record == 1
