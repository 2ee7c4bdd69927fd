"""The report model: totals, which exchanges appear, both sides, bodies, bounds and redaction."""

from __future__ import annotations

import gzip
import hashlib
import json

from reportkit import exchange, make_run, regression_run, request, response, user

from pytest_tcpcopy.compare import DiffConfig, RawMessage, Redaction
from pytest_tcpcopy.compare.exchange import Exchange
from pytest_tcpcopy.report import build_report, model, render_html, summary_lines
from pytest_tcpcopy.report.messages import MAX_BODY_CHARS, MAX_PARSE_BYTES, body_model

NO_SECRETS = Redaction()


def strict_json(report: dict) -> str:
    return json.dumps(report, allow_nan=False)


def test_totals_count_verdicts_apart_with_causes_noise_and_aborted_sessions():
    report = build_report([regression_run()])
    assert report["format"] == "pytest-tcpcopy-report" and report["version"] == 2
    totals = report["runs"][0]["totals"]
    assert totals == {
        "sessions": 3, "exchanges": 3, "same": 1, "different": 1, "not_comparable": 1,
        "causes": {"SUT too slow": 1},
        "noise": 0, "aborted_sessions": 1, "aborted_reasons": {"timeout: no response within 5 s": 1},
    }  # fmt: skip
    assert report["totals"] == totals
    assert report["runs"][0]["aborted"] == [
        {"session": 2, "copy": 0, "client": "10.0.0.3:40002", "outcome": "timeout",
         "reason": "no response within 5 s", "requests_sent": 1}
    ]  # fmt: skip


def test_totals_of_several_runs_add_up_and_merge_reasons():
    first, second = regression_run(), regression_run()
    report = build_report([first, second])
    assert [r["totals"]["different"] for r in report["runs"]] == [1, 1]
    assert report["totals"]["exchanges"] == 6
    assert report["totals"]["aborted_reasons"] == {"timeout: no response within 5 s": 2}
    assert report["totals"]["causes"] == {"SUT too slow": 2}


def test_only_notable_exchanges_appear_failures_first():
    same = exchange(0, 0, request("/health"), response(b'{"ok": true}'))
    noisy_base = exchange(1, 0, request("/api/clock"), response(b'{"t": 1}'))
    noisy_second = exchange(1, 0, request("/api/clock"), response(b'{"t": 2}'))
    noisy_cand = exchange(1, 0, request("/api/clock"), response(b'{"t": 3}'))
    changed = (
        [exchange(2, 0, request(), response(user("premium")))],
        [exchange(2, 0, request(), response(user("free")))],
    )
    run = make_run({0: ([same], [same]), 1: ([noisy_base], [noisy_cand], [noisy_second]), 2: changed})
    exchanges = build_report([run])["runs"][0]["exchanges"]
    assert [(x["id"], x["status"]) for x in exchanges] == [
        ("s0002-GET /api/users/2", "different"),
        ("s0001-GET /api/clock", "same"),
    ]
    noisy = exchanges[1]
    assert noisy["failed"] is False and noisy["changes"] == []
    assert noisy["noise"] == [{"path": "body.t", "kind": "changed", "old": 1, "new": 3}]


def test_a_differing_exchange_shows_request_both_responses_and_changes():
    x = build_report([regression_run()])["runs"][0]["exchanges"][0]
    assert (x["id"], x["session"], x["number"], x["status"], x["failed"]) == (
        "s0001-GET /api/users/2",
        1,
        0,
        "different",
        True,
    )
    assert x["request"]["start_line"] == "GET /api/users/2 HTTP/1.1"
    assert x["request"]["headers"] == [["Host", "sut"]]
    assert x["request"]["body"]["kind"] == "empty"
    assert x["baseline"]["start_line"] == x["candidate"]["start_line"] == "HTTP/1.1 200 OK"
    assert ["X-Service-Version", "2"] in x["candidate"]["headers"]
    assert x["baseline"]["body"]["kind"] == "json"
    assert x["baseline"]["body"]["text"] == json.dumps(json.loads(user("premium")), indent=2)
    assert '"plan": "free"' in x["candidate"]["body"]["text"]
    assert x["changes"] == [{"path": "body.plan", "kind": "changed", "old": "premium", "new": "free"}]
    assert x["replay"] is None  # its session completed


def test_an_exchange_cut_by_the_replay_is_not_comparable_with_its_cause():
    x = build_report([regression_run()])["runs"][0]["exchanges"][1]
    assert x["status"] == "not_comparable" and x["failed"] is False and x["candidate"] is None
    assert (x["cause"], x["reason"]) == ("sut_too_slow", "SUT too slow: no response within 5 s")
    assert x["baseline"]["start_line"] == "HTTP/1.1 201 OK" and x["changes"] == []
    assert x["replay"] == {"outcome": "timeout", "reason": "no response within 5 s"}
    assert x["endpoint"] == "POST /api/orders"


def test_malformed_and_raw_exchanges_keep_their_note_and_bytes_digest():
    base = Exchange(0, 0, RawMessage(b"PING\r\n"), RawMessage(b"\x00\x01binary"), "raw")
    cand = Exchange(0, 0, RawMessage(b"PING\r\n"), None, "raw", malformed="no response: replay timeout")
    x = build_report([make_run({0: ([base], [cand])})])["runs"][0]["exchanges"][0]
    assert x["request"]["kind"] == "raw" and x["request"]["body"]["text"] == "PING\r\n"
    assert x["baseline"]["body"] == {
        "kind": "binary", "size": 8, "text": None, "sha256": hashlib.sha256(b"\x00\x01binary").hexdigest(),
        "truncated": False, "note": None,
    }  # fmt: skip
    assert x["candidate"]["kind"] == "none" and x["candidate"]["note"] == "no response: replay timeout"


# -- bodies -----------------------------------------------------------------------------------


def test_json_body_is_pretty_printed_and_text_body_kept_as_is():
    assert (
        body_model(b'{"a":[1,2]}', "application/json", None, NO_SECRETS)["text"] == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    )
    text = body_model(b"line one\r\nline two", "text/plain", None, NO_SECRETS)
    assert (text["kind"], text["text"], text["size"]) == ("text", "line one\r\nline two", 18)
    broken = body_model(b'{"a": ', "application/json", None, NO_SECRETS)
    assert (broken["kind"], broken["text"]) == ("text", '{"a": ')


def test_gzip_body_is_decoded_and_bad_gzip_shown_as_digest():
    decoded = body_model(gzip.compress(b'{"plan": "free"}'), "application/json", "gzip", NO_SECRETS)
    assert (decoded["kind"], decoded["note"]) == ("json", "gzip-decoded")
    assert json.loads(decoded["text"]) == {"plan": "free"}
    bad = body_model(b"not gzip at all", "application/json", "gzip", NO_SECRETS)
    assert bad["kind"] == "binary" and bad["sha256"] == hashlib.sha256(b"not gzip at all").hexdigest()
    assert bad["note"].startswith("undecodable gzip body")
    unknown = body_model(b"xyz", "text/plain", "br", NO_SECRETS)
    assert (unknown["kind"], unknown["note"]) == ("binary", "br-encoded, not decoded")


def test_large_text_is_truncated_with_a_note():
    body = b"x" * (MAX_BODY_CHARS + 10)
    shown = body_model(body, "text/plain", None, NO_SECRETS)
    assert shown["truncated"] is True and len(shown["text"]) == MAX_BODY_CHARS and shown["size"] == len(body)
    assert "truncated" in shown["note"]


def test_oversized_json_is_withheld_and_a_compression_bomb_is_stopped():
    huge = b'{"token": "s3cr3t", "pad": "' + b"a" * MAX_PARSE_BYTES + b'"}'
    withheld = body_model(huge, "application/json", None, NO_SECRETS)
    assert withheld["kind"] == "withheld" and withheld["text"] is None and "too large to redact" in withheld["note"]
    bomb = gzip.compress(b"a" * (3 * MAX_PARSE_BYTES), compresslevel=1)
    stopped = body_model(bomb, "text/plain", "gzip", NO_SECRETS)
    assert stopped["size"] == MAX_PARSE_BYTES + 1 and "decoding stopped" in stopped["note"]
    assert stopped["truncated"] is True and len(stopped["text"]) == MAX_BODY_CHARS


# -- bounds -----------------------------------------------------------------------------------


def test_detail_changes_and_values_are_bounded(monkeypatch):
    monkeypatch.setattr(model, "MAX_DETAILED", 1)
    monkeypatch.setattr(model, "MAX_CHANGES", 2)
    big = "v" * (model.MAX_VALUE_CHARS + 100)
    base = [exchange(0, i, request(f"/r/{i}"), response(json.dumps({"a": 1, "b": 2, "c": 3, "big": "x"}).encode()))
            for i in range(2)]  # fmt: skip
    cand = [exchange(0, i, request(f"/r/{i}"), response(json.dumps({"a": 9, "b": 9, "c": 9, "big": big}).encode()))
            for i in range(2)]  # fmt: skip
    first, second = build_report([make_run({0: (base, cand)})])["runs"][0]["exchanges"]
    assert first["detailed"] and first["request"] is not None
    assert not second["detailed"] and second["request"] is None and second["baseline"] is None
    assert [c["path"] for c in first["changes"]] == ["body.a", "body.b"] and first["changes_omitted"] == 2


def test_huge_and_non_finite_change_values_stay_strict_json():
    big = "v" * (model.MAX_VALUE_CHARS + 100)
    base = exchange(0, 0, request(), response(b'{"big": "x", "n": 1}'))
    cand = exchange(0, 0, request(), response(f'{{"big": "{big}", "n": NaN}}'.encode()))
    x = build_report([make_run({0: ([base], [cand])})])["runs"][0]["exchanges"][0]
    values = {c["path"]: c["new"] for c in x["changes"]}
    head = f"[characters 0-{model.MAX_VALUE_CHARS} of {len(big) + 2}, first difference at 1] "
    assert values["body.big"].startswith(head)
    assert len(values["body.big"]) < model.MAX_VALUE_CHARS + 60
    assert values["body.n"] == "NaN"
    strict_json(build_report([make_run({0: ([base], [cand])})]))


# -- redaction --------------------------------------------------------------------------------

SECRETS = (
    "Bearer abc.def",
    "sid=SESSION42",
    "SESSIONCOOKIE7",
    "tok-998877",
    "hunter2",
    "sk-live-123456",
    "qs-secret-55",
)


def secret_run(config: DiffConfig):
    req = request(
        "/api/login?access_token=qs-secret-55",
        "POST",
        headers=(("Authorization", "Bearer abc.def"), ("Cookie", "sid=SESSION42")),
        body=b"user=ada&password=hunter2",
    )
    base = exchange(0, 0, req, response(b'{"token": "tok-111111", "key": "sk-live-000000", "plan": "premium"}',
                                        headers=(("Set-Cookie", "sid=SESSIONCOOKIE7; Path=/"),)))  # fmt: skip
    cand = exchange(0, 0, req, response(b'{"token": "tok-998877", "key": "sk-live-123456", "plan": "free"}',
                                        headers=(("Set-Cookie", "sid=SESSIONCOOKIE7; Path=/"),)))  # fmt: skip
    run = make_run({0: ([base], [cand])}, config=config, notes=("retry with token=tok-998877",))
    run.sut_logs = "login ok password=hunter2\n"
    return run


def test_secrets_never_reach_any_output():
    redaction = Redaction(patterns=(*Redaction().patterns, r"sk-live-[0-9]+"))
    run = secret_run(DiffConfig(redaction=redaction))
    report = build_report([run], redaction)
    outputs = {"json": strict_json(report), "html": render_html(report), "terminal": "\n".join(summary_lines([run]))}
    for name, text in outputs.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} in the {name} report"
    x = report["runs"][0]["exchanges"][0]
    assert ["Authorization", "[redacted]"] in x["request"]["headers"]
    assert ["Set-Cookie", "[redacted]"] in x["candidate"]["headers"]
    assert x["request"]["start_line"] == "POST /api/login?access_token=[redacted] HTTP/1.1"
    assert x["request"]["body"]["text"] == "user=ada&password=[redacted]"
    assert json.loads(x["candidate"]["body"]["text"]) == {"token": "[redacted]", "key": "[redacted]", "plan": "free"}
    changes = {c["path"]: c for c in x["changes"]}
    assert changes["body.token"] == {"path": "body.token", "kind": "changed", "redacted": True}
    assert changes["body.plan"]["new"] == "free"


def test_the_reports_redaction_applies_even_where_the_diff_did_not_redact():
    run = secret_run(DiffConfig())  # the diff knows no sk-live pattern: its change holds the value
    assert "sk-live-123456" in json.dumps([c.to_json() for c in run.differences[0].diff.changes])
    report = build_report([run], Redaction(patterns=(*Redaction().patterns, r"sk-live-[0-9]+")))
    assert "sk-live-123456" not in strict_json(report)


class LineMessage:
    """A user codec's message type: it says how it compares through ``normalized()``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def normalized(self) -> dict:
        return {"body": self.text.split(), "password": "swordfish"}


def test_a_user_codec_message_shows_its_normalized_tree_redacted():
    base = Exchange(0, 0, LineMessage("HELLO"), LineMessage("OK one"), "lines")
    cand = Exchange(0, 0, LineMessage("HELLO"), LineMessage("OK two"), "lines")
    x = build_report([make_run({0: ([base], [cand])})])["runs"][0]["exchanges"][0]
    assert x["request"]["kind"] == "LineMessage" and x["request"]["start_line"] is None
    assert json.loads(x["candidate"]["body"]["text"]) == {"body": ["OK", "two"], "password": "[redacted]"}
    assert x["changes"] == [{"path": "body[1]", "kind": "changed", "old": "one", "new": "two"}]
    assert "swordfish" not in strict_json(build_report([make_run({0: ([base], [cand])})]))
