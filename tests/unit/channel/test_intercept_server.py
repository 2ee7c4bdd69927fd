"""The intercept server and InterceptClient over real loopback TCP, in one process.

Segments are fed through a socketpair instead of NFQUEUE (that half is covered by the e2e tests);
everything between the queue and the copier is the real code.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from scapy.layers.inet import IP, TCP

from pytest_tcpcopy.channel import Capability, InterceptClient, Register, encode
from pytest_tcpcopy.channel.protocol import PROTOCOL_VERSION, FrameReader, Hello, Role
from pytest_tcpcopy.endpoint import Endpoint
from pytest_tcpcopy.errors import EnvironmentProblem
from pytest_tcpcopy.intercept.server import InterceptServer

TARGET = Endpoint.parse("10.0.0.2:8080")


class SocketpairSource:
    """Length-prefixed segments written to one end of a socketpair reach ``handle_segment``."""

    def __init__(self, deliver) -> None:
        self.feed_end, self._read_end = socket.socketpair()
        self._read_end.setblocking(False)
        self._deliver = deliver
        self._buf = b""

    def fileno(self) -> int:
        return self._read_end.fileno()

    def read(self, budget: int) -> int:
        self._buf += self._read_end.recv(1 << 20)
        count = 0
        while len(self._buf) >= 2 and len(self._buf) >= 2 + struct.unpack_from("!H", self._buf)[0]:
            n = struct.unpack_from("!H", self._buf)[0]
            self._deliver(self._buf[2 : 2 + n])
            self._buf = self._buf[2 + n :]
            count += 1
        return count

    def send(self, segment: bytes) -> None:
        self.feed_end.sendall(struct.pack("!H", len(segment)) + segment)


@pytest.fixture
def running() -> Iterator[tuple[InterceptServer, SocketpairSource]]:
    server = InterceptServer(Endpoint(bytes([127, 0, 0, 1]), 0), capture_payload=False, delay_limit=30.0)
    source = SocketpairSource(server.handle_segment)
    thread = threading.Thread(target=server.serve, args=(source,), daemon=True)
    thread.start()
    try:
        yield server, source
    finally:
        server.stop()
        thread.join(5)
        server.close()
        assert not thread.is_alive()


def reply(client: Endpoint, flags: str = "SA", seq: int = 777, payload: bytes = b"") -> bytes:
    host = str(client).rpartition(":")[0]
    return bytes(IP(src="10.0.0.2", dst=host) / TCP(sport=8080, dport=client.port, flags=flags, seq=seq) / payload)


def wait_registered(server: InterceptServer, count: int) -> None:
    """Until the server has taken in ``count`` registrations (they race the fed segments)."""
    deadline = time.monotonic() + 5
    while len(server.routes.owners) < count:
        assert time.monotonic() < deadline, f"{len(server.routes.owners)} of {count} registrations arrived"
        time.sleep(0.005)


def wait_records(client: InterceptClient, count: int) -> list[bytes]:
    records: list[bytes] = []
    while len(records) < count:
        ready, _, _ = select.select(client.filenos(), [], [], 5.0)
        assert ready, f"got {len(records)} of {count} records"
        records += client.read_records()
    return records


def test_garbage_from_one_copier_closes_only_that_copier(running) -> None:
    server, source = running
    good_client = Endpoint.parse("198.18.0.7:40001")
    with InterceptClient([str(server.address)], name="good") as good:
        good.register(good_client, TARGET)
        good.flush()
        wait_registered(server, 1)
        with socket.create_connection(("127.0.0.1", server.address.port), timeout=5) as bad:
            bad.sendall(encode(Hello(Role.COPIER, "bad")) + b"\xee\x00\x00\x00garbage")
            reader, answer = FrameReader(), []
            while (data := bad.recv(4096)):
                answer += reader.feed(data)
        assert [type(e).__name__ for e in answer] == ["Hello", "Error"]
        assert "unknown frame type 238" in answer[1].reason
        source.send(reply(good_client, payload=b"dropped-in-headers-mode"))
        (record,) = wait_records(good, 1)
        assert record == reply(good_client, payload=b"dropped-in-headers-mode")[:40]
        assert struct.unpack_from("!H", record, 2)[0] == 40 + len(b"dropped-in-headers-mode")
    assert server.counters.refused == 1 and server.counters.forwarded == 1


def test_each_copier_gets_only_its_own_segments_and_parked_syn_acks(running) -> None:
    server, source = running
    a_client, b_client = Endpoint.parse("198.18.0.1:1000"), Endpoint.parse("198.18.0.2:1000")
    early = Endpoint.parse("198.18.0.3:1000")
    with InterceptClient([str(server.address)], name="a") as a, InterceptClient([str(server.address)], name="b") as b:
        source.send(reply(early, seq=5))  # the SYN-ACK beats its REGISTER
        source.send(reply(early, flags="A", seq=6))  # not parkable: counted and dropped
        for i in range(1000):
            a.register(Endpoint(a_client.addr, 1000 + i), TARGET)
        a.flush()
        b.register(b_client, TARGET)
        b.flush()
        wait_registered(server, 1001)
        for i in range(1000):
            source.send(reply(Endpoint(a_client.addr, 1000 + i), seq=i))
        source.send(reply(b_client, seq=99))
        got_b = wait_records(b, 1)
        got_a = wait_records(a, 1000)
        assert [TCP(r[20:]).seq for r in got_a] == list(range(1000))
        assert [TCP(r[20:]).seq for r in got_b] == [99]
        b.register(early, TARGET)
        b.flush()
        assert [TCP(r[20:]).seq for r in wait_records(b, 1)] == [5]
    assert server.counters.unowned == 1 and server.counters.parked == 1


def test_client_reports_unreachable_intercept_and_missing_capability(running) -> None:
    server, _ = running
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with pytest.raises(EnvironmentProblem, match=f"cannot reach intercept at 127.0.0.1:{free}"):
        InterceptClient([f"127.0.0.1:{free}"])
    with pytest.raises(EnvironmentProblem, match="does not offer RESPONSE_PAYLOAD; start it with --capture-responses"):
        InterceptClient([str(server.address)], capabilities=Capability.RESPONSE_PAYLOAD)


def test_version_mismatch_is_refused_with_an_error_frame(running) -> None:
    server, _ = running
    with socket.create_connection(("127.0.0.1", server.address.port), timeout=5) as old:
        old.sendall(encode(Hello(Role.COPIER, "old", version=PROTOCOL_VERSION + 1)))
        reader, answer = FrameReader(), []
        while (data := old.recv(4096)):
            answer += reader.feed(data)
    assert "version mismatch" in answer[-1].reason
    assert isinstance(answer[0], Hello) and not any(isinstance(e, Register) for e in answer)


def test_a_taken_listen_address_is_an_environment_problem(running) -> None:
    server, _ = running
    with pytest.raises(EnvironmentProblem, match=f"cannot listen for copiers on {server.address}: Address already in use"):
        InterceptServer(server.address)


def test_client_notices_a_silent_or_departed_intercept() -> None:
    with socket.create_server(("127.0.0.1", 0)) as fake:
        accepted: list[socket.socket] = []

        def answer_hello_then_stay_mute() -> None:
            conn, _ = fake.accept()
            conn.sendall(encode(Hello(Role.INTERCEPT, "mute")))
            accepted.append(conn)

        helper = threading.Thread(target=answer_hello_then_stay_mute)
        helper.start()
        with InterceptClient([f"127.0.0.1:{fake.getsockname()[1]}"], silence_limit=0.2) as client:
            helper.join(5)
            time.sleep(0.3)
            with pytest.raises(EnvironmentProblem, match=r"intercept at 127.0.0.1:\d+ has been silent"):
                client.heartbeat()
            accepted[0].recv(4096)  # the copier's HELLO: read, so closing sends FIN, not RST
            accepted[0].close()
            select.select(client.filenos(), [], [], 5.0)
            with pytest.raises(EnvironmentProblem, match=r"intercept at 127.0.0.1:\d+ closed the channel"):
                client.read_records()
