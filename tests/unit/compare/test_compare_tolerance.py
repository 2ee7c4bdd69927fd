"""Tolerant codec detection, raw text normalised like HTTP, the identical-response fast path,
readable windows around long differences, and ignore paths (dotted everywhere, unused reported)."""

from __future__ import annotations

import json

import pytest

from pytest_tcpcopy.compare import (
    ComparisonStatus,
    Conversation,
    DiffConfig,
    Exchange,
    HttpCodec,
    HttpRequest,
    HttpResponse,
    IgnoreUsage,
    RawMessage,
    compare_sessions,
    detect_codec,
    diff_exchange,
    normalize_response,
)
from pytest_tcpcopy.compare import diff as diff_module
from pytest_tcpcopy.compare import normalize as normalize_module
from pytest_tcpcopy.compare.config import Wildcard, dotted, parse_path, path_regex
from pytest_tcpcopy.compare.window import window
from pytest_tcpcopy.errors import UsageError

# -- codec detection as tolerant as Wireshark ----------------------------------------------------


@pytest.mark.parametrize(
    ("client", "codec"),
    [
        (b"GET /x HTTP/1.0.8\r\nHost: a\r\n\r\n", "http"),
        (b"GET /x HTTP/1.1\r\n\r\n", "http"),
        (b"GET /x HTTP/2\r\n\r\n", "http"),
        (b"GET /x HTTP/10.01\r\n\r\n", "http"),
        (b"M-SEARCH * HTTP/1.1\r\n\r\n", "http"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "raw"),  # the HTTP/2 preface is not HTTP/1.x
        (b"GET /x HTTP/\r\n\r\n", "raw"),
        (b"GET /x HTTP/1.x\r\n\r\n", "raw"),
        (b"GET /x http/1.1\r\n\r\n", "raw"),
    ],
)
def test_detection_takes_any_digits_as_the_version(client, codec):
    assert detect_codec(client).name == codec


def test_an_odd_version_is_parsed_as_http_so_volatile_headers_are_not_compared():
    client = b"GET /x HTTP/1.0.8\r\nHost: a\r\n\r\n"

    def served(date: str) -> list[Exchange]:
        server = f"HTTP/1.0.8 200 OK\r\nDate: {date}\r\nContent-Length: 2\r\n\r\nok".encode()
        return HttpCodec().split(Conversation(0, client, server))

    [base] = served("Mon, 01 Jan 2024 00:00:00 GMT")
    [cand] = served("Tue, 02 Jan 2024 10:00:00 GMT")
    assert base.malformed is None and base.request.version == "HTTP/1.0.8" and base.response.version == "HTTP/1.0.8"
    assert diff_exchange(base, cand) is None


# -- raw text protocols: header-like lines normalised as HTTP headers ---------------------------


def raw(data: bytes) -> Exchange:
    return Exchange(0, 0, RawMessage(b"HELLO\r\n"), RawMessage(data), "raw")


def test_raw_text_masks_volatile_header_lines_and_shapes_cookies():
    base = raw(b"OK\r\nDate: Mon, 01 Jan 2024\r\nX-Request-Id: 1\r\nSet-Cookie: sid=1; Path=/\r\nETag: a\r\nX: 1\r\n")
    cand = raw(b"OK\r\ndate:  Tue, 02 Jan 2024\r\nX-Request-Id: 2\r\nSet-Cookie: sid=2; Path=/\r\nETag: b\r\nX: 1\r\n")
    assert diff_exchange(base, cand) is None
    assert normalize_response(base.response, DiffConfig())["body"] == [
        "OK", "date: …", "x-request-id: …", "set-cookie: sid=…; Path=/", "etag: …", "X: 1",
    ]  # fmt: skip
    changed = raw(b"OK\r\nDate: Mon, 01 Jan 2024\r\nX-Request-Id: 1\r\nSet-Cookie: sid=1; Path=/x\r\nETag: a\r\n"
                  b"X: 2\r\n")
    assert [c.render() for c in diff_exchange(base, changed).changes] == [
        "body[3]: value differs (redacted)",  # a Set-Cookie line is secret, its change shown as such
        "body[5]: 'X: 1' -> 'X: 2'",
    ]


def test_raw_masking_follows_the_config():
    config = DiffConfig(ignore_headers=frozenset({"x"}), compare_cookie_values=True)
    tree = normalize_response(RawMessage(b"Date: now\r\nX: 1\r\nSet-Cookie: sid=1\r\n"), config)
    assert tree["body"] == ["Date: now", "x: …", "Set-Cookie: sid=1"]
    assert normalize_response(RawMessage(b"\x00\x01Date: x"), DiffConfig())["body"].startswith("<")  # binary


# -- the fast path -------------------------------------------------------------------------------


def http(body: bytes, date: str = "Mon, 01 Jan 2024 00:00:00 GMT", **kw) -> Exchange:
    headers = (("Content-Type", "application/json"), ("Date", date), *kw.get("headers", ()))
    return Exchange(0, 0, HttpRequest("GET", "/a", "HTTP/1.1", (), b""),
                    HttpResponse("HTTP/1.1", kw.get("status", 200), "OK", headers, body), "http")  # fmt: skip


def test_identical_normalised_responses_skip_parsing_and_the_structural_diff(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the fast path should have settled this exchange")

    monkeypatch.setattr("deepdiff.DeepDiff", forbidden)
    monkeypatch.setattr(diff_module, "normalize_response", forbidden)
    monkeypatch.setattr(normalize_module, "normalize_body", forbidden)
    body = json.dumps({"items": list(range(1000))}).encode()
    base, cand = http(body), http(body, date="Tue, 02 Jan 2024 10:00:00 GMT")
    [comparison] = compare_sessions([base], [cand])
    assert comparison.status is ComparisonStatus.SAME
    assert diff_exchange(raw(b"+OK\r\n"), raw(b"+OK\r\n")) is None


@pytest.mark.parametrize(
    "other",
    [
        http(b'{"a": 2}'),
        http(b'{"a": 1}', status=201),
        http(b'{"a": 1}', headers=(("X-Api", "2"),)),
        http(b'{\n "a": 1\n}'),  # equal once parsed: not identical bytes, yet the same
    ],
)
def test_anything_not_identical_takes_the_structural_path(monkeypatch, other):
    calls = []
    real = diff_module.normalize_response
    monkeypatch.setattr(diff_module, "normalize_response", lambda m, c: calls.append(m) or real(m, c))
    base = http(b'{"a": 1}', headers=(("X-Api", "1"),))
    diff_exchange(base, other)
    assert len(calls) == 2


def test_the_fast_path_respects_what_is_compared():
    base = http(b"{}", headers=(("X-Api", "1"),))
    assert diff_exchange(base, http(b"{}", headers=(("X-Api", "2"),))) is not None
    config = DiffConfig(ignore_headers=frozenset({"x-api", "date"}))
    assert diff_exchange(base, http(b"{}", headers=(("X-Api", "2"),)), config) is None
    reason = Exchange(0, 0, base.request, HttpResponse("HTTP/1.1", 200, "Fine", base.response.headers, b"{}"), "http")
    assert diff_exchange(base, reason) is None
    assert diff_exchange(base, reason, DiffConfig(compare_reason=True)) is not None


# -- readable failures: a window around the first difference -------------------------------------


def test_a_difference_past_character_200_is_shown_with_offsets():
    head, tail = "<p>" + "lorem ipsum " * 30, " dolor sit amet" * 20
    base = http(json.dumps({"html": head + "premium" + tail}).encode())
    cand = http(json.dumps({"html": head + "free" + tail}).encode())
    diff = diff_exchange(base, cand)
    lines = diff.render().splitlines()
    at = len(head)
    assert lines[0] == "s0000-GET /a: 1 difference(s)"
    assert lines[1] == f"  body.html: differs from character {at} (baseline {len(head) + 307} characters, candidate " \
                       f"{len(head) + 304})"  # fmt: skip
    assert lines[2].startswith(f"    baseline  [{at - 40}:{at + 47}] ") and "premium" in lines[2]
    assert lines[3].startswith(f"    candidate [{at - 40}:{at + 44}] ") and "free" in lines[3]
    assert "premium" not in lines[3] and "free" not in lines[2]


def test_short_values_stay_on_one_line_and_long_added_values_say_their_size():
    base, cand = http(b'{"a": "x"}'), http(json.dumps({"a": "y", "b": "z" * 500}).encode())
    rendered = [c.render() for c in diff_exchange(base, cand).changes]
    assert rendered[0] == "body.a: 'x' -> 'y'"
    assert rendered[1].startswith("body.b: added 'zzz") and rendered[1].endswith("… (502 characters)")


def test_long_non_text_values_are_windowed_on_their_text():
    base = http(json.dumps({"list": list(range(100))}).encode())
    cand = http(json.dumps({"list": list(range(99)) + ["x"]}).encode())
    [change] = diff_exchange(base, cand, DiffConfig()).changes
    assert change.render() == "body.list[99]: 99 -> 'x'"
    old, new = list(range(100)), list(range(99)) + [-1]
    text = diff_module.Change(("body",), diff_module.ChangeKind.CHANGED, old, new).render()
    assert "characters of text" in text and "98, 99]" in text and "98, -1]" in text


def test_window_bounds():
    w = window("a" * 1000, "a" * 1000 + "b")
    assert (w.at, w.old_start, w.old_end, w.new_end, w.new) == (1000, 960, 1000, 1001, "a" * 40 + "b")
    w = window("x" + "a" * 1000, "y" + "b" * 1000, width=100)
    assert (w.at, w.old_start, w.old_end, len(w.new)) == (0, 0, 100, 100)


# -- ignore paths: dotted everywhere, deepdiff's form accepted, unused ones reported -------------


def test_dotted_and_deepdiff_forms_parse_alike():
    assert parse_path("body.items[*].id") == ("body", "items", Wildcard.INDEX, "id")
    assert parse_path("root['body']['items'][3]['id']") == ("body", "items", 3, "id")
    assert parse_path("headers.*") == ("headers", Wildcard.KEY)
    assert dotted(parse_path("root['body']['a b'][0]")) == "body['a b'][0]"
    assert dotted(parse_path("body.items[*].id")) == "body.items[*].id"
    assert path_regex("root['body']['ts']") == path_regex("body.ts")
    assert parse_path("rootcause.x") == ("rootcause", "x")
    with pytest.raises(UsageError, match="cannot read ignore path 'body..x' at character 4"):
        DiffConfig(ignore_paths=["body..x"])


def test_float_tolerance_ignore_order_and_value_patterns_are_config_fields():
    base = http(json.dumps({"t": 1.0, "tags": ["a", "b"], "id": "req-1"}).encode())
    cand = http(json.dumps({"t": 1.004, "tags": ["b", "a"], "id": "req-2"}).encode())
    assert diff_exchange(base, cand) is not None
    config = DiffConfig(float_tolerance=0.01, ignore_order=True, ignore_value_patterns=[r"req-\d+"])
    assert diff_exchange(base, cand, config) is None


def test_ignore_paths_that_matched_nothing_are_reported():
    config = DiffConfig(
        ignore_paths=["body.ts", "body.items[*].id", "headers.date", "body.timestmap", "root['body']['nested']['x']"],
        ignore_regex_paths=[r"\['trace'\]", r"\['nothing_here'\]"],
    )
    usage = IgnoreUsage(config)
    base = http(json.dumps({"ts": 1, "items": [{"id": 1}], "nested": {"x": 1}, "trace": "a"}).encode())
    cand = http(json.dumps({"ts": 2, "items": [{"id": 2}], "nested": {"x": 2}, "trace": "b"}).encode())
    [comparison] = compare_sessions([base], [cand], config, usage=usage)
    assert comparison.status is ComparisonStatus.SAME
    assert usage.unused() == ("body.timestmap", r"\['nothing_here'\]")


def test_identical_responses_are_sampled_for_ignore_usage_while_a_path_is_unmatched():
    config = DiffConfig(ignore_paths=["body.ts", "body.missing"])
    usage = IgnoreUsage(config, sample=2)
    same = http(b'{"ts": 1}')
    for _ in range(5):
        diff_exchange(same, same, config, usage)
    assert usage.unused() == ("body.missing",)
    assert not usage.take_sample()  # the sample is spent
    assert IgnoreUsage(DiffConfig()).unused() == () and not IgnoreUsage(DiffConfig()).hungry
