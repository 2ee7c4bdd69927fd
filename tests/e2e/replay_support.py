"""Plumbing for end-to-end replay tests: make a capture of real clients talking to a real server in
throw-away namespaces, replay it with ``pytest-tcpcopy netns-run``, and read what the SUT recorded."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.flows.assembler import assemble_sessions
from pytest_tcpcopy.backends.netns import NetnsRig

SERVERS = Path(__file__).parent / "servers"
RECORDING_SERVER = str(SERVERS / "recording_server.py")
CLIENTS = str(SERVERS / "clients.py")
REPLAY_NET = ipaddress.ip_network("198.18.0.0/15")


def make_capture(
    out: Path, port: int, server_argv: list[str], client_runs: list[list[str]], *, snaplen: int = 0
) -> Path:
    """Capture real ``clients.py`` runs (each a list of args after HOST PORT) against a real
    server, with tcpdump on the client's side of a veth pair (MTU 1500, offloads off)."""
    with NetnsRig("tcpcp-cap") as rig:
        rig.start_sut(server_argv, port)
        dump = rig.run_in(
            "client",
            ["tcpdump", "--immediate-mode", "-B", "65536", "-i", rig.client_if, "-s", str(snaplen), "-U", "-w", str(out), f"tcp port {port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        _wait_for_listening(dump)
        for run in client_runs:
            mode, *args = run
            subprocess.run(
                ["ip", "netns", "exec", rig.client_ns, sys.executable, CLIENTS, mode, rig.sut_addr, str(port), *args],
                check=True, timeout=120,
            )  # fmt: skip
        time.sleep(0.3)  # the last ACKs and FINs
        dump.send_signal(signal.SIGINT)
        dump.wait(timeout=10)
    return out


def _wait_for_listening(dump: subprocess.Popen) -> None:
    assert dump.stderr is not None
    os.set_blocking(dump.stderr.fileno(), True)
    line = dump.stderr.readline().decode()  # "tcpdump: listening on ..." once the socket is bound
    if "listening on" not in line:
        raise RuntimeError(f"tcpdump did not start: {line}")


def netns_run(capture: Path, port: int, sut_argv: list[str], *extra: str, timeout: float = 120) -> dict:
    """Run ``pytest-tcpcopy netns-run --json`` and return its JSON document."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_tcpcopy", "netns-run", str(capture), "--port", str(port), "--json",
         "--capture-responses", "--max-duration", "60", *extra, "--", *sut_argv],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, f"netns-run failed ({proc.returncode}): {proc.stderr}\n{proc.stdout[-2000:]}"
    return json.loads(proc.stdout)


def recorded_connections(record_file: Path) -> list[tuple[str, bytes, int]]:
    """What the recording server saw from replayed clients (198.18.0.0/15; the readiness probes
    come from elsewhere): one (peer ``ip:port``, bytes received, bytes sent) per connection."""
    out = []
    for line in record_file.read_text().splitlines():
        entry = json.loads(line)
        if ipaddress.ip_address(entry["peer"].rpartition(":")[0]) in REPLAY_NET:
            out.append((entry["peer"], base64.b64decode(entry["received"]), entry["sent"]))
    return out


def captured_sessions(capture: Path, port: int) -> dict[str, object]:
    """The capture's sessions by captured client ``ip:port`` (the last one, if a port was reused)."""
    with open_capture(capture) as reader:
        return {str(s.client): s for s in assemble_sessions(reader, [port])}


def cut_before(src: Path, dst: Path, marker: bytes) -> Path:
    """Copy a capture, dropping every connection's packets before the first client segment whose
    payload contains ``marker``: sessions as if the capture had started mid-stream."""
    from scapy.layers.inet import TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import RawPcapReader, RawPcapWriter

    started: set[frozenset] = set()
    reader = RawPcapReader(str(src))
    writer = RawPcapWriter(str(dst), linktype=reader.linktype, sync=True)
    writer.write_header(None)
    try:
        for data, meta in reader:
            pkt = Ether(data)
            tcp = pkt[TCP]
            key = frozenset([(pkt.src, tcp.sport), (pkt.dst, tcp.dport)])
            if key not in started and marker in bytes(tcp.payload):
                started.add(key)
            if key in started:
                writer.write_packet(data, sec=meta.sec, usec=meta.usec)
    finally:
        reader.close()
        writer.close()
    return dst
