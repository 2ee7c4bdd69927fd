"""A real HTTP/1.1 JSON service whose answers can be slowed down, for false-alarm tests.

    python3 slow_service.py PORT

Every answer is a function of the request alone (no clock, no counters) apart from the ``Date``
header, so a slowed-down instance answers with the same bytes as a fast one, only later.
Environment (milliseconds, default 0):

- ``FIRST_BYTE_MS``: wait before the first byte of every response;
- ``STALL_MS``: wait between the response head and its body (head and body leave in separate
  segments: TCP_NODELAY, one send each);
- ``CHUNK_STALL_MS``: wait between the chunks of a chunked body.

Endpoints: ``GET /health``; ``GET /api/items/<id>`` (JSON, Content-Length, a few KB so the body
spans several segments); ``GET /api/stream/<n>`` (chunked, n chunks, a trailer); ``HEAD`` of
either; ``GET /api/bye/<id>`` (answers with ``Connection: close`` and closes); anything else 404.
Keep-alive otherwise. Standard library only.
"""

from __future__ import annotations

import email.utils
import json
import os
import socket
import socketserver
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _ms(name: str) -> float:
    return float(os.environ.get(name, "0")) / 1000.0


FIRST_BYTE, STALL, CHUNK_STALL = _ms("FIRST_BYTE_MS"), _ms("STALL_MS"), _ms("CHUNK_STALL_MS")


def item(item_id: int) -> bytes:
    """A deterministic JSON document of about 3 KB."""
    doc = {
        "id": item_id,
        "name": f"item-{item_id}",
        "tags": [f"tag-{(item_id * k) % 97}" for k in range(1, 40)],
        "history": [{"step": k, "value": (item_id * 7919 + k * 104729) % 100003} for k in range(60)],
    }
    return json.dumps(doc, indent=1).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "slow-service/1"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass

    def do_HEAD(self) -> None:
        self._answer(head_only=True)

    def do_GET(self) -> None:
        self._answer(head_only=False)

    def _answer(self, head_only: bool) -> None:
        parts = self.path.strip("/").split("/")
        if FIRST_BYTE:
            time.sleep(FIRST_BYTE)
        if parts == ["health"]:
            self._fixed(200, b'{"ok": true}\n', head_only)
        elif len(parts) == 3 and parts[:2] == ["api", "items"] and parts[2].isdigit():
            self._fixed(200, item(int(parts[2])), head_only)
        elif len(parts) == 3 and parts[:2] == ["api", "bye"] and parts[2].isdigit():
            self._fixed(200, item(int(parts[2])), head_only, close=True)
        elif len(parts) == 3 and parts[:2] == ["api", "stream"] and parts[2].isdigit():
            self._chunked(int(parts[2]), head_only)
        else:
            self._fixed(404, b'{"error": "not found"}\n', head_only)

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        lines = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}",
                 f"Date: {email.utils.formatdate(usegmt=True)}", "Server: slow-service/1", *(f"{k}: {v}" for k, v in headers)]  # fmt: skip
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _fixed(self, status: int, body: bytes, head_only: bool, close: bool = False) -> None:
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if close:
            headers.append(("Connection", "close"))
            self.close_connection = True
        self.wfile.write(self._head(status, headers))
        if head_only:
            return
        if STALL:
            time.sleep(STALL)
        self.wfile.write(body)

    def _chunked(self, n: int, head_only: bool) -> None:
        self.wfile.write(self._head(200, [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"),
                                          ("Trailer", "X-Checksum")]))  # fmt: skip
        if head_only:
            return
        if STALL:
            time.sleep(STALL)
        total = 0
        for k in range(n):
            if k and CHUNK_STALL:
                time.sleep(CHUNK_STALL)
            chunk = json.dumps({"chunk": k, "of": n, "data": "x" * (200 + 37 * k)}).encode() + b"\n"
            total += len(chunk)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\nX-Checksum: %d\r\n\r\n" % total)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def main() -> int:
    port = int(sys.argv[1])
    socketserver.TCPServer.allow_reuse_address = True
    with Server(("0.0.0.0", port), Handler) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
