"""Redaction by secret names: the planted-secrets corpus against every rendering of a comparison."""

from __future__ import annotations

import json

import pytest
from secretcorpus import VISIBLE, all_secrets, assert_no_secrets, leaked, planted_problem, planted_sessions

from pytest_tcpcopy.compare import (
    ComparisonStatus,
    DiffConfig,
    FindingsAccumulator,
    Redaction,
    compare_sessions,
    endpoint_template,
)
from pytest_tcpcopy.errors import UsageError


def judged():
    out = []
    for session, (baseline, candidate) in planted_sessions().items():
        problems = [planted_problem()] if session == 1 else []
        out += compare_sessions(baseline, candidate, DiffConfig(compare_cookie_values=True))
        out += compare_sessions(baseline[:1], [], candidate_problems=problems or [planted_problem()])
    return out


def test_the_corpus_is_planted_where_the_renderings_look():
    exchanges = [x for base, cand in planted_sessions().values() for x in base + cand]
    raw = "".join(repr(x.request) + repr(x.response) for x in exchanges) + repr(planted_problem())
    assert leaked(raw) == all_secrets() and len(all_secrets()) >= 40
    statuses = [c.status for c in judged()]
    assert statuses.count(ComparisonStatus.DIFFERENT) == 10 and statuses.count(ComparisonStatus.NOT_COMPARABLE) == 2


def test_no_planted_secret_reaches_failure_text_json_or_findings():
    comparisons = judged()
    findings = FindingsAccumulator()
    for comparison in comparisons:
        findings.add(comparison)
    renderings = {
        "failure text": "\n".join(c.render() for c in comparisons),
        "comparison JSON": json.dumps([c.to_json() for c in comparisons]),
        "reprs": repr(comparisons) + repr([c.diff for c in comparisons]),
        "findings": json.dumps([f.to_json() for f in findings.findings()]) + repr(findings.findings()),
    }
    for where, text in renderings.items():
        assert_no_secrets(text, where)
    shown = renderings["failure text"]
    assert all(value in shown for value in VISIBLE)  # the exchanges were rendered, secrets and all
    assert "body.user_password: value differs (redacted)" in shown
    assert "body.userPassword: value differs (redacted)" in shown
    assert "headers.set-cookie: value differs (redacted)" in shown
    assert "password=[redacted]" in renderings["comparison JSON"]  # the SUT log tail, scrubbed


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("user_password", True), ("userPassword", True), ("new_password", True), ("PWD", True),
        ("auth_token", True), ("csrf_token", True), ("csrfmiddlewaretoken", True), ("X-CSRF-Token", True),
        ("Authorization", True), ("Proxy-Authorization", True), ("Cookie", True), ("Set-Cookie", True),
        ("x-api-key", True), ("apiKey", True), ("api_key", True), ("client_secret", True), ("session_id", True),
        ("JSESSIONID", True), ("credentials", True), ("private_key", True), ("PrivateKey", True), ("passwd", True),
        ("oauth", True), ("author", False), ("authority", False), ("authors", False), ("content-type", False),
        ("plan", False), ("user", False), ("email", False), ("id", False),
    ],
)  # fmt: skip
def test_secret_names_match_case_insensitive_substrings(name, secret):
    assert Redaction().secret_name(name) is secret


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("/login?user_password=a1&pwd=b2&page=2", "/login?user_password=[redacted]&pwd=[redacted]&page=2"),
        ("csrf_token=XYZ&author=Ada", "csrf_token=[redacted]&author=Ada"),
        ('{"userPassword": "p", "n": 1}', '{"userPassword": "[redacted]", "n": 1}'),
        ("<a><password>p</password><plan>x</plan></a>", "<a><password>[redacted]</password><plan>x</plan></a>"),
        ('<input type="hidden" name="csrf" value="v">', '<input type="hidden" name="csrf" value="[redacted]">'),
        ('<meta content="v" name="csrf-token">', '<meta content="[redacted]" name="csrf-token">'),
        ("*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*1\r\n$4\r\nPING\r\n",
         "*2\r\n$4\r\nAUTH\r\n$10\r\n[redacted]\r\n*1\r\n$4\r\nPING\r\n"),
        ("auth pw\r\nGET k\r\n", "auth [redacted]\r\nGET k\r\n"),
        ("AUTH PLAIN AGFkYQBz\r\n", "AUTH PLAIN [redacted]\r\n"),
        ("AUTH LOGIN\r\n", "AUTH LOGIN\r\n"),
        ("A1 LOGIN ada pw\r\n", "A1 LOGIN [redacted]\r\n"),
        ("PASS pw\r\n", "PASS [redacted]\r\n"),
        ("Authorization: Basic YWRh\r\nHost: x\r\n", "Authorization: [redacted]\r\nHost: x\r\n"),
        ("Please login to continue", "Please login to continue"),
        ("token eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl end", "token [redacted] end"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "[redacted]"),
    ],
)  # fmt: skip
def test_secret_parts_of_text_are_scrubbed(text, scrubbed):
    assert Redaction().scrub_text(text) == scrubbed


def test_users_add_names_and_patterns():
    redaction = Redaction().with_names("pin", "otp").with_patterns(r"sk-live-[0-9]+")
    assert redaction.secret_name("card_pin") and redaction.secret_name("OTP") and redaction.secret_name("password")
    assert redaction.scrub({"card_pin": "1234", "note": "key sk-live-42 here"}) == {
        "card_pin": "[redacted]",
        "note": "[redacted]",  # a pattern matching a JSON entry hides the whole value
    }
    assert redaction.scrub_text("key sk-live-42 here") == "key [redacted] here"
    assert not Redaction(names=()).secret_name("password")
    with pytest.raises(UsageError, match="invalid redaction pattern"):
        Redaction().with_patterns("(")
    with pytest.raises(UsageError, match="list of strings"):
        Redaction(names="password")


def test_secret_query_values_never_reach_an_endpoint_template():
    from pytest_tcpcopy.compare import HttpRequest

    request = HttpRequest("GET", "/reset?auth_token=tok123&user=ada", "HTTP/1.1", (), b"")
    assert endpoint_template(request) == "GET /reset?auth_token={secret}&user=ada"


def test_a_change_only_in_a_secret_part_of_a_text_line_is_shown_redacted():
    baseline, candidate = planted_sessions()[0]
    [comparison] = compare_sessions(baseline[3:], candidate[3:])  # text/plain: user_password=...&plan=...
    [change] = comparison.diff.changes
    assert change.render() == "body[0]: 'user_password=[redacted]&plan=premium' -> 'user_password=[redacted]&plan=free'"


def test_secrets_spanning_lines_of_a_text_body_are_redacted_line_by_line():
    from pytest_tcpcopy.compare import Exchange, HttpResponse, RawMessage, diff_exchange

    def text(body: str, content_type: str = "application/xml") -> Exchange:
        return Exchange(0, 0, RawMessage(b""), HttpResponse("HTTP/1.1", 200, "OK", (("Content-Type", content_type),),
                                                            body.encode()), "http")  # fmt: skip

    xml = "<account>\n  <password>\n    {}\n  </password>\n  <plan>{}</plan>\n</account>"
    diff = diff_exchange(text(xml.format("SECRET-xml-old", "premium")), text(xml.format("SECRET-xml-new", "free")))
    assert [c.render() for c in diff.changes] == [
        "body[2]: value differs (redacted)", "body[4]: '  <plan>premium</plan>' -> '  <plan>free</plan>'",
    ]  # fmt: skip
    pem = "key:\n-----BEGIN PRIVATE KEY-----\nMIIE{}\nAAAA\n-----END PRIVATE KEY-----\ndone {}"
    diff = diff_exchange(text(pem.format("old", 1), "text/plain"), text(pem.format("new", 2), "text/plain"))
    assert [c.render() for c in diff.changes] == ["body[2]: value differs (redacted)", "body[5]: 'done 1' -> 'done 2'"]
    assert Redaction().secret_lines(["a", "<password>", "x", "</password>"]) == frozenset({1, 2})
    assert Redaction().secret_lines(["<password>x</password>"]) == frozenset()  # one line: scrubbed on its own
