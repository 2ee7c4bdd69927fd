"""Replay benchmark: the anchor's rig (shared/bench/README.md), run by hand as root.

Replays shared/bench/short.pcap.gz (10,000 one-request sessions) and keepalive.pcap.gz (200
sessions x 50 requests) into nginx-light (one worker, keep-alive, a 987-byte file) in a network
namespace at --speed max, through the raw-socket copier and the NFQUEUE intercept, and prints
sessions/s, requests/s, % delivered (unique URLs in nginx's access log) and the CPU of copier,
intercept and nginx (user + system, with the system share; the copier's includes its start-up, its
us_per_request only the replay loop).
Medians of --runs runs.

    python benchmarks/bench_replay.py [--runs 3] [--amplify 1] [--speed max] [--shared DIR]
    python benchmarks/bench_replay.py --compare-pure --runs 5   # compiled vs pure-Python copier, interleaved
    python benchmarks/bench_replay.py --compare-steering --runs 5   # with and without receive steering
    python benchmarks/bench_replay.py --compare-receive-thread --runs 5   # with and without the receive thread
    python benchmarks/bench_replay.py --steer-receive   # steered even on 2 CPUs (default: from 3 on)
    python benchmarks/bench_replay.py --only short --profile /tmp/copier.prof   # one cProfile'd run
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from pytest_tcpcopy import speedups
from pytest_tcpcopy.backends.base import SutSpec
from pytest_tcpcopy.backends.netns.backend import NetnsBackend, NetnsSut
from pytest_tcpcopy.backends.netns.steering import auto_steer
from pytest_tcpcopy.replay.contract import CopierCommand, CopierSettings, Output, parse_speed

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

_URL = re.compile(rb'"GET (/index\.html\?s=\d+&r=\d+) HTTP/1\.1" 200 ')
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK


def tree_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process and its live children (nginx master + worker)."""
    user, system = cpu_times(pid)
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    u, s = cpu_times(int(proc.name))
                    user, system = user + u, system + s
            except (OSError, ValueError, IndexError):
                continue
    return user, system


def children_cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime, usage.ru_stime


def find_shared(explicit: str | None) -> Path:
    for candidate in filter(None, [explicit, os.environ.get("TCPCOPY_SHARED"),
                                   Path(__file__).resolve().parents[1].parent / "shared", "/work/shared"]):  # fmt: skip
        if (Path(candidate) / "bench" / "short.pcap.gz").exists():
            return Path(candidate)
    sys.exit("cannot find shared/bench/*.pcap.gz; pass --shared DIR")


def profiled_replay(sut: NetnsSut, capture: Path, profile: str, settings: CopierSettings) -> dict:
    """The copier run under cProfile (writes ``profile``); returns its JSON result document."""
    command = CopierCommand(sut.target, (sut.intercept_at,), settings, capture=str(capture), output=Output.JSON)
    argv = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "pytest_tcpcopy", "replay", *command.to_argv()]
    copier = sut.rig.run_in("client", argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = copier.communicate(timeout=600)
    if copier.returncode != 0:
        sys.exit(f"copier failed (exit {copier.returncode}): {err.strip()[-2000:]}")
    return json.loads(out)


def run_once(capture: Path, expected: int, amplify: int, speed: str, profile: str | None = None,
             steer: bool | None = None, thread: bool = True) -> dict:  # fmt: skip
    """One replay on a fresh rig; ``steer`` None: NetnsBackend's default (from three CPUs on);
    ``thread``: the rig's receive thread."""
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as tmp:
        os.chmod(tmp, 0o755)  # nginx's worker runs as nobody: else every answer is a 403 page
        Path(tmp, "www").mkdir()
        Path(tmp, "www", "index.html").write_bytes(b"x" * 986 + b"\n")
        conf = Path(tmp, "nginx.conf")
        conf.write_text(NGINX_CONF.format(dir=tmp))
        nginx = ["nginx", "-c", str(conf), "-g", "daemon off;"]
        with NetnsBackend(steer_receive=steer, receive_thread=thread) as backend:
            sut = backend.start_sut(SutSpec("nginx", 8080, command=tuple(nginx), capture_responses=False))
            assert sut.intercept is not None
            intercept_pid = sut.intercept.pid
            nginx_pid = sut.process.popen.pid  # `ip netns exec` execs nginx: this is its master
            icpu0, ncpu0, ccpu0 = cpu_times(intercept_pid), tree_cpu(nginx_pid), children_cpu()
            settings = CopierSettings(speed=parse_speed(speed), amplify=amplify, max_duration=300)
            if profile:
                doc = profiled_replay(sut, capture, profile, settings)
            else:
                doc = backend.replay(capture, settings)[0].result.to_json()
            # The copier is our child (`ip netns exec` execs it) and is reaped by now.
            ccpu1, icpu1, ncpu1 = children_cpu(), cpu_times(intercept_pid), tree_cpu(nginx_pid)
        log = Path(tmp, "access.log").read_bytes()
    urls = _URL.findall(log)
    totals = doc["totals"]
    elapsed = totals["elapsed"]
    per_s = 100.0 / elapsed if elapsed else float("nan")
    copier = [b - a for a, b in zip(ccpu0, ccpu1)]
    intercept = [b - a for a, b in zip(icpu0, icpu1)]
    nginx = [b - a for a, b in zip(ncpu0, ncpu1)]
    return {
        "sessions": totals["sessions"],
        "completed": totals["completed"],
        "requests_logged": len(urls),
        "delivered_pct": 100.0 * len(urls) / (expected * amplify),
        "unique_pct": 100.0 * len(set(urls)) / expected,
        "elapsed": elapsed,
        "sessions_per_s": totals["sessions"] / elapsed if elapsed else 0.0,
        "requests_per_s": len(urls) / elapsed if elapsed else 0.0,
        "copier_cpu_s": sum(copier),
        "copier_sys_s": copier[1],
        # The copier's own account of its replay loop: start-up and JSON output excluded.
        "copier_us_per_request": 1e6 * (totals["cpu_user"] + totals["cpu_system"]) / max(len(urls), 1),
        "copier_cpu_pct": sum(copier) * per_s,
        "intercept_cpu_pct": sum(intercept) * per_s,
        "intercept_sys_pct": intercept[1] * per_s,
        "nginx_cpu_pct": sum(nginx) * per_s,
        "aborted": totals["aborted"],
    }


def print_profile(path: str) -> None:
    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--amplify", type=int, default=1)
    parser.add_argument("--speed", default="max")
    parser.add_argument("--shared")
    parser.add_argument("--only", choices=["short", "keepalive"])
    parser.add_argument("--profile", metavar="FILE",
                        help="run the copier once under cProfile, write FILE and print its top functions")
    parser.add_argument("--compare-pure", action="store_true",
                        help=f"alternate runs of the installed copier and of its pure-Python modules ({speedups.ENV}=1)")
    parser.add_argument("--steer-receive", action=argparse.BooleanOptionalAction, default=None,
                        help="the rig's receive steering (netns.steering); default as NetnsBackend's: "
                             "with 3 CPUs or more")
    parser.add_argument("--compare-steering", action="store_true",
                        help="alternate runs with and without the rig's receive steering (netns.steering)")
    parser.add_argument("--receive-thread", action=argparse.BooleanOptionalAction, default=True,
                        help="the SUT side's receive in a kernel thread (netns.steering; default: on)")
    parser.add_argument("--compare-receive-thread", action="store_true",
                        help="alternate runs with and without the rig's receive thread (netns.steering)")
    args = parser.parse_args()
    if args.steer_receive is None:
        args.steer_receive = auto_steer(os.sched_getaffinity(0))
    # An unbuffered stdout (PYTHONUNBUFFERED, set by some shells and CI runners) makes the
    # copier's JSON result a million write() calls: seconds of CPU that are not the replay's.
    os.environ.pop("PYTHONUNBUFFERED", None)
    shared = find_shared(args.shared)
    base = Mode(steer=args.steer_receive, thread=args.receive_thread)
    modes = [base]
    modes += [Mode(base.steer, base.thread, pure=True)] if args.compare_pure else []
    modes += [Mode(not base.steer, base.thread)] if args.compare_steering else []
    modes += [Mode(base.steer, not base.thread)] if args.compare_receive_thread else []
    cases = [("short", 10_000), ("keepalive", 10_000)]
    for name, expected in cases:
        if args.only and name != args.only:
            continue
        capture = shared / "bench" / f"{name}.pcap.gz"
        if args.profile:
            run = run_once(capture, expected, args.amplify, args.speed, args.profile, steer=base.steer,
                           thread=base.thread)  # fmt: skip
            print(f"\n{name} x{args.amplify} speed={args.speed}, under cProfile: {run}")
            print_profile(args.profile)
            continue
        runs: dict[Mode, list[dict]] = {mode: [] for mode in modes}
        for _ in range(args.runs):  # interleaved, so that a noisy minute hits all alike
            for mode in modes:
                with pure_python(mode.pure):
                    runs[mode].append(run_once(capture, expected, args.amplify, args.speed, steer=mode.steer,
                                               thread=mode.thread))  # fmt: skip
        for mode in modes:
            print_runs(f"{name} x{args.amplify} speed={args.speed}, {mode.describe()}", runs[mode])


@dataclasses.dataclass(frozen=True)
class Mode:
    """One configuration of the interleaved runs."""

    steer: bool
    thread: bool
    pure: bool = False

    def describe(self) -> str:
        steering = ", receive steered off the copier's CPU" if self.steer else ", receive not steered"
        threading = ", in a receive thread" if self.thread else ", in the copier's sends"
        if self.pure or speedups.pure_python_requested():
            return "pure-Python copier" + steering + threading
        compiled, compilable = speedups.compiled_modules(), speedups.compilable_modules()
        return f"copier with {len(compiled)} of {len(compilable)} hot-path modules compiled{steering}{threading}"


@contextlib.contextmanager
def pure_python(on: bool):
    """The copier (a child process) imports its pure-Python modules while this is on."""
    before = os.environ.get(speedups.ENV)
    if on:
        os.environ[speedups.ENV] = "1"
    try:
        yield
    finally:
        os.environ.pop(speedups.ENV, None)
        if before is not None:
            os.environ[speedups.ENV] = before


def print_runs(title: str, runs: list[dict]) -> None:
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if isinstance(runs[0][k], (int, float))}
    print(f"\n{title}: median of {len(runs)}")
    for key in ("sessions", "completed", "requests_logged", "delivered_pct", "unique_pct", "elapsed",
                "sessions_per_s", "requests_per_s", "copier_cpu_s", "copier_sys_s", "copier_us_per_request",
                "copier_cpu_pct",
                "intercept_cpu_pct", "intercept_sys_pct", "nginx_cpu_pct"):  # fmt: skip
        print(f"  {key:20s} {med[key]:12.2f}   runs: {[round(r[key], 2) for r in runs]}")
    for r in runs:
        if r["aborted"]:
            print(f"  aborted: {r['aborted']}")


if __name__ == "__main__":
    main()
