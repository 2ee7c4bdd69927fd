"""Normalised responses and their diffs: status, headers, JSON/text/binary bodies, ignore rules,
noise classification, redaction."""

from __future__ import annotations

import gzip
import json

import pytest

from pytest_tcpcopy.compare import (
    VOLATILE_HEADERS,
    ChangeKind,
    DiffConfig,
    Exchange,
    HttpRequest,
    HttpResponse,
    RawMessage,
    Redaction,
    classify,
    diff_exchange,
    normalize_response,
)
from pytest_tcpcopy.compare.normalize import same_normal_form
from pytest_tcpcopy.errors import UsageError

REQUEST = HttpRequest("GET", "/api/users/7?x=1", "HTTP/1.1", (("Host", "sut"),), b"")
JSON = (("Content-Type", "application/json"),)


def exchange(status=200, headers=JSON, body=b"", *, reason="OK", malformed=None, response=True):
    message = HttpResponse("HTTP/1.1", status, reason, tuple(headers), body) if response else None
    return Exchange(7, 0, REQUEST, message, "http", malformed)


def jbody(**fields) -> bytes:
    return json.dumps(fields).encode()


def rendered(base, cand, config=None):
    diff = diff_exchange(base, cand, config or DiffConfig())
    return None if diff is None else diff.render().splitlines()[1:]


def test_identical_responses_have_no_diff():
    assert diff_exchange(exchange(body=jbody(a=1)), exchange(body=jbody(a=1))) is None


def test_json_compared_structurally_not_by_formatting():
    base = exchange(body=b'{"a": 1, "b": [1, 2]}')
    cand = exchange(body=b'{\n  "b": [1, 2],\n  "a": 1.0\n}')
    assert diff_exchange(base, cand) is None
    assert rendered(base, cand, DiffConfig(strict_number_types=True)) == ["  body.a: 1 -> 1.0"]


def test_json_changes_render_with_paths():
    base = exchange(body=jbody(user={"email": "a@x", "roles": ["r1"]}, gone=1))
    cand = exchange(body=jbody(user={"email": "b@x", "roles": ["r1", "r2"]}, new=True))
    assert rendered(base, cand) == [
        "  body.gone: removed 1",
        "  body.new: added True",
        "  body.user.email: 'a@x' -> 'b@x'",
        "  body.user.roles[1]: added 'r2'",
    ]


def test_status_changes_but_reason_ignored_by_default():
    base, cand = exchange(body=b"x"), exchange(500, body=b"x", reason="Oops")
    assert rendered(base, cand) == ["  status: 200 -> 500"]
    assert rendered(exchange(reason="OK"), exchange(reason="Fine")) is None
    assert rendered(exchange(reason="OK"), exchange(reason="Fine"), DiffConfig(compare_reason=True)) == [
        "  reason: 'OK' -> 'Fine'"
    ]


def test_volatile_headers_ignored_others_compared():
    base = exchange(
        headers=JSON
        + (
            ("Date", "Mon"),
            ("ETag", '"1"'),
            ("X-Request-Id", "a"),
            ("Content-Length", "2"),
            ("Cache-Control", "no-store"),
        )
    )
    cand = exchange(
        headers=JSON
        + (
            ("date", "Tue"),
            ("ETag", '"2"'),
            ("X-Request-Id", "b"),
            ("Content-Length", "3"),
            ("Cache-Control", "max-age=60"),
        )
    )
    assert rendered(base, cand) == ["  headers.cache-control: 'no-store' -> 'max-age=60'"]
    assert "date" in VOLATILE_HEADERS


def test_added_header_is_harmless_by_default_removed_is_not():
    base = exchange(headers=JSON + (("X-Old", "1"),))
    cand = exchange(headers=JSON + (("X-New", "2"),))
    assert rendered(base, cand) == ["  headers.x-old: removed '1'"]
    assert rendered(base, cand, DiffConfig(ignore_added_headers=False)) == [
        "  headers.x-new: added '2'",
        "  headers.x-old: removed '1'",
    ]


def test_repeated_headers_keep_every_value():
    base = exchange(headers=(("Vary", "Accept"), ("Vary", "Origin")))
    cand = exchange(headers=(("Vary", "Accept"),))
    assert normalize_response(base.response, DiffConfig())["headers"] == {"vary": ["Accept", "Origin"]}
    assert rendered(base, cand) == ["  headers.vary: ['Accept', 'Origin'] -> 'Accept'"]


def test_set_cookie_values_not_compared_by_default():
    base = exchange(headers=(("Set-Cookie", "sid=abc; Path=/; Max-Age=10; HttpOnly"),))
    cand = exchange(headers=(("Set-Cookie", "sid=xyz; Path=/; Max-Age=99; HttpOnly"),))
    assert diff_exchange(base, cand) is None
    moved = exchange(headers=(("Set-Cookie", "sid=xyz; Path=/api; HttpOnly"),))
    [change] = diff_exchange(base, moved).changes
    assert change.where == "headers.set-cookie" and change.redacted


@pytest.mark.parametrize("path", ["body.meta.ts", "root['body']['meta']['ts']", "body.*.ts"])
def test_ignore_paths(path):
    base, cand = exchange(body=jbody(meta={"ts": 1}, v=1)), exchange(body=jbody(meta={"ts": 2}, v=1))
    assert rendered(base, cand) == ["  body.meta.ts: 1 -> 2"]
    assert diff_exchange(base, cand, DiffConfig(ignore_paths=[path])) is None


def test_ignore_path_wildcard_index_and_regex():
    base = exchange(body=jbody(items=[{"id": 1, "at": "a"}, {"id": 2, "at": "b"}]))
    cand = exchange(body=jbody(items=[{"id": 1, "at": "c"}, {"id": 3, "at": "d"}]))
    assert rendered(base, cand, DiffConfig(ignore_paths=["body.items[*].at"])) == ["  body.items[1].id: 2 -> 3"]
    assert rendered(base, cand, DiffConfig(ignore_regex_paths=[r"\['(at|id)'\]$"])) is None


def test_ignore_by_value_regex():
    uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    base = exchange(body=jbody(id="0b5c6a2e-1111-4a4a-8b8b-000000000001", n=1))
    cand = exchange(body=jbody(id="9f0e1d2c-2222-4b4b-9c9c-000000000002", n=1))
    assert diff_exchange(base, cand, DiffConfig(ignore_value_patterns=[uuid])) is None
    wrong = exchange(body=jbody(id="not-a-uuid", n=1))
    assert rendered(base, wrong, DiffConfig(ignore_value_patterns=[uuid])) is not None


def test_float_tolerance_and_ignore_order():
    base, cand = exchange(body=jbody(p=1.0, t=[1, 2])), exchange(body=jbody(p=1.0004, t=[2, 1]))
    assert len(diff_exchange(base, cand).changes) == 3
    assert diff_exchange(base, cand, DiffConfig(float_tolerance=1e-3, ignore_order=True)) is None


def test_json_sniffed_without_content_type_and_text_by_lines():
    assert normalize_response(exchange(headers=(), body=b'{"a": 1}').response, DiffConfig())["body"] == {"a": 1}
    base = exchange(headers=(("Content-Type", "text/html; charset=utf-8"),), body=b"<p>\nhello\n</p>\n")
    cand = exchange(headers=(("Content-Type", "text/html; charset=utf-8"),), body=b"<p>\nextra\nhello\n</p>\n")
    assert rendered(base, cand) == ["  body[1]: added 'extra'"]


def test_binary_by_size_and_digest_and_gzip_undone():
    base = exchange(headers=(("Content-Type", "image/png"),), body=b"\x89PNG\x00\x01")
    cand = exchange(headers=(("Content-Type", "image/png"),), body=b"\x89PNG\x00\x02")
    [change] = diff_exchange(base, cand).changes
    assert change.where == "body" and "6 bytes, sha256" in change.new
    zipped = exchange(headers=JSON + (("Content-Encoding", "gzip"),), body=gzip.compress(jbody(a=1), mtime=1))
    rezipped = exchange(headers=JSON + (("Content-Encoding", "gzip"),), body=gzip.compress(jbody(a=1), mtime=2))
    assert normalize_response(zipped.response, DiffConfig())["body"] == {"a": 1}
    assert diff_exchange(zipped, rezipped) is None
    broken = exchange(headers=JSON + (("Content-Encoding", "gzip"),), body=b"not gzip")
    assert "undecodable gzip" in normalize_response(broken.response, DiffConfig())["body"]


def test_exchange_level_changes():
    base = exchange(body=b"x")
    missing = exchange(response=False, malformed="no response: the server stream ended at byte 0")
    assert rendered(base, missing) == ["  response: '200 OK' -> 'no response: the server stream ended at byte 0'"]
    broken = Exchange(7, 0, REQUEST, RawMessage(b"HTTP/9"), "http", "malformed response at byte 0: x")
    assert rendered(base, broken) == ["  response: '200 OK' -> 'malformed response at byte 0: x'"]
    assert diff_exchange(missing, missing) is None
    assert diff_exchange(None, base).changes[0].kind is ChangeKind.ADDED
    assert diff_exchange(base, None).render().startswith("s0007-GET /api/users/7: 1 difference")


def test_raw_messages_compare_as_text_lines_or_digest():
    def raw(data: bytes) -> Exchange:
        return Exchange(1, 0, RawMessage(b"PING\r\n"), RawMessage(data), "raw")

    assert rendered(raw(b"+PONG\r\n"), raw(b"-ERR\r\n")) == ["  body[0]: '+PONG' -> '-ERR'"]
    assert rendered(raw(b"\x00\x01"), raw(b"\x00\x01")) is None


def test_json_form_is_json():
    diff = diff_exchange(exchange(body=jbody(a=[1])), exchange(500, body=jbody(a=[2])))
    doc = json.loads(json.dumps(diff.to_json()))
    assert doc == {
        "exchange": "s0007-GET /api/users/7",
        "changes": [
            {"path": "status", "kind": "changed", "old": 200, "new": 500},
            {"path": "body.a[0]", "kind": "changed", "old": 1, "new": 2},
        ],
    }


def test_bad_config_is_a_usage_error():
    with pytest.raises(UsageError):
        DiffConfig(ignore_regex_paths=["("])
    with pytest.raises(UsageError):
        DiffConfig(ignore_paths="body.a")
    with pytest.raises(UsageError):
        Redaction(patterns=["[x"])


# --------------------------------------------------------------------------------- noise


def test_noise_is_what_two_baselines_disagree_on():
    primary = exchange(body=jbody(id=7, ts=1, items=[{"at": 1}]))
    secondary = exchange(body=jbody(id=7, ts=2, items=[{"at": 2}]))
    candidate = exchange(body=jbody(id=8, ts=3, items=[{"at": 3}]))
    verdict = classify(primary, secondary, candidate)
    assert [c.where for c in verdict.real.changes] == ["body.id"]
    assert [c.where for c in verdict.noise.changes] == ["body.items[0].at", "body.ts"]
    assert classify(primary, primary, candidate).noise is None
    assert classify(primary, secondary, primary) == classify(primary, primary, primary)


def test_noise_covers_everything_below_a_noisy_path():
    primary = exchange(body=jbody(meta={"a": 1}))
    secondary = exchange(body=jbody(meta="n/a"))
    candidate = exchange(body=jbody(meta={"a": 2, "b": 1}))
    verdict = classify(primary, secondary, candidate)
    assert verdict.real is None and len(verdict.noise.changes) == 2


def test_a_flaky_missing_response_is_noise():
    primary = exchange(body=b"x")
    failed = exchange(response=False, malformed="no response")
    verdict = classify(primary, failed, failed)
    assert verdict.real is None and verdict.noise.changes[0].where == "response"
    assert verdict.to_json()["real"] is None


# ------------------------------------------------------------------------------ redaction


def test_secret_headers_print_redacted_but_compare_real_values():
    base = exchange(headers=(("Authorization", "Bearer old-token"), ("X-A", "1")))
    cand = exchange(headers=(("Authorization", "Bearer new-token"), ("X-A", "2")))
    diff = diff_exchange(base, cand)
    text = diff.render() + json.dumps(diff.to_json()) + repr(diff)
    assert "headers.authorization: value differs (redacted)" in text
    assert "old-token" not in text and "new-token" not in text
    assert diff_exchange(base, exchange(headers=(("Authorization", "Bearer old-token"), ("X-A", "1")))) is None


def test_secret_json_keys_and_body_patterns_are_redacted():
    config = DiffConfig(redaction=Redaction(patterns=[r'"pin":\s*"[^"]*"']))
    base = exchange(body=jbody(user={"password": "hunter2", "pin": "1234", "name": "a"}))
    cand = exchange(body=jbody(user={"password": "letmein", "pin": "9999", "name": "b"}))
    diff = diff_exchange(base, cand, config)
    text = diff.render() + json.dumps(diff.to_json()) + repr(diff)
    for secret in ("hunter2", "letmein", "1234", "9999"):
        assert secret not in text
    assert "body.user.password: value differs (redacted)" in text
    assert "body.user.pin: value differs (redacted)" in text
    assert "body.user.name: 'a' -> 'b'" in text
    removed = exchange(body=jbody(other=1))
    text = diff_exchange(base, removed, config).render()
    assert "hunter2" not in text and "[redacted]" in text


def test_text_body_patterns_are_scrubbed_inside_values():
    form = (("Content-Type", "application/x-www-form-urlencoded"),)
    base = exchange(headers=form, body=b"user=a&password=hunter2")
    cand = exchange(headers=form, body=b"user=b&password=hunter2")
    [change] = diff_exchange(base, cand).changes
    assert change.render() == "body[0]: 'user=a&password=[redacted]' -> 'user=b&password=[redacted]'"


def test_render_is_capped_but_json_is_complete():
    base = exchange(body=json.dumps(list(range(80))).encode())
    cand = exchange(body=json.dumps([-n for n in range(80)]).encode())
    diff = diff_exchange(base, cand)
    lines = diff.render(limit=10).splitlines()
    assert len(lines) == 12 and lines[-1] == "  ... and 69 more"
    assert len(diff.to_json()["changes"]) == 79


def test_the_compared_form_of_a_header_block_follows_the_config():
    a = HttpResponse("HTTP/1.1", 200, "OK", (("X-Trace", "1"),), b"x")
    b = HttpResponse("HTTP/1.1", 200, "OK", (("X-Trace", "2"),), b"x")
    assert not same_normal_form(a, b, DiffConfig())
    assert same_normal_form(a, b, DiffConfig(ignore_headers=frozenset({"x-trace"})))
    assert not same_normal_form(a, b, DiffConfig())
