"""A real TCP server for end-to-end tests that records, per connection, every byte it received.

Modes (argv: MODE PORT RECORD_FILE [BIND]):
- ``http``: HTTP/1.1 with keep-alive. ``GET /bytes/N`` answers N bytes; a POST/PUT body is read
  by Content-Length and answered with its length; ``/close`` answers then closes; ``/reset`` resets
  the connection without answering; anything else answers a short body naming the path.
  Environment: ``RESET_ON=TEXT`` / ``CLOSE_ON=TEXT`` reset, or answer then close, any request
  whose path contains TEXT (a SUT that misbehaves mid-session).
- ``banner``: server-first: sends a greeting line, then answers every line with ``250 <line>``.

One JSON line per connection is appended to RECORD_FILE when the connection ends:
``{"peer": "ip:port", "received": "<base64>", "sent": N}``.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import sys
import threading

_lock = threading.Lock()
_RESET_ON = os.environ.get("RESET_ON")
_CLOSE_ON = os.environ.get("CLOSE_ON")


def _record(path: str, peer: tuple, received: bytes, sent: int) -> None:
    line = json.dumps({"peer": f"{peer[0]}:{peer[1]}", "received": base64.b64encode(received).decode(), "sent": sent})
    with _lock, open(path, "a") as f:
        f.write(line + "\n")


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.received = bytearray()
        self.sent = 0

    def fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        self.received += data
        return True

    def read_until(self, marker: bytes) -> bytes | None:
        while marker not in self.buf:
            if not self.fill():
                return None
        head, _, self.buf = self.buf.partition(marker)
        return head

    def read_exact(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self.fill():
                return None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent += len(data)


def _http(conn: _Conn) -> str | None:
    while True:
        head = conn.read_until(b"\r\n\r\n")
        if head is None:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        body = b""
        if "content-length" in headers:
            body = conn.read_exact(int(headers["content-length"])) or b""
        if path == "/reset" or (_RESET_ON and _RESET_ON in path):
            return "reset"
        if path.startswith("/bytes/"):
            n = int(path.split("/")[2].split("?")[0])
            payload = bytes((i * 7 + 3) % 251 for i in range(min(n, 251))) * (n // 251 + 1)
            payload = payload[:n]
        elif method in ("POST", "PUT"):
            payload = f"received {len(body)} bytes\n".encode()
        else:
            payload = f"you asked for {path}\n".encode()
        close = path == "/close" or (_CLOSE_ON and _CLOSE_ON in path) or headers.get("connection", "").lower() == "close"
        conn.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            + f"Content-Length: {len(payload)}\r\n".encode()
            + (b"Connection: close\r\n" if close else b"")
            + b"\r\n"
            + (payload if method != "HEAD" else b"")
        )
        if close:
            return


def _banner(conn: _Conn) -> None:
    conn.send(b"220 recording-server ready\r\n")
    while True:
        line = conn.read_until(b"\r\n")
        if line is None:
            return
        conn.send(b"250 " + line + b"\r\n")
        if line.upper() == b"QUIT":
            return


def _serve(sock: socket.socket, peer: tuple, handler, record: str) -> None:
    conn = _Conn(sock)
    ending = None
    try:
        ending = handler(conn)
        if ending == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            # Close our side, then keep reading what the peer still sends, so the record holds
            # every byte it sent on this connection.
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5.0)
            while conn.fill():
                pass
    except OSError:
        pass
    finally:
        _record(record, peer, bytes(conn.received), conn.sent)
        sock.close()


def main() -> None:
    mode, port, record = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    bind = sys.argv[4] if len(sys.argv) > 4 else "0.0.0.0"
    handler = {"http": _http, "banner": _banner}[mode]
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((bind, port))
    listener.listen(4096)
    while True:
        sock, peer = listener.accept()
        threading.Thread(target=_serve, args=(sock, peer, handler, record), daemon=True).start()


if __name__ == "__main__":
    main()
