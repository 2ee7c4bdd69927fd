"""A real HTTP client for ``slow_service.py`` captures: ``python3 mixed_client.py HOST PORT SESSIONS [PARALLEL]``.

Plays SESSIONS connections, PARALLEL at a time (default 8), each a deterministic mix chosen by
its number: keep-alive with one to five requests (Content-Length bodies, chunked bodies with a
trailer, HEAD), a request answered with ``Connection: close``, or a one-shot the client closes.
Standard library only (it runs inside a bare network namespace); fails on any 5xx.
"""

from __future__ import annotations

import http.client
import sys
from concurrent.futures import ThreadPoolExecutor


def requests_of(session: int) -> list[tuple[str, str]]:
    kind = session % 6
    if kind == 0:
        return [("GET", f"/api/bye/{session}")]
    if kind == 1:
        return [("GET", f"/api/items/{session}")]
    if kind == 2:
        return [("GET", f"/api/stream/{2 + session % 5}"), ("GET", f"/api/items/{session + 1}")]
    if kind == 3:
        return [("HEAD", f"/api/items/{session}"), ("GET", f"/api/items/{session}"), ("GET", "/health")]
    if kind == 4:
        return [("GET", f"/api/items/{session + k}") for k in range(1 + session % 5)]
    return [("GET", "/health"), ("GET", f"/api/stream/{1 + session % 3}"), ("GET", "/nope")]


def play(host: str, port: int, session: int) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        for method, path in requests_of(session):
            conn.request(method, path)
            response = conn.getresponse()
            response.read()
            if response.status >= 500:
                raise SystemExit(f"session {session}: {method} {path} answered {response.status}")
    finally:
        conn.close()


def main() -> int:
    host, port, sessions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    parallel = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    with ThreadPoolExecutor(parallel) as pool:
        for future in [pool.submit(play, host, port, s) for s in range(sessions)]:
            future.result()
    return 0


if __name__ == "__main__":
    sys.exit(main())
