"""Capture ingest + TCP flow assembly: packets per second on one core, and peak RSS on >= 1 GB.

    python benchmarks/bench_flows.py [--source short.pcap.gz] [--gigabytes 1.0] [--skip-rss]

1. Throughput: the source capture written twice in a row (timestamps shifted so the copies follow
   each other; 240k packets for short.pcap.gz) as a plain pcap under /tmp, then read with
   ``open_capture`` and assembled with ``assemble_sessions``; best of 3 runs, for full sessions
   (stream bytes and client segments kept) and for counts only (what ``inspect`` does).
   Target: >= 150k packets/s.
2. Memory: the source repeated to at least ``--gigabytes`` under /tmp, assembled in a fresh child
   process; its peak RSS is printed. Target: < 150 MB. Every generated file is deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time

from pytest_tcpcopy.capture import open_capture
from shared_captures import bench_dir
from pytest_tcpcopy.flows import assemble_sessions

BENCH = str(bench_dir())
_RECORD = struct.Struct("<IIII")


def write_repeated(
    source: str, dest: str, min_bytes: int = 0, copies: int = 1
) -> tuple[int, int]:
    """Write ``source``'s records as a plain pcap, repeated ``copies`` times or up to ``min_bytes``.

    Each copy is shifted in time to start 10 s after the previous one ended, so sessions of one
    copy are closed before the same 4-tuples come back. Returns (packets, bytes) written.
    """
    records = [(r.ts, r.data, r.orig_len) for r in open_capture(source).records()]
    first, last = records[0][0], records[-1][0]
    span = last - first + 10.0
    packets = 0
    with open(dest, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        written = 24
        n = 0
        while n < copies or written < min_bytes:
            shift = n * span
            chunk = []
            for ts, data, orig_len in records:
                t = ts + shift
                sec = int(t)
                chunk.append(
                    _RECORD.pack(sec, int((t - sec) * 1e6), len(data), orig_len)
                )
                chunk.append(data)
            blob = b"".join(chunk)
            out.write(blob)
            written += len(blob)
            packets += len(records)
            n += 1
    return packets, written


def ingest(path: str, keep_streams: bool) -> tuple[int, int]:
    """Read and assemble the whole capture; return (packets, sessions)."""
    reader = open_capture(path)
    sessions = sum(1 for _ in assemble_sessions(reader, keep_streams=keep_streams))
    return reader.stats.tcp_packets, sessions


def peak_rss_kb() -> int:
    """This process's peak RSS since its exec (ru_maxrss would include the parent's, via vfork)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def throughput(source: str, tmpdir: str) -> None:
    path = os.path.join(tmpdir, "twice.pcap")
    try:
        packets, size = write_repeated(source, path, copies=2)
        print(
            f"throughput capture: {os.path.basename(source)} x2, {packets} packets, {size / 1e6:.0f} MB"
        )
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            n = sum(1 for _ in open_capture(path))
            runs.append(time.perf_counter() - start)
        print(f"  ingest only:                       {n / min(runs):>9,.0f} packets/s")
        for keep, label in (
            (True, "ingest + flows (full sessions):   "),
            (False, "ingest + flows (counts, inspect): "),
        ):
            runs = []
            for _ in range(3):
                start = time.perf_counter()
                n, sessions = ingest(path, keep)
                runs.append(time.perf_counter() - start)
            print(
                f"  {label}{n / min(runs):>9,.0f} packets/s  ({sessions} sessions, best of 3)"
            )
    finally:
        os.unlink(path)


def peak_rss(source: str, tmpdir: str, gigabytes: float) -> None:
    path = os.path.join(tmpdir, "big.pcap")
    try:
        start = time.perf_counter()
        packets, size = write_repeated(source, path, min_bytes=int(gigabytes * 1e9))
        print(
            f"memory capture: {size / 1e9:.2f} GB, {packets} packets (written in {time.perf_counter() - start:.0f} s)"
        )
        start = time.perf_counter()
        child = subprocess.run(
            [sys.executable, __file__, "--child-ingest", path],
            check=True,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - start
        n, sessions, peak_kb = map(int, child.stdout.split())
        rss_mb = peak_kb / 1024
        print(
            f"  ingest + flows (full sessions): {n} packets, {sessions} sessions in {elapsed:.0f} s"
            f" ({n / elapsed:,.0f} packets/s), peak RSS {rss_mb:.0f} MB"
        )
    finally:
        if os.path.exists(path):
            os.unlink(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=os.path.join(BENCH, "short.pcap.gz"))
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--child-ingest", metavar="PCAP", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_ingest:
        print(*ingest(args.child_ingest, keep_streams=True), peak_rss_kb())
        return
    with tempfile.TemporaryDirectory(prefix="bench-flows-", dir="/tmp") as tmpdir:
        throughput(args.source, tmpdir)
        if not args.skip_rss:
            peak_rss(args.source, tmpdir, args.gigabytes)


if __name__ == "__main__":
    main()
