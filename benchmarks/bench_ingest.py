"""Capture ingest speed and memory: pytest-tcpcopy's reader next to scapy and dpkt.

Run by hand:  python benchmarks/bench_ingest.py [--source short.pcap.gz] [--rss-gb 1.0]

1. Builds a capture of >= 200k packets under /tmp by repeating the source's records with shifted
   timestamps (plain and gzip), and times records -> decoded TCP segments on one core, best of 3.
2. Builds a >= 1 GB capture the same way and reads it in a child process, reporting that child's
   peak RSS (ru_maxrss), for plain and gzip input. Every generated file is deleted afterwards.
"""

from __future__ import annotations

import argparse
import gzip
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from shared_captures import bench_dir

DEFAULT_SOURCE = bench_dir() / "short.pcap.gz"
RECORD = struct.Struct("<IIII")


def source_records(source: Path) -> tuple[bytes, bytes, float]:
    """The source's file header, its record bytes (little-endian microsecond pcap), its time span."""
    data = source.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[:4] != b"\xd4\xc3\xb2\xa1":
        sys.exit(f"{source}: expected a little-endian microsecond pcap")
    header, body = data[:24], data[24:]
    first = RECORD.unpack_from(body, 0)
    last = RECORD.unpack_from(body, list(_offsets(body))[-1])
    return header, body, (last[0] - first[0]) + (last[1] - first[1]) / 1e6


def repeated_bodies(body: bytes, span: float, copies: int) -> Iterator[bytes]:
    """``copies`` copies of the records, each shifted ``span`` seconds after the previous one."""
    offsets = list(_offsets(body))
    shift = int(span) + 1
    for copy in range(copies):
        block = bytearray(body)
        if copy:
            for at in offsets:
                sec = RECORD.unpack_from(block, at)[0]
                struct.pack_into("<I", block, at, sec + copy * shift)
        yield bytes(block)


def write_capture(path: Path, header: bytes, body: bytes, span: float, copies: int, compress: bool) -> int:
    """Write header + copies of the records; gzip as one member per copy (fast level 1). Returns bytes."""
    with path.open("wb") as out:
        if not compress:
            out.write(header)
            for block in repeated_bodies(body, span, copies):
                out.write(block)
        else:
            for n, block in enumerate(repeated_bodies(body, span, copies)):
                packer = zlib.compressobj(1, zlib.DEFLATED, 31)
                out.write(packer.compress(header + block if n == 0 else block) + packer.flush())
    return path.stat().st_size


# ---- the contenders; each returns the number of packets it produced -----------------------------


def ours_packets(path: Path) -> int:
    from pytest_tcpcopy.capture import open_capture

    n = 0
    with open_capture(path) as reader:
        for _packet in reader:
            n += 1
    return n


def ours_records(path: Path) -> int:
    from pytest_tcpcopy.capture import open_capture

    n = 0
    with open_capture(path) as reader:
        for _record in reader.records():
            n += 1
    return n


def scapy_raw(path: Path) -> int:
    from scapy.utils import RawPcapReader

    n = 0
    with RawPcapReader(str(path)) as reader:
        for _data, _meta in reader:
            n += 1
    return n


def scapy_dissect(limit: int) -> Callable[[Path], int]:
    def run(path: Path) -> int:
        from scapy.layers.inet import TCP
        from scapy.layers.l2 import Ether
        from scapy.utils import RawPcapReader

        n = 0
        with RawPcapReader(str(path)) as reader:
            for data, _meta in reader:
                tcp = Ether(data)[TCP]
                n += bool((tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.flags, bytes(tcp.payload)))  # touch the fields
                if n == limit:
                    break
        return n

    return run


def dpkt_raw(path: Path) -> int:
    import dpkt

    n = 0
    with path.open("rb") as f:
        for _ts, _buf in dpkt.pcap.Reader(f):
            n += 1
    return n


def dpkt_dissect(path: Path) -> int:
    import dpkt

    n = 0
    with path.open("rb") as f:
        for _ts, buf in dpkt.pcap.Reader(f):
            tcp = dpkt.ethernet.Ethernet(buf).data.data
            n += bool((tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.flags, tcp.data))  # touch the fields
    return n


def best_of(runs: int, fn: Callable[[Path], int], path: Path) -> tuple[int, float, float]:
    """(packets, best wall seconds, best CPU seconds of this process) over ``runs`` runs."""
    wall = cpu = float("inf")
    count = 0
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        count = fn(path)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return count, wall, cpu


RSS_CHILD = """
import resource, sys, time
from pytest_tcpcopy.capture import open_capture
start, start_cpu = time.perf_counter(), time.process_time()
n = 0
for _packet in open_capture(sys.argv[1]) if sys.argv[1] != "-" else ():
    n += 1
hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(n, time.perf_counter() - start, time.process_time() - start_cpu,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, hwm)
"""
# Linux carries ru_maxrss across fork+exec from the parent's memory at fork time, and this parent
# holds the source capture in memory. A small launcher interpreter forks the measured child, so the
# child's ru_maxrss starts from the launcher's few MB and reflects the reader alone.
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def measure_child(path: str) -> tuple[int, float, float, int, int]:
    """(packets, wall s, CPU s, ru_maxrss KiB, VmHWM KiB) of a fresh process reading ``path`` ("-": none)."""
    out = subprocess.run([sys.executable, "-c", LAUNCHER, sys.executable, "-c", RSS_CHILD, path],
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    return int(out[0]), float(out[1]), float(out[2]), int(out[3]), int(out[4])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--min-packets", type=int, default=200_000)
    parser.add_argument("--rss-gb", type=float, default=1.0, help="size of the memory test capture; 0 skips it")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dissect-subset", type=int, default=5_000, help="packets scapy dissects (then extrapolated)")
    args = parser.parse_args()

    header, body, span = source_records(args.source)
    per_copy = sum(1 for _ in _offsets(body))
    copies = -(-args.min_packets // per_copy)
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir="/tmp"))
    try:
        plain, packed = workdir / "speed.pcap", workdir / "speed.pcap.gz"
        size = write_capture(plain, header, body, span, copies, compress=False)
        write_capture(packed, header, body, span, copies, compress=True)
        print(
            f"speed capture: {per_copy * copies:,} packets, {size / 1e6:.0f} MB ({copies} x {args.source.name}),"
            f" best of {args.runs}, Python {sys.version.split()[0]}\n"
        )
        rows = [
            ("pytest-tcpcopy open_capture -> Packet", ours_packets, plain, ""),
            ("pytest-tcpcopy open_capture -> Packet, gzip input", ours_packets, packed, ""),
            ("pytest-tcpcopy records() (no decoding)", ours_records, plain, ""),
            ("pytest-tcpcopy records(), gzip input", ours_records, packed, ""),
            ("scapy RawPcapReader (no dissection)", scapy_raw, plain, ""),
            ("scapy RawPcapReader + Ether() dissection", scapy_dissect(args.dissect_subset), plain,
             f"first {args.dissect_subset:,} packets, extrapolated"),
            ("dpkt pcap.Reader (no dissection)", dpkt_raw, plain, ""),
            ("dpkt pcap.Reader + Ethernet/IP/TCP dissection", dpkt_dissect, plain, ""),
        ]  # fmt: skip
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
        print(f"| {'reader':<50} | {'packets':>9} | {'wall s':>7} | {'packets/s':>10} | {'per CPU s':>10} | note")
        print(f"|{'-' * 52}|{'-' * 11}|{'-' * 9}|{'-' * 12}|{'-' * 12}|------")
        for name, fn, path, note in rows:
            count, wall, cpu = best_of(args.runs, fn, path)
            print(
                f"| {name:<50} | {count:>9,} | {wall:>7.3f} | {count / wall:>10,.0f} | {count / cpu:>10,.0f} | {note}"
            )
        plain.unlink()
        packed.unlink()

        if args.rss_gb > 0:
            copies = -(-int(args.rss_gb * 1e9) // len(body))
            print(f"\nmemory: {copies} x {args.source.name} records, read in a child process")
            baseline = measure_child("-")[3]
            print(f"  child interpreter with pytest_tcpcopy.capture imported, reading nothing: "
                  f"peak RSS {baseline / 1024:.1f} MB")  # fmt: skip
            for compress in (False, True):
                big = workdir / ("big.pcap.gz" if compress else "big.pcap")
                size = write_capture(big, header, body, span, copies, compress)
                count, seconds, cpu, rss, hwm = measure_child(str(big))
                kind = "gzip" if compress else "plain"
                print(f"  {kind:<5} {size / 1e9:.2f} GB on disk, {count:,} packets in {seconds:.1f} s "
                      f"({count / seconds:,.0f}/s, {count / cpu:,.0f} per CPU s): "
                      f"peak RSS {rss / 1024:.1f} MB (ru_maxrss), {hwm / 1024:.1f} MB (VmHWM)")  # fmt: skip
                big.unlink()
    finally:
        for leftover in workdir.iterdir():
            leftover.unlink()
        workdir.rmdir()
    return 0


def _offsets(body: bytes) -> Iterator[int]:
    pos = 0
    while pos < len(body):
        yield pos
        pos += 16 + RECORD.unpack_from(body, pos)[2]


if __name__ == "__main__":
    raise SystemExit(main())
