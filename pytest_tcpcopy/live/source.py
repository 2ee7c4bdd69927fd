"""Packet sources for live replay: what the copier reads instead of a capture file.

A ``PacketSource`` is selectable (``filenos()`` for the caller's selector), never blocks
(``read_packets()`` returns what has arrived, possibly nothing), and says when it is ``finished``
(its duration has passed). ``LiveSource`` captures on a local interface, ``MirrorSource`` receives
from mirror agents on production hosts. ``record_to_pcap`` saves what a source produces to a
classic pcap file (raw IP link type) that ``open_capture`` reads back to the same Packets;
``PcapWriter`` writes that format to any stream (``live.stream`` reads it back from a pipe).
"""

from __future__ import annotations

import os
import selectors
import struct
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from ..capture.packet import Packet
from ..endpoint import Endpoint
from .capture import DEFAULT_SNAPLEN, LiveCapture
from .listener import MirrorListener
from .protocol import LINKTYPE_RAW

_READ_BATCH = 4096


class PacketSource(Protocol):
    """Live packets for the copier: select on ``filenos()``, then ``read_packets()``."""

    @property
    def finished(self) -> bool: ...

    def filenos(self) -> list[int]: ...

    def read_packets(self) -> list[Packet]: ...

    def close(self) -> None: ...


class LiveSource:
    """TCP segments on ``ports`` captured on the local interface ``iface`` for ``duration`` s."""

    def __init__(self, iface: str, ports: Collection[int], duration: float, *, snaplen: int = DEFAULT_SNAPLEN) -> None:
        self.capture = LiveCapture(iface, ports, snaplen=snaplen)
        self._ends = time.monotonic() + duration

    @property
    def finished(self) -> bool:
        return time.monotonic() >= self._ends

    def filenos(self) -> list[int]:
        return [self.capture.fileno()]

    def read_packets(self) -> list[Packet]:
        return self.capture.read_packets(_READ_BATCH)

    def close(self) -> None:
        self.capture.close()


class MirrorSource:
    """TCP segments streamed by mirror agents to ``listen``, for ``duration`` seconds."""

    def __init__(self, listen: Endpoint, duration: float) -> None:
        self.listener = MirrorListener(listen)
        self._ends = time.monotonic() + duration

    @property
    def finished(self) -> bool:
        return time.monotonic() >= self._ends

    def filenos(self) -> list[int]:
        return self.listener.filenos()

    def read_packets(self) -> list[Packet]:
        return self.listener.read_packets()

    def close(self) -> None:
        self.listener.close()


# Classic pcap, nanosecond timestamps, host byte order (readers handle both).
_PCAP_HEADER = struct.Struct("=IHHiIII")
_PCAP_MAGIC_NS = 0xA1B23C4D
_RECORD = struct.Struct("=IIII")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_PCAP_SNAPLEN = 262_144


@dataclass(frozen=True, slots=True)
class Recording:
    path: str
    packets: int  # records written
    seconds: float  # how long the source was read


class PcapWriter:
    """Writes a classic pcap stream of raw IP packets (link type 101, nanosecond timestamps) to
    every one of ``outs`` alike, header first: a file, a pipe to a copier, or both in one order."""

    def __init__(self, *outs: BinaryIO) -> None:
        self.outs = outs
        self.packets = 0
        self._send(_PCAP_HEADER.pack(_PCAP_MAGIC_NS, 2, 4, 0, 0, _PCAP_SNAPLEN, LINKTYPE_RAW))

    def write(self, packets: Iterable[Packet]) -> None:
        """Append ``packets`` as records, in order, and flush them to every output."""
        records = [_record(packet) for packet in packets]
        if records:
            self._send(b"".join(records))
            self.packets += len(records)

    def _send(self, data: bytes) -> None:
        for out in self.outs:
            out.write(data)
            out.flush()


def record_to_pcap(
    source: PacketSource, path: str | os.PathLike[str], duration: float, *, also: Sequence[BinaryIO] = ()
) -> Recording:
    """Write every Packet ``source`` produces for ``duration`` seconds (or until it is finished)
    to a pcap file of raw IP packets (link type 101); the source stays open. ``also`` get the same
    pcap stream at the same time, each batch as soon as it is read (a live copier's stdin).

    Each packet's IP and TCP headers are rebuilt from the Packet's fields with valid checksums
    (TCP's only when the whole payload was captured; else 0); a cut payload keeps its wire length
    in the IP header and the record's original length, as a snap length would.
    """
    path = os.fspath(path)
    start = time.monotonic()
    stop_at = start + duration
    with open(path, "wb") as out, selectors.DefaultSelector() as selector:
        writer = PcapWriter(out, *also)
        for fd in source.filenos():
            selector.register(fd, selectors.EVENT_READ)
        while True:
            writer.write(source.read_packets())
            now = time.monotonic()
            if now >= stop_at or source.finished:
                break
            selector.select(min(0.1, stop_at - now))
    return Recording(path, writer.packets, time.monotonic() - start)


def _record(packet: Packet) -> bytes:
    ip = ip_bytes(packet)
    wire = len(ip) + packet.payload_len - len(packet.payload)
    whole = int(packet.ts)
    fraction = round((packet.ts - whole) * 1e9)
    if fraction >= 1_000_000_000:
        whole, fraction = whole + 1, fraction - 1_000_000_000
    return _RECORD.pack(whole, fraction, len(ip), wire) + ip


def ip_bytes(packet: Packet) -> bytes:
    """The IP packet a Packet describes, as captured (a cut payload stays cut)."""
    options = packet.options
    header_len = 20 + len(options)
    tcp_len = header_len + packet.payload_len
    whole = len(packet.payload) == packet.payload_len
    if len(packet.src) == 4:
        pseudo = struct.pack("!4s4sBBH", packet.src, packet.dst, 0, 6, tcp_len)
    else:
        pseudo = struct.pack("!16s16sIxxxB", packet.src, packet.dst, tcp_len, 6)
    tcp = _TCP.pack(packet.sport, packet.dport, packet.seq, packet.ack, (header_len // 4) << 4,
                    packet.flags, packet.window, 0, 0) + options + packet.payload  # fmt: skip
    if whole:
        tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
    if len(packet.src) == 4:
        header = _IPV4.pack(0x45, 0, 20 + tcp_len, packet.ip_id, 0, packet.ttl, 6, 0, packet.src, packet.dst)
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    else:
        header = _IPV6.pack(6 << 28, tcp_len, 6, packet.ttl, packet.src, packet.dst)
    return header + tcp


def _checksum(data: bytes) -> int:
    if len(data) & 1:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
