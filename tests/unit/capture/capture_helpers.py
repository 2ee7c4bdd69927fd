"""Capture test helpers: TCP traffic crafted with scapy (``l3_samples``), scapy's own
dissection of a file to compare against, and byte-level pcap/pcapng writers for hand-made files."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw
from scapy.utils import PcapReader

from pytest_tcpcopy.capture import Packet

BASE_TS = 1_700_000_000.25


def _l3_samples() -> list[ScapyPacket]:
    """IPv4 and IPv6 TCP segments of every shape the reader must decode, plus non-TCP traffic."""
    c4, s4 = "198.18.0.7", "10.0.0.2"
    c6, s6 = "2001:db8::7", "2001:db8::2"
    opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]
    return [
        IP(src=c4, dst=s4, id=11, ttl=61) / TCP(sport=40000, dport=80, seq=1, flags="S", window=64240, options=opts),
        IP(src=s4, dst=c4, id=12) / TCP(sport=80, dport=40000, seq=900, ack=2, flags="SA", options=opts[:2]),
        IP(src=c4, dst=s4, id=13)
        / TCP(sport=40000, dport=80, seq=2, ack=901, flags="PA")
        / Raw(b"GET / HTTP/1.1\r\n\r\n"),
        IP(src=c4, dst=s4, ihl=6, options=b"\x01\x01\x01\x00")
        / TCP(sport=40000, dport=80, seq=4294967295, flags="A")
        / Raw(b"x" * 300),
        IP(src=c4, dst=s4) / UDP(sport=53, dport=53) / Raw(b"dns"),
        IP(src=c4, dst=s4) / ICMP(),
        IPv6(src=c6, dst=s6, hlim=33) / TCP(sport=40001, dport=443, seq=5, ack=6, flags="FA") / Raw(b"v6 payload"),
        IPv6(src=c6, dst=s6)
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrRouting()
        / TCP(sport=40002, dport=443, flags="R"),
        IPv6(src=c6, dst=s6)
        / AH(nh=6, payloadlen=4, spi=1, seq=1, icv=b"\0" * 12)
        / TCP(sport=40003, dport=443, flags="S"),
        IPv6(src=c6, dst=s6) / IPv6ExtHdrFragment(offset=0, m=0, id=9) / TCP(sport=40004, dport=443) / Raw(b"atomic"),
        IPv6(src=c6, dst=s6) / UDP(sport=1, dport=2),
    ]


def l3_samples() -> list[ScapyPacket]:
    """Fresh copies of the samples, timestamped 1.001 ms apart (8 TCP segments, 3 other packets)."""
    packets = _l3_samples()
    for n, packet in enumerate(packets):
        packet.time = BASE_TS + n * 0.001001
    return packets


def expected_from_scapy(path: Path) -> list[tuple]:
    """Scapy's dissection of every TCP packet in ``path`` as (index, fields...) tuples."""
    out = []
    with PcapReader(str(path)) as reader:
        for index, packet in enumerate(reader):
            out.extend(_fields(index, packet))
    return out


def _fields(index: int, packet: ScapyPacket) -> list[tuple]:
    if AH in packet and packet[AH].nh == 6 and TCP not in packet:
        tcp = TCP(bytes(packet[AH].payload))  # scapy does not bind TCP after AH; dissect it explicitly
    elif TCP in packet:
        tcp = packet[TCP]
    else:
        return []
    ip = packet[IP] if IP in packet else packet[IPv6]
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    header = bytes(tcp)[: tcp.dataofs * 4]
    return [(
        index,
        round(float(packet.time), 6),
        socket.inet_pton(family, ip.src),
        socket.inet_pton(family, ip.dst),
        tcp.sport, tcp.dport, tcp.seq, tcp.ack, int(tcp.flags), tcp.window,
        header[20:],
        tcp[Raw].load if Raw in tcp else b"",
        ip.id if ip.version == 4 else 0,
        ip.ttl if ip.version == 4 else ip.hlim,
    )]  # fmt: skip


def as_fields(packet: Packet) -> tuple:
    """The Packet fields ``expected_from_scapy`` produces, for direct comparison."""
    return (
        packet.index, round(packet.ts, 6), packet.src, packet.dst, packet.sport, packet.dport, packet.seq,
        packet.ack, packet.flags, packet.window, packet.options, packet.payload, packet.ip_id, packet.ttl,
    )  # fmt: skip


def pcapng_block(order: str, block_type: int, body: bytes) -> bytes:
    """One pcapng block: type, total length, body padded to 32 bits, total length again."""
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def pcapng_section(order: str) -> bytes:
    return pcapng_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def pcapng_interface(
    order: str, linktype: int, tsresol: int | None = None, tsoffset: int = 0, snaplen: int = 0
) -> bytes:
    options = b""
    if tsresol is not None:
        options += struct.pack(order + "HHB3x", 9, 1, tsresol)
    if tsoffset:
        options += struct.pack(order + "HHq", 14, 8, tsoffset)
    options += struct.pack(order + "HH", 0, 0) if options else b""
    return pcapng_block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + options)


def pcapng_enhanced(order: str, interface: int, ticks: int, frame: bytes, orig_len: int | None = None) -> bytes:
    head = struct.pack(order + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                       len(frame) if orig_len is None else orig_len)  # fmt: skip
    return pcapng_block(order, 6, head + frame)


def pcapng_simple(order: str, frame: bytes) -> bytes:
    return pcapng_block(order, 3, struct.pack(order + "I", len(frame)) + frame)


def pcapng_obsolete_packet(order: str, interface: int, ticks: int, frame: bytes) -> bytes:
    head = struct.pack(order + "HHIIII", interface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
    return pcapng_block(order, 2, head + frame)


def pcap_file(linktype: int, records: list[tuple[float, bytes, int]], order: str = "<", snaplen: int = 65535) -> bytes:
    """A classic microsecond pcap from (ts, captured bytes, original length) records."""
    out = [struct.pack(order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for ts, data, orig_len in records:
        seconds = int(ts)
        out.append(struct.pack(order + "IIII", seconds, round((ts - seconds) * 1e6), len(data), orig_len) + data)
    return b"".join(out)
