"""Replay benchmark: the anchor's rig (shared/bench/README.md), run by hand as root.

Replays shared/bench/short.pcap.gz (10,000 one-request sessions) and keepalive.pcap.gz (200
sessions x 50 requests) into nginx-light (one worker, keep-alive, a 987-byte file) in a network
namespace at --speed max, through the raw-socket copier and the NFQUEUE intercept, and prints
sessions/s, requests/s, % delivered (unique URLs in nginx's access log) and the CPU of copier and
intercept. Medians of --runs runs.

    python benchmarks/bench_replay.py [--runs 3] [--amplify 1] [--speed max] [--shared DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pytest_tcpcopy.backends.netns import NetnsBackend

NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 65535; }}
http {{
    access_log {dir}/access.log;
    keepalive_timeout 65;
    keepalive_requests 100000;
    server {{
        listen 8080 backlog=65535;
        root {dir}/www;
    }}
}}
"""

_URL = re.compile(rb'"GET (/index\.html\?s=\d+&r=\d+) ')


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def find_shared(explicit: str | None) -> Path:
    for candidate in filter(None, [explicit, os.environ.get("TCPCOPY_SHARED"),
                                   Path(__file__).resolve().parents[1].parent / "shared", "/work/shared"]):  # fmt: skip
        if (Path(candidate) / "bench" / "short.pcap.gz").exists():
            return Path(candidate)
    sys.exit("cannot find shared/bench/*.pcap.gz; pass --shared DIR")


def run_once(capture: Path, expected: int, amplify: int, speed: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as tmp:
        Path(tmp, "www").mkdir()
        Path(tmp, "www", "index.html").write_bytes(b"x" * 986 + b"\n")
        conf = Path(tmp, "nginx.conf")
        conf.write_text(NGINX_CONF.format(dir=tmp))
        with NetnsBackend(["nginx", "-c", str(conf), "-g", "daemon off;"], 8080, capture_responses=False) as rig:
            intercept_pid = rig.intercept.pid
            icpu0 = cpu_seconds(intercept_pid)
            copier_cpu: list[float] = []

            def watch() -> None:
                # The copier is a child of `ip netns exec`, which execs; sample its CPU until it exits.
                while not copier_cpu:
                    for proc in Path("/proc").iterdir():
                        if proc.name.isdigit():
                            try:
                                cmd = (proc / "cmdline").read_bytes()
                            except OSError:
                                continue
                            if b"pytest_tcpcopy\x00replay" in cmd:
                                last = 0.0
                                while True:
                                    try:
                                        last = cpu_seconds(int(proc.name))
                                    except (OSError, IndexError):
                                        copier_cpu.append(last)
                                        return
                                    time.sleep(0.05)
                    time.sleep(0.01)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            start = time.monotonic()
            doc = rig.replay(capture, "--speed", speed, "--amplify", str(amplify), "--max-duration", "300")
            wall = time.monotonic() - start
            watcher.join(timeout=5)
            icpu = cpu_seconds(intercept_pid) - icpu0
        log = Path(tmp, "access.log").read_bytes()
    urls = _URL.findall(log)
    totals = doc["totals"]
    elapsed = totals["elapsed"]
    return {
        "sessions": totals["sessions"],
        "completed": totals["completed"],
        "requests_logged": len(urls),
        "delivered_pct": 100.0 * len(urls) / (expected * amplify),
        "unique_pct": 100.0 * len(set(urls)) / expected,
        "elapsed": elapsed,
        "sessions_per_s": totals["sessions"] / elapsed if elapsed else 0.0,
        "requests_per_s": len(urls) / elapsed if elapsed else 0.0,
        "copier_cpu_pct": 100.0 * (copier_cpu[0] if copier_cpu else float("nan")) / elapsed,
        "intercept_cpu_pct": 100.0 * icpu / elapsed,
        "wall_incl_startup": wall,
        "aborted": totals["aborted"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--amplify", type=int, default=1)
    parser.add_argument("--speed", default="max")
    parser.add_argument("--shared")
    parser.add_argument("--only", choices=["short", "keepalive"])
    args = parser.parse_args()
    shared = find_shared(args.shared)
    cases = [("short", 10_000), ("keepalive", 10_000)]
    for name, expected in cases:
        if args.only and name != args.only:
            continue
        runs = [run_once(shared / "bench" / f"{name}.pcap.gz", expected, args.amplify, args.speed) for _ in range(args.runs)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if isinstance(runs[0][k], (int, float))}
        print(f"\n{name} x{args.amplify} speed={args.speed}: median of {args.runs}")
        for key in ("sessions", "completed", "requests_logged", "delivered_pct", "unique_pct", "elapsed",
                    "sessions_per_s", "requests_per_s", "copier_cpu_pct", "intercept_cpu_pct", "wall_incl_startup"):  # fmt: skip
            print(f"  {key:20s} {med[key]:12.1f}   runs: {[round(r[key], 1) for r in runs]}")
        for r in runs:
            if r["aborted"]:
                print(f"  aborted: {r['aborted']}")


if __name__ == "__main__":
    main()
