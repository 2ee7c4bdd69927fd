"""False alarms: a release that answers as production did, only slower or on a loaded host, must
be judged the same (run by hand, as root; prints a table).

    python benchmarks/bench_false_alarms.py [--sessions 300] [--load-sessions 1000] [--timeout 5]

It records a capture of ``tests/e2e/servers/mixed_client.py`` against
``tests/e2e/servers/slow_service.py`` at full speed, in a network namespace rig (keep-alive
sessions of one to five requests, Content-Length and chunked bodies with a trailer, HEAD,
``Connection: close`` answers, one-shot clients), then runs pytest end to end on the netns backend
(a subprocess, as a user would) with the same service slowed down:

- ``stall N ms``: ``STALL_MS=N`` between every response head and its body (the head leaves in its
  own segment), with a slow first byte (``FIRST_BYTE_MS``) and slow chunks (``CHUNK_STALL_MS``) in
  the larger rows; judged against production's responses in the capture (``capture``) and
  against a fast baseline release replayed side by side (``command:``);
- ``stall past the timeout``: a stall longer than ``--tcpcopy-response-timeout``: those exchanges
  must be not comparable ("SUT too slow"), never different;
- ``--speed max under load``: a larger capture replayed at full speed while one busy loop per CPU
  competes for the CPUs (bounded: killed when the row ends).

Per row: exchanges judged, same / different / not comparable (with causes), wall time. The goal:
0 different in every row (the candidate always answers production's bytes).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVERS = ROOT / "tests" / "e2e" / "servers"
SLOW_SERVICE = SERVERS / "slow_service.py"
MIXED_CLIENT = SERVERS / "mixed_client.py"
PORT = 8080
LOAD_SECONDS = 600  # a busy loop never outlives this, whatever happens to this script


def record(out: Path, sessions: int, parallel: int) -> Path:
    """``sessions`` of the mixed client against the fast service, captured on the client's side."""
    from pytest_tcpcopy.backends.netns import NetnsRig

    with NetnsRig("tcpcp-fabench") as rig:
        rig.start_sut([sys.executable, str(SLOW_SERVICE), str(PORT)], PORT)
        dump = rig.run_in("client", ["tcpdump", "--immediate-mode", "-i", rig.client_if, "-U", "-w", str(out),
                                     f"tcp port {PORT}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        try:
            os.set_blocking(dump.stderr.fileno(), True)
            if "listening on" not in dump.stderr.readline().decode():
                raise SystemExit("tcpdump did not start")
            subprocess.run(["ip", "netns", "exec", rig.client_ns, sys.executable, str(MIXED_CLIENT), rig.sut_addr,
                            str(PORT), str(sessions), str(parallel)], check=True, timeout=900)  # fmt: skip
            time.sleep(0.3)
        finally:
            dump.terminate()
            dump.wait(timeout=10)
    return out


def service(**stalls: int) -> str:
    """The slow service's command line with ``stalls`` (environment names, milliseconds)."""
    env = " ".join(f"{name}={ms}" for name, ms in stalls.items())
    return f"env {env} {sys.executable} {SLOW_SERVICE} {PORT}".replace("env  ", "env ")


def judged(work: Path, capture: Path, sut: str, *extra: str) -> dict:
    """pytest on ``capture`` replayed into ``sut``: the JSON report's totals and the wall time."""
    report = work / "report.json"
    report.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(capture), "--tcpcopy-backend", "netns",
            "--tcpcopy-port", str(PORT), "--tcpcopy-command", sut, "--tcpcopy-report", str(report),
            "--tcpcopy-items", "endpoint", *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.monotonic() - started
    if not report.exists():
        raise SystemExit(f"pytest wrote no report (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    totals = json.loads(report.read_text())["totals"]
    return {**totals, "wall": wall, "exit": proc.returncode}


def busy(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


class CpuLoad:
    """One busy loop per CPU while the block runs (each stops by itself after LOAD_SECONDS)."""

    def __enter__(self) -> CpuLoad:
        stop_at = time.monotonic() + LOAD_SECONDS
        self.workers = [multiprocessing.Process(target=busy, args=(stop_at,), daemon=True)
                        for _ in range(os.cpu_count() or 1)]  # fmt: skip
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc) -> None:
        for worker in self.workers:
            worker.kill()
            worker.join(timeout=5)


def row(name: str, figures: dict) -> str:
    causes = ", ".join(f"{n} {cause}" for cause, n in figures["causes"].items()) or "-"
    return (f"| {name} | {figures['exchanges']} | {figures['same']} | {figures['different']} | "
            f"{figures['not_comparable']} ({causes}) | {figures['wall']:.1f} s |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=300, help="sessions of the latency capture (default 300)")
    parser.add_argument("--load-sessions", type=int, default=1000, help="sessions of the load capture (default 1000)")
    parser.add_argument("--timeout", type=float, default=5.0, help="--tcpcopy-response-timeout (default 5)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the netns backend makes network namespaces")
    fast = service()
    timeout = ("--tcpcopy-response-timeout", f"{args.timeout:g}")
    with tempfile.TemporaryDirectory(prefix="tcpcopy-fa-") as scratch:
        work = Path(scratch)
        capture = record(work / "mixed.pcap", args.sessions, 8)
        rows = []
        for stall, first, chunk in ((0, 0, 0), (50, 0, 0), (300, 0, 0), (300, 100, 50)):
            slow = service(STALL_MS=stall, FIRST_BYTE_MS=first, CHUNK_STALL_MS=chunk)
            label = f"stall {stall} ms" + (f", first byte {first} ms, chunks {chunk} ms" if first or chunk else "")
            rows.append(row(f"{label}, capture baseline", judged(work, capture, slow, *timeout)))
            rows.append(row(f"{label}, fast baseline beside it", judged(work, capture, slow, *timeout,
                                                                         "--tcpcopy-baseline", f"command:{fast}")))
            print(rows[-2], rows[-1], sep="\n", flush=True)
        past = service(STALL_MS=int(args.timeout * 1000 + 1500))
        rows.append(row(f"stall past the {args.timeout:g} s timeout", judged(work, capture, past, *timeout)))
        print(rows[-1], flush=True)
        loaded = record(work / "load.pcap", args.load_sessions, 8)
        with CpuLoad():
            figures = judged(work, loaded, fast, *timeout, "--tcpcopy-speed", "max")
        rows.append(row(f"{args.load_sessions} sessions, --speed max, {os.cpu_count()} busy loops", figures))
        print(rows[-1], flush=True)
    print()
    print("| condition | exchanges | same | different | not comparable | wall |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
