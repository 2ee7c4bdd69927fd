"""Captures for reproducer tests: TCP conversations crafted with scapy (handshake, turns of
request and response, a close), interleaved by time and written as Ethernet pcap files; and a
loopback server that records what a reproducer's script sends."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from scapy.layers.inet import IP, TCP, fragment
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

MSS = 1400


class Conversation:
    """One TCP connection's packets with real sequence numbers, as ``(ts, scapy packet)``."""

    def __init__(self, client: tuple[str, int], server: tuple[str, int], t0: float, *, step: float = 0.001) -> None:
        self.client, self.server = client, server
        self.ts, self.step = t0, step
        self.c_seq, self.s_seq = 1000, 500_000
        self.packets: list[tuple[float, object]] = []

    def _send(self, from_client: bool, flags: str, payload: bytes = b"", *, fragmented: bool = False) -> None:
        self.ts += self.step
        (src, sport), (dst, dport) = (self.client, self.server) if from_client else (self.server, self.client)
        seq, ack = (self.c_seq, self.s_seq) if from_client else (self.s_seq, self.c_seq)
        packet = IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, seq=seq, ack=ack if "A" in flags else 0,
                                            flags=flags, window=65535)  # fmt: skip
        if payload:
            packet = packet / Raw(payload)
        pieces = fragment(packet, fragsize=64) if fragmented else [packet]
        for piece in pieces:
            self.packets.append((self.ts, Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / piece))
        advance = len(payload) + (1 if "S" in flags or "F" in flags else 0)
        if from_client:
            self.c_seq += advance
        else:
            self.s_seq += advance

    def handshake(self) -> Conversation:
        self._send(True, "S")
        self._send(False, "SA")
        self._send(True, "A")
        return self

    def data(self, from_client: bool, payload: bytes, *, fragmented: bool = False) -> Conversation:
        for at in range(0, len(payload), MSS):
            self._send(from_client, "PA", payload[at : at + MSS], fragmented=fragmented)
        self._send(not from_client, "A")
        return self

    def turn(self, request: bytes, response: bytes) -> Conversation:
        if request:
            self.data(True, request)
        if response:
            self.data(False, response)
        return self

    def close(self) -> Conversation:
        self._send(True, "FA")
        self._send(False, "FA")
        self._send(True, "A")
        return self


def write_capture(path: Path, *conversations: Conversation, extra: list[tuple[float, object]] = ()) -> Path:
    """The conversations' packets (and ``extra`` ones), interleaved by time, as an Ethernet pcap."""
    packets = sorted((p for c in conversations for p in c.packets), key=lambda tp: tp[0])
    packets = sorted([*packets, *extra], key=lambda tp: tp[0])
    out = []
    for ts, packet in packets:
        packet.time = ts
        out.append(packet)
    wrpcap(str(path), out)
    return path


def http_exchanges(path: str, count: int = 1) -> list[tuple[bytes, bytes]]:
    """``count`` GET requests of ``path`` and JSON answers."""
    turns = []
    for n in range(count):
        body = b'{"n": %d}' % n
        turns.append((f"GET {path} HTTP/1.1\r\nHost: prod\r\n\r\n".encode(),
                      b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body)))  # fmt: skip
    return turns


class RecordingServer:
    """A loopback TCP server: for each connection, records every byte received until the client
    closes its sending side, then answers ``reply`` and closes."""

    def __init__(self, reply: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok") -> None:
        self.reply = reply
        self.received: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self.address = f"127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                data = b""
                while True:
                    chunk = self._read(conn)
                    if not chunk:
                        break
                    data += chunk
                    if self._http_complete(data):
                        break
                self.received.append(data)
                conn.sendall(self.reply)

    @staticmethod
    def _read(conn: socket.socket) -> bytes:
        try:
            return conn.recv(65536)
        except OSError:
            return b""

    @staticmethod
    def _http_complete(data: bytes) -> bool:
        """An HTTP request is whole once its head and Content-Length bytes of body are in."""
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep or not data[:1].isalpha() or b" HTTP/1." not in head.split(b"\r\n", 1)[0]:
            return False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                return len(body) >= int(value.strip())
        return True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
