"""Intercept throughput: a paced flood of SUT-side segments through NFQUEUE to a registered copier.

Two throwaway namespaces (``tcpcp-ic-bench-*``) joined by a veth. In the SUT's, the intercept runs
as ``python -m pytest_tcpcopy.intercept --port 8080`` and sender processes write prebuilt TCP
segments (source port 8080, destinations in 198.18.0.0/15) to a raw socket at a fixed rate: the
queue rule catches them in OUTPUT exactly as it catches a real SUT's replies. In the other
namespace an InterceptClient registers every 4-tuple and counts the records it gets back.

Reports records/s at the copier, the intercept's counters (queued, forwarded, user_dropped,
queue_dropped) and its CPU use, also per segment: on a shared machine the offered rate is bounded
by whatever CPU the senders get (the intercept, the thing measured, runs at nice -10 so that it
gets a core), and segments per CPU-second is the intercept's capacity on a core of its own.
Run as root:  python benchmarks/bench_intercept.py [--rate R] [--count N] [--senders S]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

from pytest_tcpcopy.channel import InterceptClient
from pytest_tcpcopy.endpoint import Endpoint

PORT = 8080
FLOWS = 4096

SENDER = textwrap.dedent(
    """
    import socket, struct, sys, time
    from scapy.layers.inet import IP, TCP
    sut, rate, count, flows = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    dsts = [(f"198.18.{i >> 8}.{i & 255}", 0) for i in range(flows)]
    packets = [bytes(IP(src=sut, dst=d[0]) / TCP(sport=8080, dport=40000, flags="A")) for d in dsts]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, 32, 1 << 26)  # SO_SNDBUFFORCE: queued segments hold send buffer until the verdict
    send, burst, failed = s.sendto, 500, 0
    start = time.monotonic()
    sent = 0
    while sent < count:
        for i in range(sent, min(sent + burst, count)):
            try:
                send(packets[i % flows], dsts[i % flows])
            except OSError:
                failed += 1
        sent = min(sent + burst, count)
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    print(f"{sent} {time.monotonic() - start:.3f} {failed}")
    """
)


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def inside(ns: str, fn):
    """Call ``fn`` on a thread that entered network namespace ``ns``."""
    out: dict = {}

    def run() -> None:
        fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
        try:
            if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)
        out["value"] = fn()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out["value"]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=160_000, help="segments/s offered (default 160k)")
    parser.add_argument("--count", type=int, default=1_500_000, help="segments in total (default 1.5M)")
    parser.add_argument("--senders", type=int, default=2, help="sender processes sharing the rate (default 2)")
    parser.add_argument("--capture-responses", action="store_true")
    args = parser.parse_args()
    tag = secrets.token_hex(2)
    sut, cli = f"tcpcp-ic-bench-{tag}-sut", f"tcpcp-ic-bench-{tag}-cli"
    sut_ip, cli_ip = "10.213.250.1", "10.213.250.2"
    procs: list[subprocess.Popen] = []
    try:
        for ns in (sut, cli):
            os.makedirs(f"/etc/netns/{ns}", exist_ok=True)
            with open(f"/etc/netns/{ns}/resolv.conf", "w") as f:
                f.write("nameserver 127.0.0.1\n")
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", f"icb{tag}s", "netns", sut, "type", "veth", "peer", "name", f"icb{tag}c", "netns", cli)
        for ns, ifname, ip in ((sut, f"icb{tag}s", sut_ip), (cli, f"icb{tag}c", cli_ip)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", ifname)
            sh("ip", "-n", ns, "link", "set", ifname, "up")
        extra = ["--capture-responses"] if args.capture_responses else []
        intercept = subprocess.Popen(
            ["ip", "netns", "exec", sut, "nice", "-n", "-10", sys.executable, "-m", "pytest_tcpcopy.intercept",
             "--port", str(PORT),
             "--listen", f"{sut_ip}:36524", *extra], stdout=subprocess.PIPE, text=True)
        procs.append(intercept)
        ready = json.loads(intercept.stdout.readline())
        assert ready["event"] == "ready", ready

        def connect() -> InterceptClient:
            copier = InterceptClient([f"{sut_ip}:36524"], name="bench")
            target = Endpoint.parse(f"{sut_ip}:{PORT}")
            for i in range(FLOWS):
                copier.register(Endpoint(bytes([198, 18, i >> 8, i & 255]), 40000), target)
            copier.flush()
            return copier

        copier = inside(cli, connect)
        time.sleep(0.5)  # let the intercept take in every registration
        cpu_before = cpu_seconds(intercept.pid)
        senders = [
            subprocess.Popen(["ip", "netns", "exec", sut, sys.executable, "-c", SENDER, sut_ip,
                              str(args.rate / args.senders), str(args.count // args.senders), str(FLOWS)],
                             stdout=subprocess.PIPE, text=True)
            for _ in range(args.senders)
        ]
        procs.extend(senders)
        received, first, last = 0, None, None
        quiet_since = time.monotonic()
        while True:
            if select.select(copier.filenos(), [], [], 0.2)[0]:
                got = len(copier.read_records())
                if got:
                    now = time.monotonic()
                    first = first or now
                    last, quiet_since = now, now
                    received += got
            elif all(p.poll() is not None for p in senders) and time.monotonic() - quiet_since > 1.0:
                break
        cpu = cpu_seconds(intercept.pid) - cpu_before
        reports = [p.communicate()[0].split() for p in senders]
        sent = sum(int(r[0]) for r in reports)
        send_time = max(float(r[1]) for r in reports)
        failed = sum(int(r[2]) for r in reports)
        copier.close()
        intercept.send_signal(signal.SIGTERM)
        stopped = json.loads([line for line in intercept.communicate(timeout=30)[0].splitlines() if line][-1])
        span = (last - first) if first and last and last > first else float("nan")
        print(f"load average   {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other work shares them)")
        print(f"offered        {sent:>10,} segments in {send_time:.2f} s by {args.senders} senders "
              f"({sent / send_time:,.0f}/s; {failed} sendto errors)")
        print(f"received       {received:>10,} records at the copier in {span:.2f} s ({received / span:,.0f}/s)")
        print(f"intercept      queued {stopped['queued']:,}  forwarded {stopped['forwarded']:,}  "
              f"unowned {stopped['unowned']:,}  user_dropped {stopped.get('user_dropped')}  "
              f"queue_dropped {stopped.get('queue_dropped')}")
        print(f"intercept CPU  {cpu:.2f} s for the flood ({100 * cpu / span:.0f}% of one core while it ran); "
              f"{1e6 * cpu / max(1, stopped['queued']):.2f} us per segment = "
              f"{stopped['queued'] / cpu if cpu else float('nan'):,.0f} segments per CPU-second")
        return 0 if received == sent and stopped.get("user_dropped") == 0 else 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for ns in (sut, cli):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
