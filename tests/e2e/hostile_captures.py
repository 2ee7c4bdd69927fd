"""Hostile captures, made byte by byte: a gzip bomb, a huge snap length, cut files, a million
SYN-only sessions. Each builder writes the file and returns its path."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

PCAP_HEADER = struct.Struct("<IHHiIII")
RECORD_HEADER = struct.Struct("<IIII")
ETHERNET = 1
_ZEROS = 16 << 20


def pcap_header(snaplen: int = 65535, linktype: int = ETHERNET) -> bytes:
    return PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)


def gzip_bomb(path: Path, gib: int = 10) -> Path:
    """A pcap header and ``gib`` GiB of zeros (as empty records), gzipped: about 10 MB per 10 GiB.
    Made of gzip members, one per 16 MiB of zeros, so that it is written in a moment."""
    member = gzip.compress(bytes(_ZEROS), compresslevel=9)
    with open(path, "wb") as f:
        f.write(gzip.compress(pcap_header() + bytes(_ZEROS), compresslevel=9))
        for _ in range(gib * ((1 << 30) // _ZEROS) - 1):
            f.write(member)
    return path


def huge_snaplen(path: Path) -> Path:
    """A header announcing a 4 GiB snap length, then a record that claims 4 GiB of data."""
    path.write_bytes(pcap_header(snaplen=0xFFFFFFFF) + RECORD_HEADER.pack(1, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"\0" * 64)
    return path


def cut_in_header(capture: Path, path: Path) -> Path:
    """The capture cut inside its 24-byte file header."""
    path.write_bytes(capture.read_bytes()[:13])
    return path


def cut_in_record(capture: Path, path: Path) -> Path:
    """The capture cut in the middle of its last record."""
    whole = capture.read_bytes()
    path.write_bytes(whole[: len(whole) - 20])
    return path


def syn_only(path: Path, sessions: int = 1_000_000, server_port: int = 8080) -> Path:
    """``sessions`` SYNs from distinct clients (10.x.y.z:40000+) to 10.214.1.2, 1 ms apart, and
    nothing else: as many sessions that never open."""
    frame = bytearray(
        b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"  # Ethernet, IPv4
        + struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0x4000, 64, 6, 0, bytes(4), bytes([10, 214, 1, 2]))
        + struct.pack("!HHIIBBHHH", 0, server_port, 1000, 0, 0x50, 0x02, 64240, 0, 0)
    )  # fmt: skip
    with open(path, "wb") as f:
        f.write(pcap_header())
        chunk = bytearray()
        for i in range(sessions):
            ts = 1_700_000_000_000 + i  # ms
            header = RECORD_HEADER.pack(ts // 1000, (ts % 1000) * 1000, len(frame), len(frame))
            frame[26:30] = bytes([10, 1 + (i >> 16) % 200, (i >> 8) & 0xFF, i & 0xFF])
            frame[34:36] = struct.pack("!H", 40000 + i % 20000)
            chunk += header
            chunk += frame
            if len(chunk) > 1 << 22:
                f.write(chunk)
                chunk.clear()
        f.write(chunk)
    return path
