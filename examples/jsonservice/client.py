"""The client traffic recorded in ``traffic.pcap.gz``: ``python3 client.py HOST PORT``.

``SESSIONS`` is the script, played in order, one TCP connection per session:

- ``keepalive``: several requests on one HTTP/1.1 connection, then the client closes;
- ``oneshot``: one request, then the client closes;
- ``close``: one request with ``Connection: close``, so the server closes first.

Standard library only (it runs inside a bare network namespace). It stops with an error when the
service answers 5xx, so a broken service never ends up in the capture.
"""

from __future__ import annotations

import http.client
import json
import sys

Request = tuple[str, str, dict | None]  # method, path, JSON body


def get(path: str) -> Request:
    return ("GET", path, None)


def order(user_id: int, *items: tuple[int, int]) -> Request:
    lines = [{"product_id": product, "quantity": quantity} for product, quantity in items]
    return ("POST", "/api/orders", {"user_id": user_id, "items": lines})


SESSIONS: list[tuple[str, list[Request]]] = [
    ("close", [get("/health")]),
    ("keepalive", [get("/api/users"), get("/api/users/1"), get("/api/users/2"), get("/api/users/3")]),
    ("oneshot", [get("/api/products?limit=3")]),
    ("oneshot", [get("/api/users/5")]),
    ("keepalive", [get("/api/products"), order(2, (101, 2), (103, 1)), get("/api/users/2")]),
    ("close", [get("/api/users/7")]),
    ("oneshot", [get("/api/users/4")]),
    ("keepalive", [get("/api/users/6"), get("/api/users/7"), get("/api/users/8")]),
    ("close", [get("/api/products?limit=12")]),
    ("oneshot", [order(5, (104, 1))]),
    ("keepalive", [get("/health"), get("/api/users/99"), get("/api/users/5")]),
    ("oneshot", [get("/api/products?limit=0")]),
    ("close", [get("/api/users")]),
    ("keepalive", [order(1, (102, 1), (105, 3), (110, 2)), get("/api/users/1")]),
    ("oneshot", [get("/api/users/2")]),
    ("keepalive", [get("/api/products?limit=5"), get("/api/products?limit=8"), get("/api/products?limit=1")]),
    ("close", [order(7, (107, 1), (108, 4))]),
    ("oneshot", [get("/api/orders")]),
    ("keepalive", [get("/api/users/3"), get("/api/users/5"), get("/api/users/6"), get("/api/users/7")]),
    ("oneshot", [order(3, (999, 1))]),
    ("close", [get("/api/users/8")]),
    ("keepalive", [get("/health"), get("/api/users"), get("/api/products?limit=2")]),
    ("oneshot", [get("/api/users/7")]),
    ("keepalive", [order(2, (109, 10)), order(2, (111, 1), (112, 2)), get("/api/users/2")]),
    ("close", [get("/api/users/5")]),
    ("oneshot", [get("/api/users/abc")]),
    ("keepalive", [get("/api/users/4"), get("/api/users/2"), get("/api/products?limit=4"), get("/health")]),
    ("oneshot", [order(8, (106, 2))]),
    ("close", [get("/api/products?limit=6")]),
    ("keepalive", [get("/api/users/1"), get("/api/users/5"), get("/api/users/7")]),
]  # fmt: skip

_HEADERS = {"User-Agent": "jsonservice-example-client/1", "Accept": "application/json"}


def play(host: str, port: int, style: str, requests: list[Request]) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        for method, path, document in requests:
            headers = dict(_HEADERS)
            if style == "close":
                headers["Connection"] = "close"
            body = None
            if document is not None:
                body = json.dumps(document).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status >= 500:
                raise SystemExit(f"{method} {path}: the service answered {response.status}")
    finally:
        conn.close()


def main() -> int:
    if len(sys.argv) != 3 or not sys.argv[2].isdigit():
        print("usage: client.py HOST PORT", file=sys.stderr)
        return 2
    host, port = sys.argv[1], int(sys.argv[2])
    for style, requests in SESSIONS:
        play(host, port, style, requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
