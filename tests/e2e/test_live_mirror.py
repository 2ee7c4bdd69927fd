"""Live capture and the mirror agent for real: AF_PACKET on a veth pair between namespaces, a real
HTTP server in the "production" namespace, real clients, tcpdump alongside as the reference.

The runner side (LiveCapture, MirrorListener) lives in this process: its sockets are created by a
short-lived thread that first joins the target namespace (setns), and keep working from any thread.
The agent runs as ``pytest-tcpcopy mirror`` inside the production namespace. Namespaces are named
``tcpcp-lv-*`` and removed by the rig, also when a test fails.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import require_root, require_tools

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.capture.packet import FIN, SYN
from pytest_tcpcopy.endpoint import Endpoint, parse_addr
from pytest_tcpcopy.flows.assembler import assemble_sessions
from pytest_tcpcopy.live import LiveCapture, LiveSource, MirrorListener, record_to_pcap
from pytest_tcpcopy.backends.netns import NetnsRig

PREFIX = "tcpcp-lv"
PORT = 8080
OTHER_PORT = 9090
MIRROR_PORT = 36525
CLONE_NEWNET = 0x40000000
PAGES = {"hello.txt": b"hello from production\n", "big.bin": bytes(range(256)) * 800}


def in_netns(namespace: str, make: Callable[[], object]) -> object:
    """Run ``make`` in a fresh thread that has joined ``namespace``; sockets it makes stay there."""

    def target() -> object:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {namespace} failed")
        finally:
            os.close(fd)
        return make()

    with ThreadPoolExecutor(max_workers=1) as one_thread:
        return one_thread.submit(target).result(timeout=60)


def fetch(rig: NetnsRig, paths: list[str]) -> list[bytes]:
    """One HTTP/1.1 connection per path, from the client namespace to the production server."""

    def run() -> list[bytes]:
        bodies = []
        for path in paths:
            conn = http.client.HTTPConnection(rig.sut_addr, PORT, timeout=10)
            conn.request("GET", f"/{path}")
            bodies.append(conn.getresponse().read())
            conn.close()
        return bodies

    return in_netns(rig.client_ns, run)


def start_tcpdump(rig: NetnsRig, out: Path, expression: str) -> subprocess.Popen:
    dump = rig.run_in(
        "sut",
        ["tcpdump", "--immediate-mode", "-B", "65536", "-i", rig.sut_if, "-s", "0", "-U", "-w", str(out), expression],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    line = dump.stderr.readline().decode()  # "listening on ..." once its socket is bound
    assert "listening on" in line, f"tcpdump did not start: {line}"
    return dump


def stop_tcpdump(dump: subprocess.Popen) -> None:
    time.sleep(0.3)  # the last ACKs and FINs of the exchange
    dump.send_signal(signal.SIGINT)
    dump.wait(timeout=10)


def poll(condition: Callable[[], bool], read: Callable[[], None] = lambda: None, timeout: float = 20.0) -> None:
    """Call ``read`` until ``condition()`` holds; fail after ``timeout`` seconds (bounded count too)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.02) + 1):
        read()
        if condition():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    pytest.fail("condition not met in time")


def mirror_argv() -> list[str]:
    return [sys.executable, "-m", "pytest_tcpcopy", "mirror"]


class Agent:
    """``mirror`` running in the production namespace; stderr goes to a log file we can read."""

    def __init__(self, rig: NetnsRig, log: Path, to: str, *extra: str) -> None:
        self.log = log
        with open(log, "wb") as err:
            self.proc = rig.run_in(
                "sut",
                [*mirror_argv(), "--iface", rig.sut_if, "--port", str(PORT), "--to", to, *extra],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
            )  # fmt: skip
        line = self.proc.stdout.readline().decode()
        assert json.loads(line)["event"] == "capturing", f"agent did not start: {line} {self.logs()}"

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def finished(self) -> bool:
        return self.proc.poll() is not None

    def result(self) -> dict:
        assert self.proc.wait(timeout=30) == 0, self.logs()
        return json.loads(self.proc.stdout.read().decode().strip().splitlines()[-1])


def sessions_by_client(packets) -> dict:
    return {str(s.client): s for s in assemble_sessions(packets, [PORT])}


def capture_packets(path: Path) -> list:
    with open_capture(path) as reader:
        return list(reader)


def same_segments(packets) -> list[tuple]:
    """Packets without capture index and time, in a canonical order."""
    return sorted(p[2:] for p in packets)


@pytest.fixture
def rig(tmp_path):
    require_root()
    require_tools("ip", "tcpdump", "ethtool", "sysctl")
    site = tmp_path / "site"
    site.mkdir()
    for name, body in PAGES.items():
        (site / name).write_bytes(body)
    with NetnsRig(PREFIX) as rig:
        rig.start_sut([sys.executable, "-m", "http.server", "--bind", rig.sut_addr, "--directory", str(site),
                       str(PORT)], PORT, http_path="/hello.txt")  # fmt: skip
        yield rig


def test_filter_keeps_tcp_on_the_port_in_both_directions_and_nothing_else(rig, tmp_path):
    for namespace, link, addr in ((rig.client_ns, rig.client_if, "fd00:7c::1"), (rig.sut_ns, rig.sut_if, "fd00:7c::2")):
        subprocess.run(["ip", "-n", namespace, "addr", "add", f"{addr}/64", "dev", link, "nodad"], check=True)
    v6_server = in_netns(rig.sut_ns, lambda: socket.create_server(("fd00:7c::2", PORT), family=socket.AF_INET6))
    capture = in_netns(rig.sut_ns, lambda: LiveCapture(rig.sut_if, [PORT]))
    wire = start_tcpdump(rig, tmp_path / "wire.pcap", "tcp or udp")
    try:
        assert fetch(rig, ["hello.txt"]) == [PAGES["hello.txt"]]

        def noise() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.sendto(b"udp on the port", (rig.sut_addr, PORT))
            with socket.socket() as other:
                other.settimeout(5)
                assert other.connect_ex((rig.sut_addr, OTHER_PORT)) != 0  # refused: SYN and RST on the wire
            with socket.create_connection(("fd00:7c::2", PORT), timeout=5) as v6:
                v6.sendall(b"ping over ipv6")

        in_netns(rig.client_ns, noise)
        peer, _ = v6_server.accept()
        assert peer.recv(100) == b"ping over ipv6"
        peer.sendall(b"pong")
        peer.close()
        stop_tcpdump(wire)
        on_wire = capture_packets(tmp_path / "wire.pcap")
        expected = [p for p in on_wire if PORT in (p.sport, p.dport)]
        got: list = []
        poll(lambda: len(got) >= len(expected), lambda: got.extend(capture.read_packets()))
        got += capture.read_packets()
    finally:
        v6_server.close()
        capture.close()

    assert any(OTHER_PORT in (p.sport, p.dport) for p in on_wire)  # the negatives really were sent
    assert same_segments(got) == same_segments(expected)
    assert {len(p.src) for p in got} == {4, 16}
    to_server = [p for p in got if p.dport == PORT and p.flags & SYN]
    from_server = [p for p in got if p.sport == PORT and p.flags & SYN]
    assert len(to_server) == len(from_server) == 2  # one IPv4 and one IPv6 handshake, both directions
    counters = capture.counters
    assert counters.kernel_dropped == 0 and counters.not_ip == 0
    assert counters.kernel_packets == counters.frames == len(got)
    assert capture.decoder.stats.tcp_packets == len(got)


def test_live_capture_decodes_an_http_exchange_like_tcpdump(rig, tmp_path):
    capture = in_netns(rig.sut_ns, lambda: LiveCapture(rig.sut_if, [PORT]))
    dump = start_tcpdump(rig, tmp_path / "ref.pcap", f"tcp port {PORT}")
    try:
        assert fetch(rig, ["hello.txt", "big.bin"]) == [PAGES["hello.txt"], PAGES["big.bin"]]
        stop_tcpdump(dump)
        reference = capture_packets(tmp_path / "ref.pcap")
        got: list = []
        poll(lambda: len(got) >= len(reference), lambda: got.extend(capture.read_packets()))
    finally:
        capture.close()
    assert same_segments(got) == same_segments(reference)
    assert [p.index for p in got] == list(range(len(got)))
    sessions = sessions_by_client(got)
    assert len(sessions) == 2
    for session, page in zip(sorted(sessions.values(), key=lambda s: s.index), ("hello.txt", "big.bin")):
        assert session.server == Endpoint(parse_addr(rig.sut_addr), PORT)
        assert session.handshake and session.gaps == 0
        assert session.client_stream.data().startswith(f"GET /{page} HTTP/1.1\r\n".encode())
        assert session.server_stream.data().endswith(PAGES[page])


def test_mirror_streams_the_same_sessions_as_tcpdump_and_a_bad_peer_changes_nothing(rig, tmp_path):
    listener = in_netns(rig.client_ns, lambda: MirrorListener(Endpoint(parse_addr(rig.client_addr), MIRROR_PORT)))
    got: list = []
    try:
        dump = start_tcpdump(rig, tmp_path / "ref.pcap", f"tcp port {PORT}")
        agent = Agent(rig, tmp_path / "agent.log", f"{rig.client_addr}:{MIRROR_PORT}", "--duration", "4")
        poll(lambda: listener.connected == 1, lambda: got.extend(listener.read_packets()))
        bad = in_netns(rig.sut_ns, lambda: socket.create_connection((rig.client_addr, MIRROR_PORT), timeout=5))
        bad.sendall(b"\x01\x00\x00\x00\x00\x05HELLO")
        assert fetch(rig, ["hello.txt", "big.bin", "hello.txt"]) == [
            PAGES["hello.txt"],
            PAGES["big.bin"],
            PAGES["hello.txt"],
        ]
        poll(agent.finished, lambda: got.extend(listener.read_packets()))
        got += listener.read_packets()
        stop_tcpdump(dump)
        assert bad.recv(1024)[:1] == b"\x05"  # an ERROR frame, then the listener closed it
        bad.close()
    finally:
        listener.close()
    result = agent.result()
    reference = capture_packets(tmp_path / "ref.pcap")
    assert result["reason"] == "duration of 4 s reached"
    assert (result["kernel_dropped"], result["buffer_dropped"], result["unsent"]) == (0, 0, 0)
    assert result["captured"] == result["sent"] == len(got) == len(reference)
    assert listener.counters.refused == 1
    stats = listener.counters.agents[f"{_hostname(rig)}/{rig.sut_if}"]
    assert stats.bye == "duration of 4 s reached" and stats.connections == 1
    assert same_segments(got) == same_segments(reference)
    mirrored, captured = sessions_by_client(got), sessions_by_client(reference)
    assert len(mirrored) == 3 and mirrored.keys() == captured.keys()
    for client, session in mirrored.items():
        ref = captured[client]
        assert session.client_stream.data() == ref.client_stream.data()
        assert session.server_stream.data() == ref.server_stream.data()
        assert (session.handshake, session.close, session.packets) == (ref.handshake, ref.close, ref.packets)


def _hostname(rig: NetnsRig) -> str:
    return subprocess.run(["ip", "netns", "exec", rig.sut_ns, "hostname"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def test_agent_buffers_until_a_late_runner_appears_then_reconnects_when_it_comes_back(rig, tmp_path):
    to = f"{rig.client_addr}:{MIRROR_PORT}"
    agent = Agent(rig, tmp_path / "agent.log", to, "--duration", "6", "--name", "late")
    assert fetch(rig, ["hello.txt"]) == [PAGES["hello.txt"]]  # nobody listens yet: buffered
    poll(lambda: "not reachable" in agent.logs())
    make = lambda: MirrorListener(Endpoint(parse_addr(rig.client_addr), MIRROR_PORT))
    got: list = []
    listener = in_netns(rig.client_ns, make)
    try:
        poll(lambda: len(sessions_by_client(got)) == 1 and listener.counters.agents["late"].reported is not None,
             lambda: got.extend(listener.read_packets()))  # fmt: skip
    finally:
        listener.close()
    first = len(got)
    assert fetch(rig, ["hello.txt"]) == [PAGES["hello.txt"]]  # the runner is away again
    listener = in_netns(rig.client_ns, make)
    try:
        poll(agent.finished, lambda: got.extend(listener.read_packets()))
        got += listener.read_packets()
        assert listener.counters.agents["late"].connections == 1
    finally:
        listener.close()
    result = agent.result()
    assert result["connections"] == 2 and result["reason"] == "duration of 6 s reached"
    assert result["captured"] == result["sent"] + result["buffer_dropped"] + result["unsent"]
    assert result["buffer_dropped"] == 0 and len(got) == result["sent"] > first
    sessions = sessions_by_client(got)
    assert len(sessions) == 2
    for session in sessions.values():
        assert session.handshake and session.server_stream.data().endswith(PAGES["hello.txt"])


def test_agent_with_a_tiny_buffer_counts_what_it_dropped(rig, tmp_path):
    to = f"{rig.client_addr}:{MIRROR_PORT}"
    agent = Agent(rig, tmp_path / "agent.log", to, "--duration", "3", "--buffer", "3", "--name", "tiny")
    assert fetch(rig, ["big.bin"]) == [PAGES["big.bin"]]
    listener = in_netns(rig.client_ns, lambda: MirrorListener(Endpoint(parse_addr(rig.client_addr), MIRROR_PORT)))
    got: list = []
    try:
        poll(agent.finished, lambda: got.extend(listener.read_packets()))
        got += listener.read_packets()
    finally:
        listener.close()
    result = agent.result()
    assert result["reason"] == "duration of 3 s reached"
    assert len(got) == result["sent"] == 3
    assert result["buffer_dropped"] == result["captured"] - 3 > 0
    assert listener.counters.agents["tiny"].dropped == result["buffer_dropped"]
    assert got[0].flags & SYN  # the oldest packets are the ones kept


def test_live_source_recorded_to_pcap_replays_like_tcpdump(rig, tmp_path):
    source = in_netns(rig.sut_ns, lambda: LiveSource(rig.sut_if, [PORT], duration=30))
    dump = start_tcpdump(rig, tmp_path / "ref.pcap", f"tcp port {PORT}")
    try:
        assert fetch(rig, ["big.bin"]) == [PAGES["big.bin"]]  # queued in the capture socket meanwhile
        stop_tcpdump(dump)
        recording = record_to_pcap(source, tmp_path / "live.pcap", duration=1.0)
    finally:
        source.close()
    reference = capture_packets(tmp_path / "ref.pcap")
    recorded = capture_packets(tmp_path / "live.pcap")
    assert recording.packets == len(recorded) == len(reference)
    assert same_segments(recorded) == same_segments(reference)
    (session,) = sessions_by_client(recorded).values()
    assert session.server_stream.data().endswith(PAGES["big.bin"])


def test_loopback_frames_are_ethernet_framed_and_each_packet_is_seen_once(rig):
    capture = in_netns(rig.sut_ns, lambda: LiveCapture("lo", [OTHER_PORT]))

    def exchange() -> None:
        server = socket.create_server(("127.0.0.1", OTHER_PORT))
        with server, socket.create_connection(("127.0.0.1", OTHER_PORT), timeout=5) as client:
            peer, _ = server.accept()
            client.sendall(b"question")
            assert peer.recv(100) == b"question"
            peer.sendall(b"answer")
            assert client.recv(100) == b"answer"
            peer.close()

    try:
        assert capture.loopback
        in_netns(rig.sut_ns, exchange)
        got: list = []
        poll(lambda: sum(p.flags & FIN != 0 for p in got) == 2, lambda: got.extend(capture.read_packets()))
        got += capture.read_packets()
    finally:
        capture.close()
    payloads = [p.payload for p in got if p.payload]
    assert payloads == [b"question", b"answer"]
    assert len({(p.src, p.sport, p.seq, p.ack, p.flags) for p in got}) == len(got)  # no duplicate copies
    assert capture.counters.frames == len(got)
    assert sum(p.flags & SYN != 0 for p in got) == 2  # the SYN and the SYN-ACK: both directions
