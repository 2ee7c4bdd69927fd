"""Every file format x every link type, written by scapy, decoded and compared with scapy's dissection."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_helpers import as_fields, expected_from_scapy, l3_samples
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback, LoopbackOpenBSD
from scapy.packet import Packet as ScapyPacket
from scapy.utils import PcapNgWriter, PcapWriter

from pytest_tcpcopy.capture import open_capture


def _family(packet: ScapyPacket) -> int:
    return 2 if packet.version == 4 else 24


def _ethertype(packet: ScapyPacket) -> int:
    return 0x0800 if packet.version == 4 else 0x86DD


# link type -> frame builder around an IP packet
_MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}  # explicit: no route lookups by scapy

LINKS: dict[str, tuple[int, Callable[[ScapyPacket], ScapyPacket]]] = {
    "ethernet": (1, lambda p: Ether(**_MACS) / p),
    "ethernet-802.1q": (1, lambda p: Ether(**_MACS) / Dot1Q(vlan=10) / p),
    "ethernet-qinq-88a8": (1, lambda p: Ether(**_MACS) / Dot1AD(vlan=100) / Dot1Q(vlan=10) / p),
    "ethernet-qinq-9100": (1, lambda p: Ether(type=0x9100, **_MACS) / Dot1Q(vlan=100) / Dot1Q(vlan=10) / p),
    "sll": (113, lambda p: CookedLinux(pkttype=0, proto=_ethertype(p)) / p),
    "sll2": (276, lambda p: CookedLinuxV2(proto=_ethertype(p)) / p),
    "raw-101": (101, lambda p: p),
    "raw-12": (12, lambda p: p),
    "raw-14": (14, lambda p: p),
    "null": (0, lambda p: Loopback(type=_family(p)) / p),
    "loop": (108, lambda p: LoopbackOpenBSD(type=_family(p)) / p),
}

FORMATS = ["pcap-le", "pcap-be", "nsec-le", "nsec-be", "pcapng", "pcap-gz", "pcapng-gz"]


def write_capture(path: Path, fmt: str, linktype: int, frames: list[ScapyPacket]) -> Path:
    if fmt.startswith("pcapng"):
        with PcapNgWriter(str(path)) as writer:
            for frame in frames:
                writer.write(frame)
    else:
        endianness = ">" if fmt.endswith("-be") else "<"
        with PcapWriter(str(path), linktype=linktype, endianness=endianness, nano=fmt.startswith("nsec")) as writer:
            for frame in frames:
                writer.write(frame)
    if fmt.endswith("-gz"):
        zipped = path.with_name(path.name + ".gz")
        with path.open("rb") as plain, gzip.open(zipped, "wb") as packed:
            shutil.copyfileobj(plain, packed)
        path.unlink()
        zipped.rename(path)  # the name says nothing about gzip: the reader must go by the magic
    return path


def _scapy_readable(path: Path, fmt: str, link: str, frames: list[ScapyPacket]) -> Path | None:
    """The same frames in a form scapy dissects, where scapy cannot dissect the original."""
    if link.startswith(("raw", "null", "loop")):
        # scapy reads DLT 12 and 228 as IPv4 only, has no DLT 14, binds IPv6 to neither NULL nor LOOP:
        # give it the bare IP packets as LINKTYPE_RAW in a classic pcap, with the same timestamps
        bare = []
        for frame in frames:
            bare.append(frame.copy() if link.startswith("raw") else frame.payload.copy())
            bare[-1].time = frame.time
        return write_capture(path, "pcap-le", 101, bare)
    if link == "ethernet-qinq-9100":  # scapy does not bind TPID 0x9100; 0x88a8 is the same layout
        retagged = []
        for frame in frames:
            retagged.append(Ether(bytes(frame)[:12] + b"\x88\xa8" + bytes(frame)[14:]))
            retagged[-1].time = frame.time
        return write_capture(path, fmt, 1, retagged)
    return None


# scapy's pcapng writer takes the link type from the layer class: it cannot label a file DLT 12 or 14
COMBINATIONS = [
    (link, fmt) for link in LINKS for fmt in FORMATS if not (fmt.startswith("pcapng") and link in ("raw-12", "raw-14"))
]


@pytest.mark.parametrize("link,fmt", COMBINATIONS)
def test_decodes_like_scapy(tmp_path: Path, link: str, fmt: str) -> None:
    linktype, frame_of = LINKS[link]
    frames = []
    for packet in l3_samples():
        frame = frame_of(packet)
        frame.time = packet.time
        frames.append(frame)
    path = write_capture(tmp_path / "capture", fmt, linktype, frames)
    expected = expected_from_scapy(_scapy_readable(tmp_path / "reference", fmt, link, frames) or path)

    with open_capture(path) as reader:
        got = [as_fields(p) for p in reader]

    assert len(expected) == 8  # the TCP samples, IPv4 and IPv6 (atomic fragment included)
    assert got == expected
    stats = reader.stats
    # scapy's pcapng writer labels raw IP as LINKTYPE_IPV4 (228), IPv6 packets included
    assert stats.link_types == {228 if fmt.startswith("pcapng") and linktype == 101 else linktype}
    assert (stats.records, stats.tcp_packets, stats.non_tcp) == (len(frames), 8, 3)
    assert stats.truncated_tail is None


def test_raw_records_keep_the_frame_and_lengths(tmp_path: Path) -> None:
    samples = l3_samples()
    frames = [Ether(**_MACS) / p for p in samples]
    for frame, packet in zip(frames, samples):
        frame.time = packet.time
    path = write_capture(tmp_path / "c.pcap", "pcap-le", 1, frames)
    records = list(open_capture(path).records())
    assert [r.index for r in records] == list(range(len(frames)))
    assert [r.data for r in records] == [bytes(f) for f in frames]
    assert [r.orig_len for r in records] == [len(f) for f in frames]
    assert {r.linktype for r in records} == {1}
    assert [r.ts for r in records] == pytest.approx([float(p.time) for p in samples], abs=1e-6)


def test_a_reader_is_single_pass(tmp_path: Path) -> None:
    from pytest_tcpcopy.errors import UsageError

    path = write_capture(tmp_path / "c.pcap", "pcap-le", 101, l3_samples())
    reader = open_capture(path)
    assert len(list(reader)) == 8
    with pytest.raises(UsageError, match="once"):
        list(reader)
