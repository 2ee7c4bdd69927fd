"""Real clients for end-to-end captures (argv: MODE HOST PORT [ARGS...]); run under tcpdump.

- ``oneshot N``: N connections, one GET each with ``Connection: close``.
- ``keepalive C R``: C connections, R GETs each on one keep-alive connection.
- ``upload SIZE``: one POST of SIZE bytes.  ``download SIZE``: one GET of SIZE bytes.
- ``banner N``: N connections to a server-first line protocol, three commands each then QUIT.
- ``redis_benchmark N C``: redis-benchmark, N SET requests over C connections, no pipelining.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys


def oneshot(host: str, port: int, n: int) -> None:
    for i in range(n):
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", f"/one?s={i}", headers={"Connection": "close"})
        conn.getresponse().read()
        conn.close()


def keepalive(host: str, port: int, conns: int, requests: int) -> None:
    for c in range(conns):
        conn = http.client.HTTPConnection(host, port, timeout=10)
        for r in range(requests):
            conn.request("GET", f"/ka?s={c}&r={r}")
            conn.getresponse().read()
        conn.close()


def upload(host: str, port: int, size: int) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    body = bytes((i * 13 + 5) % 256 for i in range(256)) * (size // 256 + 1)
    conn.request("POST", "/upload", body=body[:size])
    conn.getresponse().read()
    conn.close()


def download(host: str, port: int, size: int) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", f"/bytes/{size}")
    data = conn.getresponse().read()
    assert len(data) == size, len(data)
    conn.close()


def banner(host: str, port: int, n: int) -> None:
    for i in range(n):
        with socket.create_connection((host, port), timeout=10) as sock:
            f = sock.makefile("rwb")
            f.readline()
            for cmd in (f"HELO client{i}", "MAIL FROM:<a@example.test>", "NOOP", "QUIT"):
                f.write(cmd.encode() + b"\r\n")
                f.flush()
                f.readline()


def redis_benchmark(host: str, port: int, n: int, conns: int) -> None:
    subprocess.run(["redis-benchmark", "-h", host, "-p", str(port), "-n", str(n), "-c", str(conns), "-t", "set", "-q"],
                   check=True, stdout=subprocess.DEVNULL, timeout=60)  # fmt: skip


def main() -> None:
    mode, host, port, *rest = sys.argv[1:]
    args = [int(a) for a in rest]
    modes = {"oneshot": oneshot, "keepalive": keepalive, "upload": upload, "download": download, "banner": banner,
             "redis_benchmark": redis_benchmark}
    modes[mode](
        host, int(port), *args
    )


if __name__ == "__main__":
    main()
