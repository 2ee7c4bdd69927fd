"""The mirror agent and MirrorListener over real loopback TCP, in one process.

The agent's packets come from a datagram socketpair instead of AF_PACKET (the e2e tests capture
for real); everything from the agent's buffer to the listener's Packets is the real code.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest
from scapy.layers.inet import IP, TCP

from pytest_tcpcopy.endpoint import Endpoint
from pytest_tcpcopy.live.agent import MirrorAgent
from pytest_tcpcopy.live.buffer import Backoff
from pytest_tcpcopy.live.capture import LiveCounters
from pytest_tcpcopy.live.listener import MirrorListener
from pytest_tcpcopy.live.protocol import PROTOCOL_VERSION, Error, FrameReader, Hello, Packets, encode

LOOPBACK = bytes([127, 0, 0, 1])
PORT = 8080


class DatagramSource:
    """IP packets written to one end of a datagram socketpair, read by the agent at the other."""

    iface = "fake0"
    ports = (PORT,)
    snaplen = 65535

    def __init__(self) -> None:
        self.feed_end, self._read_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._read_end.setblocking(False)
        self.counters = LiveCounters()

    def fileno(self) -> int:
        return self._read_end.fileno()

    def read_ip(self, max_n: int) -> list[tuple[int, bytes]]:
        out = []
        for _ in range(max_n):
            try:
                out.append((time.time_ns(), self._read_end.recv(65536)))
            except BlockingIOError:
                break
        return out

    def poll_stats(self) -> LiveCounters:
        return self.counters

    def send(self, n: int, first_seq: int = 0) -> list[int]:
        seqs = list(range(first_seq, first_seq + n))
        for seq in seqs:
            self.feed_end.send(
                bytes(IP(src="10.1.0.1", dst="10.1.0.2") / TCP(sport=40000, dport=PORT, seq=seq, flags="A") / b"data")
            )
        return seqs

    def close(self) -> None:
        self.feed_end.close()
        self._read_end.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(condition: Callable[[], bool], listener: MirrorListener | None, got: list, timeout: float = 10.0) -> None:
    """Poll the listener (when given) into ``got`` until ``condition()``; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.01) + 1):
        if listener is not None:
            got += listener.read_packets()
        if condition():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    pytest.fail("condition not met in time")


class RunningAgent:
    def __init__(self, source: DatagramSource, port: int, **kwargs) -> None:
        kwargs.setdefault("duration", 30.0)
        kwargs.setdefault("stats_every", 0.1)
        self.agent = MirrorAgent(source, Endpoint(LOOPBACK, port), name="unit-agent",
                                 backoff=Backoff(0.02, 0.1), **kwargs)  # fmt: skip
        self.result = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.result = self.agent.run()

    def stop(self, listener: MirrorListener | None = None, got: list | None = None):
        """Stop the agent while polling the listener, which must answer its BYE by closing."""
        self.agent.stop()
        until(lambda: not self.thread.is_alive(), listener, [] if got is None else got)
        return self.result


@pytest.fixture
def source():
    src = DatagramSource()
    yield src
    src.close()


def seqs_of(packets) -> list[int]:
    return [p.seq for p in packets]


def test_streams_every_packet_then_says_bye(source):
    listener = MirrorListener(Endpoint(LOOPBACK, 0))
    try:
        running = RunningAgent(source, listener.address.port)
        got: list = []
        sent = source.send(300)
        until(lambda: len(got) == 300, listener, got)
        stats = running.stop(listener, got)
        assert listener.connected == 0
        assert seqs_of(got) == sent
        agent = listener.counters.agents["unit-agent"]
        assert agent.bye == "stopped" and agent.connections == 1
        assert agent.reported == stats
        assert (stats.captured, stats.sent, stats.buffer_dropped, stats.connections) == (300, 300, 0, 1)
        assert listener.counters.received == 300 and listener.counters.agent_dropped == 0
        report = listener.counters.as_dict()
        assert report["agent_dropped"] == 0 and report["agents"]["unit-agent"]["reported"]["sent"] == 300
        assert got[0].dport == PORT and got[0].payload == b"data"
    finally:
        listener.close()


def test_reconnects_when_the_runner_starts_late_and_when_it_comes_back(source):
    port = free_port()
    running = RunningAgent(source, port)
    got: list = []
    early = source.send(50)
    time.sleep(0.3)  # a few refused attempts
    assert running.agent.connections == 0
    listener = MirrorListener(Endpoint(LOOPBACK, port))
    try:
        until(lambda: len(got) == 50, listener, got)
        assert seqs_of(got) == early
    finally:
        listener.close()
    gone = source.send(20, first_seq=1000)  # the runner is away: buffered
    time.sleep(0.2)
    listener = MirrorListener(Endpoint(LOOPBACK, port))
    try:
        until(lambda: running.agent.connections == 2, listener, got)
        until(lambda: len(got) >= 70, listener, got)
        stats = running.stop(listener, got)
        assert listener.connected == 0
    finally:
        listener.close()
    assert stats.connections == 2
    # Packets in a frame cut by the runner's going away are lost and counted, never invented.
    assert set(seqs_of(got)) <= set(early + gone)
    assert stats.captured == stats.sent + stats.buffer_dropped + running.agent.unsent
    assert len(got) == stats.sent


def test_a_tiny_buffer_keeps_the_oldest_and_counts_the_rest(source):
    port = free_port()
    running = RunningAgent(source, port, buffer=5)
    sent = source.send(20)
    until(lambda: running.agent.captured == 20, None, [])
    listener = MirrorListener(Endpoint(LOOPBACK, port))
    got: list = []
    try:
        until(lambda: len(got) == 5, listener, got)
        stats = running.stop(listener, got)
        assert listener.connected == 0
    finally:
        listener.close()
    assert seqs_of(got) == sent[:5]
    assert (stats.captured, stats.sent, stats.buffer_dropped) == (20, 5, 15)
    assert listener.counters.agents["unit-agent"].dropped == 15
    assert listener.counters.agent_dropped == 15


def test_stops_by_itself_at_its_duration_counting_what_it_never_sent(source):
    running = RunningAgent(source, free_port(), duration=0.5)
    source.send(7)
    running.thread.join(timeout=10)
    assert not running.thread.is_alive()
    assert running.agent.stop_reason == "duration of 0.5 s reached"
    assert (running.result.captured, running.result.sent, running.agent.unsent) == (7, 0, 7)


def raw_conversation(port: int, data: bytes) -> list:
    """Send ``data`` to the listener as a bare client; return the frames it answers before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        reader = FrameReader()
        events: list = []
        for _ in range(100):
            chunk = sock.recv(65536)
            if not chunk:
                return events
            events += reader.feed(chunk)
    pytest.fail("the listener kept the connection open")


def test_malformed_frames_close_only_that_connection(source, caplog):
    listener = MirrorListener(Endpoint(LOOPBACK, 0))
    port = listener.address.port
    try:
        running = RunningAgent(source, port)
        got: list = []
        first = source.send(10)
        until(lambda: len(got) == 10, listener, got)
        answers: list = []
        talker = threading.Thread(target=lambda: answers.append(raw_conversation(port, b"GET / HTTP/1.1\r\n\r\n")))
        talker.start()
        until(lambda: listener.counters.refused == 1, listener, got)
        talker.join(timeout=10)
        second = source.send(10, first_seq=100)
        until(lambda: len(got) == 20, listener, got)
        running.stop(listener, got)
        assert listener.connected == 0
    finally:
        listener.close()
    assert seqs_of(got) == first + second
    assert len(answers) == 1 and len(answers[0]) == 1 and isinstance(answers[0][0], Error)
    assert "unknown frame type 71" in answers[0][0].reason
    assert "broke the mirror protocol: unknown frame type 71; closing that connection" in caplog.text
    assert listener.counters.agents["unit-agent"].connections == 1


def test_a_newer_agent_is_told_why_it_is_refused():
    listener = MirrorListener(Endpoint(LOOPBACK, 0))
    port = listener.address.port
    answers: list = []
    hello = bytearray(encode(Hello("future", "eth0", (80,), 100)))
    hello[6 + 4] = PROTOCOL_VERSION + 1
    talker = threading.Thread(target=lambda: answers.append(raw_conversation(port, bytes(hello))))
    try:
        talker.start()
        until(lambda: listener.counters.refused == 1, listener, [])
        talker.join(timeout=10)
    finally:
        listener.close()
    assert "version mismatch" in answers[0][0].reason
    assert listener.counters.agents == {}


def test_packets_of_other_ports_and_non_tcp_are_counted_not_returned():
    listener = MirrorListener(Endpoint(LOOPBACK, 0))
    try:
        records = [
            (1, bytes(IP(src="10.1.0.1", dst="10.1.0.2") / TCP(sport=1, dport=PORT))),
            (2, bytes(IP(src="10.1.0.1", dst="10.1.0.2") / TCP(sport=1, dport=9))),
            (3, b"\x45" + b"\x00" * 10),
        ]
        data = encode(Hello("one", "eth0", (PORT,), 100)) + encode(Packets(tuple(records)))
        with socket.create_connection(("127.0.0.1", listener.address.port), timeout=5) as sock:
            sock.sendall(data)
            got: list = []
            until(
                lambda: listener.counters.agents.get("one") and listener.counters.agents["one"].records == 3,
                listener,
                got,
            )
        assert [p.sport for p in got] == [1]
        assert listener.counters.agents["one"].undecodable == 2
    finally:
        listener.close()


def test_listening_on_a_busy_address_says_so():
    from pytest_tcpcopy.errors import EnvironmentProblem

    listener = MirrorListener(Endpoint(LOOPBACK, 0))
    try:
        with pytest.raises(EnvironmentProblem, match="cannot listen for mirror agents"):
            MirrorListener(listener.address)
    finally:
        listener.close()


def test_mirror_source_is_finished_after_its_duration_and_records_to_pcap(source, tmp_path):
    from pytest_tcpcopy.capture import open_capture
    from pytest_tcpcopy.live import MirrorSource, record_to_pcap

    mirror = MirrorSource(Endpoint(LOOPBACK, 0), duration=1.0)
    try:
        running = RunningAgent(source, mirror.listener.address.port)
        sent = source.send(40)
        recording = record_to_pcap(mirror, tmp_path / "mirror.pcap", duration=30)
        assert mirror.finished
        running.stop(mirror.listener, [])
    finally:
        mirror.close()
    assert recording.packets == 40 and recording.seconds < 30
    with open_capture(tmp_path / "mirror.pcap") as reader:
        assert [p.seq for p in reader] == sent
