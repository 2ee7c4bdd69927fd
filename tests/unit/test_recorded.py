"""Recorded baselines' files: responses stored decoded and readable, read back to compare alike,
byte-stable re-records, and no planted secret in any file (no replay: hand-built results)."""

from __future__ import annotations

import base64
import gzip
import json
import sys
import zlib
from pathlib import Path

import pytest

from pytest_tcpcopy.baselines import strategy_for
from pytest_tcpcopy.compare import (
    ComparisonStatus,
    DiffConfig,
    HttpResponse,
    RawMessage,
    compare_sessions,
    exchanges_from_capture,
)
from pytest_tcpcopy.compare.normalize import normalize_response
from pytest_tcpcopy.model import CaptureIndex
from pytest_tcpcopy.recorded import RecordedBaseline
from pytest_tcpcopy.recorded_format import ResponseFormat
from pytest_tcpcopy.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent / "compare"))
from comparekit import C, S, captured, replay_result  # noqa: E402
from secretcorpus import VISIBLE, assert_no_secrets, planted_streams  # noqa: E402

CONFIG = DiffConfig()
FORMAT = ResponseFormat(CONFIG)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2


def http(body: bytes, *headers: tuple[str, str], status: int = 200, reason: str = "OK") -> HttpResponse:
    return HttpResponse("HTTP/1.1", status, reason, (*headers, ("Content-Length", str(len(body)))), body)


def stored(message: object) -> tuple[dict, object]:
    """The document of ``message``, and the message read back from it as from a file."""
    doc = FORMAT.document(message)
    return doc, FORMAT.message(json.loads(json.dumps(doc, indent=2, ensure_ascii=False)))


DOCUMENT = {"user": {"name": "Ada", "plan": "premium"}, "items": [3, 1.5, None], "active": True, "id": 7}
BODIES = {
    "json": (http(json.dumps(DOCUMENT).encode(), ("Content-Type", "application/json")), "json"),
    "gzip json": (http(gzip.compress(json.dumps(DOCUMENT).encode()), ("Content-Type", "application/json"),
                       ("Content-Encoding", "gzip")), "json"),  # fmt: skip
    "deflate text": (http(zlib.compress(b"line one\r\nline two\n"), ("Content-Type", "text/plain"),
                          ("Content-Encoding", "deflate")), "text"),  # fmt: skip
    "latin-1 text": (http("caf\xe9 cr\xe8me\n".encode("latin-1"), ("Content-Type", "text/plain; charset=latin-1")),
                     "text"),  # fmt: skip
    "json array": (http(b"[1, 2]", ("Content-Type", "application/json")), "json"),
    "json string": (http(b'"just text"', ("Content-Type", "application/json")), "json"),
    "binary": (http(PNG, ("Content-Type", "image/png")), "base64"),
    "undecodable gzip": (http(b"not gzip at all", ("Content-Type", "text/plain"), ("Content-Encoding", "gzip")),
                         "base64"),  # fmt: skip
    "brotli": (http(b"\x8b\x02\x80hello\x03", ("Content-Type", "text/plain"), ("Content-Encoding", "br")), "base64"),
    "raw text": (RawMessage(b"+OK ready\r\nVERSION 2\r\n"), "text"),
    "raw binary": (RawMessage(b"\x00\x01\x02\xff" * 10), "base64"),
}


@pytest.mark.parametrize("name", BODIES)
def test_bodies_are_stored_decoded_and_read_back_to_compare_alike(name):
    message, kind = BODIES[name]
    doc, back = stored(message)
    assert kind in doc["body"]
    assert normalize_response(back, CONFIG) == normalize_response(message, CONFIG)
    assert compare_sessions_same(message, back)


def compare_sessions_same(baseline: object, candidate: object) -> bool:
    from pytest_tcpcopy.compare import Exchange, HttpRequest

    request = HttpRequest("GET", "/x", "HTTP/1.1", (), b"")
    [verdict] = compare_sessions([Exchange(0, 0, request, baseline, "http")], [Exchange(0, 0, request, candidate, "http")])
    return verdict.status is ComparisonStatus.SAME


def test_what_a_reviewer_reads():
    doc, _ = stored(BODIES["gzip json"][0])
    assert doc == {
        "status": "HTTP/1.1 200 OK",
        "headers": ["Content-Type: application/json", "Content-Encoding: gzip", "Content-Length: …"],
        "body": {"json": {"active": True, "id": 7, "items": [3, 1.5, None], "user": {"name": "Ada", "plan": "premium"}}},
    }  # fmt: skip
    assert list(doc["body"]["json"]) == ["active", "id", "items", "user"]  # keys sorted, whatever the SUT's order
    text, _ = stored(BODIES["deflate text"][0])
    assert text["body"] == {"text": ["line one\r\n", "line two\n"]}
    binary, _ = stored(BODIES["binary"][0])
    assert binary["body"]["media_type"] == "image/png" and binary["body"]["bytes"] == len(PNG)
    assert base64.b64decode("".join(binary["body"]["base64"])) == PNG
    assert all(len(line) <= 76 for line in binary["body"]["base64"])
    kept, _ = stored(BODIES["undecodable gzip"][0])
    assert kept["body"]["encoded"] is True  # a coding that cannot be undone: the bytes as sent
    assert "body" not in stored(http(b"", status=204, reason="No Content"))[0]


def test_a_re_record_of_the_same_answers_writes_the_same_document():
    one = http(b'{"a": 1, "b": [1, 2]}', ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"), ("Server", "svc/1.0.1"),
               ("Content-Type", "application/json"), ("X-Request-Id", "4f1c"))  # fmt: skip
    two = http(b'{"b": [1, 2],   "a": 1}', ("Date", "Tue, 02 Jan 2024 10:00:00 GMT"), ("Server", "svc/1.0.2"),
               ("Content-Type", "application/json"), ("X-Request-Id", "9e2a"))  # fmt: skip
    assert FORMAT.document(one) == FORMAT.document(two)
    assert "Date: …" in FORMAT.document(one)["headers"]


def test_a_set_cookie_keeps_its_name_and_attributes():
    message = http(b"", ("Set-Cookie", "sid=s3cr3t-value; Path=/; HttpOnly"))
    doc, back = stored(message)
    assert "Set-Cookie: sid=[redacted]; Path=/; HttpOnly" in doc["headers"]
    assert normalize_response(back, CONFIG)["headers"]["set-cookie"] == "sid=…; Path=/; HttpOnly"


def test_user_secret_names_and_patterns_reach_the_files():
    settings = Settings().with_overrides({"redact": ["tenant", "re:acct-[0-9]+"]}, "test")
    fmt = ResponseFormat(settings.diff_config())
    doc = fmt.document(http(b'{"tenant": "t-1", "note": "acct-12345 ok"}', ("Content-Type", "application/json")))
    assert doc["body"]["json"] == {"note": "[redacted]", "tenant": "[redacted]"}


# -- whole sessions, with the planted secrets ---------------------------------------------------------


def planted_sessions(side: str) -> tuple[dict, dict]:
    """The planted captured sessions by index, and their ``side``'s answers as replay results."""
    sessions, results = {}, {}
    for number, (client, server) in planted_streams("baseline").items():
        session = captured([(C, client), (S, server)])
        session.index = number
        sessions[number] = session
        results[number] = replay_result(session, [planted_streams(side)[number][1]])
    return sessions, results


def test_no_planted_secret_reaches_a_recorded_baseline(tmp_path):
    sessions, results = planted_sessions("baseline")
    recorded = RecordedBaseline(tmp_path, Path("planted.pcap"), CONFIG)
    assert [recorded.write(sessions[n], results[n]) for n in sorted(sessions)] == [True, True]
    files = "".join(path.read_text() for path in sorted(recorded.folder.iterdir()))
    assert_no_secrets(files, "recorded baseline files")
    assert all(value in files for value in ("premium", "PLAN-A"))  # the responses were written, secrets and all
    assert "[redacted]" in files
    assert [recorded.write(sessions[n], results[n]) for n in sorted(sessions)] == [False, False]  # unchanged


def test_a_recorded_baseline_compares_what_it_kept_and_never_the_secrets(tmp_path):
    """The candidate differs from the recording at every secret and at the plan: only the plan
    differs once both are compared as a recording keeps them, and no rendering shows a secret."""
    sessions, baseline = planted_sessions("baseline")
    capture = Path("planted.pcap")
    recorded = RecordedBaseline(tmp_path, capture, CONFIG)
    for number, session in sessions.items():
        recorded.write(session, baseline[number])
    _, candidate = planted_sessions("candidate")
    strategy = strategy_for(Settings().with_overrides({"baseline": f"dir:{tmp_path}", "port": 80}, "test"))
    index = CaptureIndex(capture, len(sessions), frozenset(sessions), 0, {})
    comparisons = []
    for number, session in sessions.items():
        production = exchanges_from_capture(session)
        theirs = strategy.exchanges(session, production, [], index)
        comparisons += compare_sessions(theirs.primary, strategy.candidate(session, candidate[number]), CONFIG)
    rendered = "\n".join(c.render() for c in comparisons) + json.dumps([c.to_json() for c in comparisons])
    assert_no_secrets(rendered, "comparisons against a recorded baseline")
    assert [c.status for c in comparisons] == [ComparisonStatus.DIFFERENT] * 5
    assert "body.plan: 'premium' -> 'free'" in rendered and "PLAN-B" in rendered
    assert "value differs (redacted)" not in rendered  # secrets are not compared at all
    assert all(value in rendered for value in VISIBLE)
