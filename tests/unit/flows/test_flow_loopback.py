"""Real kernel TCP on loopback, captured by tcpdump: the streams are exactly the bytes exchanged."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conftest import require_root, require_tools

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.capture.packet import SYN
from pytest_tcpcopy.flows import CloseKind, assemble_sessions

BODY = bytes(range(256)) * 800  # 200 KiB: many segments even on loopback


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = BODY if self.path == "/big" else self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def exchange(port: int, requests: list[bytes]) -> tuple[bytes, bytes]:
    """Send the requests on one connection; the last asks to close. Returns (sent, received)."""
    sent, received = b"".join(requests), b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(sent)
        while chunk := sock.recv(65536):
            received += chunk
    return sent, received


def test_loopback_http_sessions_reassemble_to_what_was_sent_and_received(tmp_path):
    require_root()
    require_tools("tcpdump")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pcap = tmp_path / "lo.pcap"
    dump = subprocess.Popen(
        # Immediate mode and a 64 MB buffer: loopback frames are up to 64 KB, and the default
        # 2 MB ring drops them in bursts.
        ["tcpdump", "-i", "lo", "-n", "-U", "--immediate-mode", "-B", "65536"]
        + ["-s", "0", "-w", str(pcap), f"tcp port {port}"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "listening on" in dump.stderr.readline()
        close = b"Connection: close\r\n"
        expected = [
            exchange(port, [b"GET /big HTTP/1.1\r\nHost: t\r\n" + close + b"\r\n"]),
            exchange(
                port,
                [
                    b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n",
                    b"GET /two HTTP/1.1\r\nHost: t\r\n\r\n",
                    b"GET /big HTTP/1.1\r\nHost: t\r\n" + close + b"\r\n",
                ],
            ),
        ]
        time.sleep(0.5)  # let tcpdump drain the kernel buffer before it is told to stop
    finally:
        dump.send_signal(signal.SIGINT)
        try:
            dump.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dump.kill()
            dump.wait()
        server.shutdown()
        server.server_close()
    report = dump.stderr.read()
    # A drop would be the capture losing data, not the assembler: say so rather than fail later.
    assert "\n0 packets dropped by kernel" in report, report
    sessions = list(assemble_sessions(open_capture(pcap), server_ports=[port]))
    assert len(sessions) == 2
    for session, (sent, received) in zip(
        sorted(sessions, key=lambda s: s.index), expected
    ):
        assert session.server.port == port and session.handshake
        assert session.close is CloseKind.FIN
        assert session.client_stream.data() == sent
        assert session.server_stream.data() == received
        assert session.gaps == 0
        assert session.client_segments[0].flags & SYN
        assert all(p.dport == port for p in session.client_segments)
