"""A small HTTP JSON service in two releases, v1 and v2, for the pytest-tcpcopy example.

One code base; the environment picks the release and the port:

    JSONSERVICE_RELEASE=v1|v2   (default v1)
    JSONSERVICE_PORT=N          (default 8080; the service listens on 0.0.0.0)

Endpoints: ``GET /health``, ``GET /api/users``, ``GET /api/users/<id>``,
``GET /api/products?limit=N``, ``POST /api/orders``. Every body is JSON and a function of the
request alone (no clock, no randomness, no counters), so two runs of one release answer a request
with the same bytes apart from the ``Date`` header. HTTP/1.1 with keep-alive; every response has a
Content-Length.

v2 differs from v1 in exactly two ways:
- harmless: every response carries the new header ``X-Service-Version: 2``;
- the regression: ``GET /api/users/<id>`` reports ``"plan": "free"`` for premium users.

Standard library only, so it runs on any Python >= 3.10 image as ``python3 /app/app.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socketserver
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

RELEASES = ("v1", "v2")

USERS = (
    {"id": 1, "name": "Ada Lovelace", "email": "ada@example.test", "plan": "free", "created": "2023-01-14"},
    {"id": 2, "name": "Grace Hopper", "email": "grace@example.test", "plan": "premium", "created": "2023-02-03"},
    {"id": 3, "name": "Alan Turing", "email": "alan@example.test", "plan": "team", "created": "2023-03-21"},
    {"id": 4, "name": "Edsger Dijkstra", "email": "edsger@example.test", "plan": "free", "created": "2023-05-09"},
    {"id": 5, "name": "Barbara Liskov", "email": "barbara@example.test", "plan": "premium", "created": "2023-06-30"},
    {"id": 6, "name": "Donald Knuth", "email": "donald@example.test", "plan": "team", "created": "2023-08-17"},
    {"id": 7, "name": "Margaret Hamilton", "email": "margaret@example.test", "plan": "premium", "created": "2023-10-02"},
    {"id": 8, "name": "Ken Thompson", "email": "ken@example.test", "plan": "free", "created": "2024-01-11"},
)  # fmt: skip
USERS_BY_ID = {user["id"]: user for user in USERS}

PRODUCTS = (
    {"id": 101, "name": "Notebook", "price_cents": 450},
    {"id": 102, "name": "Fountain pen", "price_cents": 2400},
    {"id": 103, "name": "Ink bottle", "price_cents": 799},
    {"id": 104, "name": "Desk lamp", "price_cents": 3499},
    {"id": 105, "name": "Paper clips", "price_cents": 199},
    {"id": 106, "name": "Stapler", "price_cents": 1250},
    {"id": 107, "name": "Whiteboard", "price_cents": 5900},
    {"id": 108, "name": "Markers", "price_cents": 675},
    {"id": 109, "name": "Sticky notes", "price_cents": 325},
    {"id": 110, "name": "Ruler", "price_cents": 150},
    {"id": 111, "name": "Scissors", "price_cents": 890},
    {"id": 112, "name": "Tape", "price_cents": 275},
)
PRODUCTS_BY_ID = {product["id"]: product for product in PRODUCTS}
DEFAULT_LIMIT = 5
TAX_PERCENT = 8
MAX_BODY = 64 * 1024


class BadRequest(Exception):
    """The client sent something the service cannot use; the message goes into the 400 body."""


def user_detail(user_id: int, release: str) -> dict | None:
    user = USERS_BY_ID.get(user_id)
    if user is None:
        return None
    detail = dict(user)
    if release == "v2" and detail["plan"] == "premium":
        detail["plan"] = "free"  # the v2 regression the example's replay must catch
    return detail


def product_page(query: str) -> dict:
    values = parse_qs(query).get("limit", [str(DEFAULT_LIMIT)])
    limit = values[-1]
    if not limit.isdigit() or not 1 <= int(limit) <= len(PRODUCTS):
        raise BadRequest(f"limit must be an integer from 1 to {len(PRODUCTS)}, got {limit!r}")
    page = list(PRODUCTS[: int(limit)])
    return {"products": page, "count": len(page), "total": len(PRODUCTS)}


def price_order(order: object) -> dict:
    """The priced order for a request body ``{"user_id": N, "items": [{"product_id", "quantity"}]}``."""
    if not isinstance(order, dict) or not isinstance(order.get("items"), list) or not order["items"]:
        raise BadRequest('expected {"user_id": N, "items": [{"product_id": N, "quantity": N}, ...]}')
    user_id = _integer(order.get("user_id"))
    if user_id not in USERS_BY_ID:
        raise BadRequest(f"unknown user_id {order.get('user_id')!r}")
    lines = []
    for item in order["items"]:
        fields = item if isinstance(item, dict) else {}
        product = PRODUCTS_BY_ID.get(_integer(fields.get("product_id")))
        quantity = _integer(fields.get("quantity"))
        if product is None:
            raise BadRequest(f"unknown product in item {item!r}")
        if quantity is None or not 1 <= quantity <= 100:
            raise BadRequest(f"quantity must be an integer from 1 to 100 in item {item!r}")
        line = {"product_id": product["id"], "name": product["name"], "quantity": quantity,
                "unit_price_cents": product["price_cents"], "line_cents": product["price_cents"] * quantity}  # fmt: skip
        lines.append(line)
    subtotal = sum(line["line_cents"] for line in lines)
    tax = (subtotal * TAX_PERCENT + 50) // 100
    canonical = json.dumps({"user_id": user_id, "items": lines}, sort_keys=True).encode()
    return {
        "order_id": "ord-" + hashlib.sha256(canonical).hexdigest()[:12],
        "user_id": user_id,
        "items": lines,
        "subtotal_cents": subtotal,
        "tax_cents": tax,
        "total_cents": subtotal + tax,
    }


def _integer(value: object) -> int | None:
    """``value`` if it is a JSON integer (not a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class JsonServiceHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds an idle keep-alive connection is kept
    release = "v1"

    def version_string(self) -> str:
        return "jsonservice"

    def address_string(self) -> str:
        return self.client_address[0]

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.client_address[0]}:{self.client_address[1]} {format % args}\n")

    def end_headers(self) -> None:
        if self.release == "v2":
            self.send_header("X-Service-Version", "2")
        super().end_headers()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if url.path == "/health":
            self._reply(HTTPStatus.OK, {"status": "ok"})
        elif url.path == "/api/users":
            summaries = [{"id": u["id"], "name": u["name"]} for u in USERS]
            self._reply(HTTPStatus.OK, {"users": summaries, "count": len(summaries)})
        elif len(parts) == 3 and parts[:2] == ["api", "users"]:
            numeric = parts[2].isdecimal() and len(parts[2]) < 10
            detail = user_detail(int(parts[2]), self.release) if numeric else None
            if detail is None:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no user {parts[2]!r}"})
            else:
                self._reply(HTTPStatus.OK, detail)
        elif url.path == "/api/products":
            try:
                page = product_page(url.query)
            except BadRequest as exc:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                return
            self._reply(HTTPStatus.OK, page)
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such resource: {url.path}"})

    def do_POST(self) -> None:
        try:
            body = self._read_body()
        except BadRequest as exc:
            self.close_connection = True  # where this request ends is unknown
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        if urlsplit(self.path).path != "/api/orders":
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such resource: {self.path}"})
            return
        try:
            priced = price_order(json.loads(body))
        except (BadRequest, ValueError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        self._reply(HTTPStatus.CREATED, priced)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_BODY:
            raise BadRequest(f"Content-Length must be a number up to {MAX_BODY}, got {length!r}")
        return self.rfile.read(int(length))

    def _reply(self, status: HTTPStatus, document: dict) -> None:
        body = json.dumps(document, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class JsonServiceServer(ThreadingHTTPServer):
    request_queue_size = 1024

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves its own name with socket.getfqdn (a reverse DNS query
        # that stalls where no resolver answers); the name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = host, port


def main() -> int:
    release = os.environ.get("JSONSERVICE_RELEASE", "v1")
    port = os.environ.get("JSONSERVICE_PORT", "8080")
    if release not in RELEASES:
        print(f"JSONSERVICE_RELEASE must be one of {', '.join(RELEASES)}, got {release!r}", file=sys.stderr)
        return 2
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        print(f"JSONSERVICE_PORT must be a TCP port number, got {port!r}", file=sys.stderr)
        return 2
    handler = type(f"JsonService{release.upper()}Handler", (JsonServiceHandler,), {"release": release})
    with JsonServiceServer(("0.0.0.0", int(port)), handler) as server:
        print(f"jsonservice {release} listening on 0.0.0.0:{port}", file=sys.stderr, flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
