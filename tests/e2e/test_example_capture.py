"""The bundled example (examples/jsonservice): its committed capture, and its two releases for real.

- The capture holds exactly the sessions ``client.py`` scripts, each whole: handshake, every
  request and response, and a close.
- v1 and v2, run side by side in network namespaces and sent every captured request, differ
  exactly as designed: every v2 response carries ``X-Service-Version: 2``, and the only other
  difference is ``"plan": "free"`` instead of ``"premium"`` in ``GET /api/users/<id>``. v1 still
  answers every request as it did when the capture was made (``Date`` aside).
- The capture replayed into v1 through the copier and the NFQUEUE intercept completes every
  session, and v1 answers the replay as it answered the original clients.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import require_root, require_tools
from replay_support import netns_run

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.flows import CapturedSession, assemble_sessions
from pytest_tcpcopy.backends.netns import NetnsRig

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jsonservice"
CAPTURE = EXAMPLE / "traffic.pcap.gz"
APP = str(EXAMPLE / "app.py")
PORT = 8080
V2_PORT = 8081
VERSION_HEADER = ("X-Service-Version", "2")
USER_DETAIL = re.compile(r"GET /api/users/\d+ HTTP/1.1")

# Runs in the rig's client namespace (this process never changes namespace): reads
# {"port": N, "sessions": [[[request_line, headers, body_b64], ...], ...]} on stdin, sends each
# session's requests with http.client on one connection, exactly as captured (no headers of its
# own), and prints the responses as [[[status_line, headers, body_b64], ...], ...].
_SENDER = """
import base64, http.client, json, sys
job = json.load(sys.stdin)
out = []
for session in job["sessions"]:
    conn = http.client.HTTPConnection(sys.argv[1], job["port"], timeout=10)
    replies = []
    for request_line, headers, body in session:
        method, target, _ = request_line.split(" ")
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders(base64.b64decode(body) or None)
        r = conn.getresponse()
        status_line = f"HTTP/{r.version // 10}.{r.version % 10} {r.status} {r.reason}"
        replies.append([status_line, r.getheaders(), base64.b64encode(r.read()).decode()])
    conn.close()
    out.append(replies)
json.dump(out, sys.stdout)
"""


class HttpMessage(NamedTuple):
    start: str  # the request line or the status line
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def status(self) -> int:
        return int(self.start.split(" ")[1])

    def json(self) -> object:
        return json.loads(self.body)

    def without(self, *names: str) -> HttpMessage:
        """The message without the headers called ``names`` (case-insensitive)."""
        drop = {n.lower() for n in names}
        return self._replace(headers=tuple(h for h in self.headers if h[0].lower() not in drop))


def http_messages(stream: bytes) -> list[HttpMessage]:
    """The HTTP/1.1 messages of one direction of a connection (bodies framed by Content-Length)."""
    messages = []
    while stream:
        head, sep, rest = stream.partition(b"\r\n\r\n")
        assert sep, f"unterminated header block: {stream[:200]!r}"
        start, *lines = head.decode("latin-1").split("\r\n")
        headers = tuple((k, v.strip()) for k, _, v in (line.partition(":") for line in lines))
        length = int({k.lower(): v for k, v in headers}.get("content-length", "0"))
        assert len(rest) >= length, f"body cut short after {start!r}"
        messages.append(HttpMessage(start, headers, rest[:length]))
        stream = rest[length:]
    return messages


def _client_script():
    spec = importlib.util.spec_from_file_location("jsonservice_client", EXAMPLE / "client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sessions() -> list[CapturedSession]:
    with open_capture(CAPTURE) as reader:
        return sorted(assemble_sessions(reader, [PORT]), key=lambda s: s.index)


@pytest.fixture(scope="module")
def exchanges(sessions) -> list[list[tuple[HttpMessage, HttpMessage]]]:
    """Per captured session, its (request, response) pairs."""
    out = []
    for s in sessions:
        requests = http_messages(s.client_stream.data())
        responses = http_messages(s.server_stream.data())
        assert len(requests) == len(responses), f"session {s.client}: unanswered requests"
        out.append(list(zip(requests, responses)))
    return out


def test_capture_holds_every_scripted_session_whole(sessions, exchanges):
    script = _client_script().SESSIONS
    assert len(sessions) == len(script) == 30
    for s, pairs, (style, scripted) in zip(sessions, exchanges, script):
        assert s.handshake and s.closed and s.gaps == 0, s
        assert s.server.port == PORT
        sent = [(*request.start.split(" ")[:2], request.json() if request.body else None)
                for request, _ in pairs]  # fmt: skip
        assert sent == [tuple(r) for r in scripted], f"session {s.index} ({style})"
        assert all(response.status < 500 for _, response in pairs)
    assert sum(len(pairs) for pairs in exchanges) == sum(len(r) for _, r in script)


def _send_all(rig: NetnsRig, port: int, exchanges) -> list[HttpMessage]:
    """Every captured request sent to ``port`` in the rig, each session's on one connection; the
    responses in capture order."""
    sessions = [[[q.start, q.headers, base64.b64encode(q.body).decode()] for q, _ in pairs]
                for pairs in exchanges]  # fmt: skip
    done = subprocess.run(
        ["ip", "netns", "exec", rig.client_ns, sys.executable, "-c", _SENDER, rig.sut_addr],
        input=json.dumps({"port": port, "sessions": sessions}),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [
        HttpMessage(start, tuple(map(tuple, headers)), base64.b64decode(body))
        for replies in json.loads(done.stdout)
        for start, headers, body in replies
    ]


def test_v2_differs_from_v1_exactly_as_designed(exchanges):
    require_root()
    require_tools("ip")
    with NetnsRig("tcpcp-exsvc") as rig:
        for release, port in (("v1", PORT), ("v2", V2_PORT)):
            env = ["env", f"JSONSERVICE_RELEASE={release}", f"JSONSERVICE_PORT={port}"]
            rig.start_sut([*env, sys.executable, APP], port, http_path="/health")
        v1 = _send_all(rig, PORT, exchanges)
        v2 = _send_all(rig, V2_PORT, exchanges)
    requests = [request for pairs in exchanges for request, _ in pairs]
    captured = [response for pairs in exchanges for _, response in pairs]
    assert len(v1) == len(v2) == len(requests)
    assert [r.without("Date") for r in v1] == [r.without("Date") for r in captured]
    assert not any(name.lower() == "x-service-version" for r in v1 for name, _ in r.headers)

    regressed = []
    for request, one, two in zip(requests, v1, v2):
        assert VERSION_HEADER in two.headers, request.start
        two = two.without(VERSION_HEADER[0])
        if two.without("Date") == one.without("Date"):
            continue
        regressed.append(request.start)
        assert one.status == two.status == 200, request.start
        assert one.json()["plan"] == "premium", request.start
        assert two.json() == {**one.json(), "plan": "free"}, request.start
        assert two.without("Date", "Content-Length").headers == one.without("Date", "Content-Length").headers
    premium_lookups = [
        request.start for request, response in zip(requests, v1)
        if USER_DETAIL.fullmatch(request.start) and response.json().get("plan") == "premium"
    ]  # fmt: skip
    assert regressed == premium_lookups
    assert len(set(regressed)) == 3 and len(regressed) > 3


def test_replay_into_v1_completes_every_session_and_answers_as_captured(sessions):
    require_root()
    require_tools("ip", "iptables", "ethtool")
    v1 = ["env", "JSONSERVICE_RELEASE=v1", f"JSONSERVICE_PORT={PORT}", sys.executable, APP]
    result = netns_run(CAPTURE, PORT, v1)
    assert result["totals"]["sessions"] == len(sessions)
    assert result["totals"]["completed"] == len(sessions), result["totals"]
    captured = {str(s.client): s for s in sessions}
    assert len(captured) == len(sessions)
    for r in result["sessions"]:
        session = captured[r["captured_client"]]
        assert r["requests_sent"] == len(http_messages(session.client_stream.data()))
        replayed = http_messages(base64.b64decode(r["response"]))
        expected = http_messages(session.server_stream.data())
        assert [m.without("Date") for m in replayed] == [m.without("Date") for m in expected], r
