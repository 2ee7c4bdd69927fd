"""Large captures for the judging benchmarks, generated (run by hand):

    python benchmarks/make_scale_captures.py scale COPIES OUT.pcap.gz [--source short.pcap.gz]
    python benchmarks/make_scale_captures.py syn-only SESSIONS OUT.pcap

``scale``: COPIES copies of the benchmark capture (shared/bench/short.pcap.gz: 10,000 sessions of
one GET each against nginx), one after the other in time (each shifted by the source's span plus
a second), copy ``k`` with its client addresses rewritten to 10.(100 + k // 250).(k % 250).1 and
every client port kept, so that every session stays distinct (100 copies: 1,000,000 exchanges).
IPv4 and TCP checksums are corrected incrementally (RFC 1624), the way a real capture has them.
Records are copied otherwise untouched, so the sessions, their requests and production's
responses are those of the source.

``syn-only``: SESSIONS sessions of one SYN each (a scan, or a SYN flood's capture), 10 per
millisecond, distinct client address/port each, Ethernet link type (what ``inspect``'s memory
is measured on).
"""

from __future__ import annotations

import argparse
import gzip
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shared_captures import bench_dir

_RECORD = struct.Struct("<IIII")
_ETHERNET = 14


def _fold(value: int) -> int:
    while value >> 16:
        value = (value & 0xFFFF) + (value >> 16)
    return value


def _patched(checksum: int, old: bytes, new: bytes) -> int:
    """RFC 1624: the checksum after 16-bit words ``old`` became ``new`` (even lengths)."""
    total = ~checksum & 0xFFFF
    for i in range(0, len(old), 2):
        total += (~int.from_bytes(old[i : i + 2], "big") & 0xFFFF) + int.from_bytes(new[i : i + 2], "big")
    return ~_fold(total) & 0xFFFF


def _rewrite(frame: bytearray, server: bytes, client: bytes) -> None:
    """Replace the client address (the side that is not ``server``) with ``client``, in place."""
    ip = _ETHERNET
    if frame[12:14] != b"\x08\x00" or frame[ip] >> 4 != 4:
        return
    ihl = (frame[ip] & 0x0F) * 4
    dst = bytes(frame[ip + 16 : ip + 20])
    at = ip + 12 if dst == server else ip + 16
    old = bytes(frame[at : at + 4])
    frame[at : at + 4] = client
    header_sum = int.from_bytes(frame[ip + 10 : ip + 12], "big")
    frame[ip + 10 : ip + 12] = _patched(header_sum, old, client).to_bytes(2, "big")
    tcp = ip + ihl
    if frame[ip + 9] == 6 and len(frame) >= tcp + 18:
        tcp_sum = int.from_bytes(frame[tcp + 16 : tcp + 18], "big")
        frame[tcp + 16 : tcp + 18] = _patched(tcp_sum, old, client).to_bytes(2, "big")


def scale(copies: int, out: Path, source: Path) -> None:
    with gzip.open(source, "rb") as f:
        data = f.read()
    header, body = data[:24], memoryview(data)[24:]
    if header[:4] != b"\xd4\xc3\xb2\xa1" or struct.unpack_from("<I", header, 20)[0] != 1:
        raise SystemExit(f"{source}: expected a little-endian microsecond pcap of Ethernet frames")
    records = []
    pos = 0
    first = last = None
    while pos < len(body):
        sec, usec, incl, orig = _RECORD.unpack_from(body, pos)
        ts = sec + usec / 1e6
        first = ts if first is None else first
        last = ts
        records.append((ts, bytes(body[pos + 16 : pos + 16 + incl]), orig))
        pos += 16 + incl
    server = records[0][1][_ETHERNET + 16 : _ETHERNET + 20]  # the first packet is a client's SYN
    span = last - first + 1.0
    with gzip.open(out, "wb", compresslevel=1) as w:
        w.write(header)
        for k in range(copies):
            client = bytes([10, 100 + k // 250, k % 250, 1])
            for ts, frame, orig in records:
                shifted = ts + k * span
                sec = int(shifted)
                copy = bytearray(frame)
                _rewrite(copy, server, client)
                w.write(_RECORD.pack(sec, round((shifted - sec) * 1e6) % 1_000_000, len(copy), orig))
                w.write(copy)
            print(f"copy {k + 1}/{copies}", file=sys.stderr, end="\r")
    print(f"\n{out}: {copies * len(records)} packets, {copies} x the sessions of {source.name}", file=sys.stderr)


def syn_only(sessions: int, out: Path) -> None:
    mac = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
    server = bytes([10, 0, 0, 2])
    with open(out, "wb") as w:
        w.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(sessions):
            client = bytes([10, 1 + (i >> 16) % 250, (i >> 8) & 0xFF, 1 + i % 250])
            sport = 1024 + i % 60000
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0, client, server)
            ip = ip[:10] + (~_fold(sum(struct.unpack("!10H", ip))) & 0xFFFF).to_bytes(2, "big") + ip[12:]
            tcp = struct.pack("!HHIIBBHHH", sport, 80, (i * 7919) & 0xFFFFFFFF, 0, 5 << 4, 0x02, 64240, 0, 0)
            pseudo = client + server + struct.pack("!BBH", 0, 6, len(tcp))
            tcp_sum = ~_fold(sum(struct.unpack(f"!{(len(pseudo) + len(tcp)) // 2}H", pseudo + tcp))) & 0xFFFF
            tcp = tcp[:16] + tcp_sum.to_bytes(2, "big") + tcp[18:]
            frame = mac + ip + tcp
            ts = 1_700_000_000 + i / 10_000
            sec = int(ts)
            w.write(_RECORD.pack(sec, int((ts - sec) * 1e6), len(frame), len(frame)) + frame)
    print(f"{out}: {sessions} SYN-only sessions", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    one = sub.add_parser("scale")
    one.add_argument("copies", type=int)
    one.add_argument("out", type=Path)
    one.add_argument("--source", type=Path, default=None)
    two = sub.add_parser("syn-only")
    two.add_argument("sessions", type=int)
    two.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.kind == "scale":
        scale(args.copies, args.out, args.source or bench_dir() / "short.pcap.gz")
    else:
        syn_only(args.sessions, args.out)


if __name__ == "__main__":
    main()
