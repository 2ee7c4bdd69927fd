"""Findings in every report: the JSON list, the HTML table with collapsed cards, a short terminal
summary at any scale; windowed values; not comparable verdicts with their cause; no secret leaks."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

from reportkit import exchange, make_run, regression_run, request, response, user
from test_report_html import Page

from pytest_tcpcopy.compare import Cause, DiffConfig, ReplayProblem
from pytest_tcpcopy.judging.verdicts import RunVerdicts
from pytest_tcpcopy.report import build_report, model, render_html, summary_lines
from pytest_tcpcopy.report.terminal import finding_reference, findings_lines

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compare"))
from secretcorpus import VISIBLE, assert_no_secrets, planted_problem, planted_sessions  # noqa: E402


def big_regression(n: int):
    """``n`` exchanges of one endpoint, each with the same changed plan (judged once, copied)."""
    run = make_run({1: ([exchange(1, 0, request("/api/users/1"), response(user("premium")))],
                        [exchange(1, 0, request("/api/users/1"), response(user("free")))])})  # fmt: skip
    [template] = run.comparisons.values()
    run.verdicts = RunVerdicts(DiffConfig().redaction)
    for s in range(n):
        ident = f"s{s:04d}-GET /api/users/{s}"
        run.verdicts.add(replace(template, exchange_id=ident, session=s, diff=replace(template.diff, exchange_id=ident)))
    run.capture = replace(run.capture, selected=frozenset(range(n)))
    return run


def test_the_json_report_lists_findings():
    report = build_report([regression_run()])
    assert report["findings"] == [
        {"status": "different", "endpoint": "GET /api/users/{id}", "path": "body.plan", "change": "changed",
         "count": 1, "examples": [{"exchange": "s0001-GET /api/users/2", "session": 1, "number": 0}],
         "values": [{"old": "'premium'", "new": "'free'", "count": 1}], "values_omitted": 0, "message": None,
         "suggested_ignore": None, "run": 0, "capture": "traffic.pcap", "reproducers": []},
        {"status": "not_comparable", "endpoint": "POST /api/orders", "path": None, "change": "sut_too_slow",
         "count": 1, "examples": [{"exchange": "s0002-POST /api/orders", "session": 2, "number": 0}],
         "values": [], "values_omitted": 0, "message": "SUT too slow: no response within 5 s",
         "suggested_ignore": None, "run": 0, "capture": "traffic.pcap", "reproducers": []},
    ]  # fmt: skip


def test_one_regression_across_10000_exchanges_is_a_short_terminal_summary():
    lines = summary_lines([big_regression(10_000)])
    assert len(lines) < 15
    assert lines[0] == "traffic.pcap: 10000 sessions, 10000 exchanges: 10000 different"
    assert "      10000  GET /api/users/{id}  body.plan  changed  'premium' -> 'free'" in lines
    assert lines.count("    body.plan: 'premium' -> 'free'") == 2  # the full diff of the first two examples
    assert "GET /api/users/{id} body.plan changed: 10000 exchanges, e.g. s0000-GET /api/users/0, " \
           "s0001-GET /api/users/1, s0002-GET /api/users/2" in lines  # fmt: skip


def test_the_findings_table_is_bounded_and_says_what_it_left_out(monkeypatch):
    from pytest_tcpcopy.report import terminal

    monkeypatch.setattr(terminal, "MAX_ROWS", 2)
    pairs = {s: ([exchange(s, 0, request(f"/r{s}"), response(user("premium")))],
                 [exchange(s, 0, request(f"/r{s}"), response(user("free")))]) for s in range(4)}  # fmt: skip
    lines = findings_lines(model.run_findings(make_run(pairs), DiffConfig().redaction))
    assert "  ... and 2 more finding(s) (2 exchanges)" in lines


def test_a_finding_reference_is_one_line_naming_where_its_diff_is():
    findings = model.run_findings(big_regression(5), DiffConfig().redaction)
    [finding] = findings.findings()
    assert finding_reference(finding, "s0004-GET /api/users/4") == (
        "s0004-GET /api/users/4: finding GET /api/users/{id} body.plan changed (5 exchanges; shown in full for "
        "s0000-GET /api/users/0)"
    )


def test_the_html_report_leads_with_findings_and_collapses_identical_cards():
    text = render_html(build_report([big_regression(30)]))
    page = Page(text)
    cards = [a["id"] for t, a in page.tags if t == "details" and "exchange" in a.get("class", "")]
    assert cards == ["r0-s0-n0"]  # 30 identical cards drawn once
    assert '<span class="badge count">×30</span>' in text
    assert text.count("<code>s0029-GET /api/users/29</code>") == 1  # listed on the collapsed card
    assert text.index('<section class="findings">') < text.index("<main>")
    links = [a["href"] for t, a in page.tags if t == "a"]
    assert links == ["#r0-s0-n0"] * 3  # every example leads to the card that shows it
    row = re.search(r'<table class="findings">.*?</table>', text, re.S).group(0)
    assert ">30</td>" in row and "GET /api/users/{id}" in row and "body.plan" in row and "&#x27;free&#x27;" in row


def test_cards_that_differ_are_not_collapsed():
    pairs = {s: ([exchange(s, 0, request(f"/r/{s}"), response(user("premium")))],
                 [exchange(s, 0, request(f"/r/{s}"), response(user(f"free-{s}")))]) for s in range(3)}  # fmt: skip
    page = Page(render_html(build_report([make_run(pairs)])))
    assert len([a for t, a in page.tags if t == "details" and "exchange" in a.get("class", "")]) == 3


def test_not_comparable_exchanges_show_their_cause_and_log_tail():
    problem = ReplayProblem(Cause.SUT_DIED, "exit code 139", log_tail="boot\nsegfault in handler")
    base = [exchange(0, 0, request("/a"), response(b'{"a": 1}'))]
    run = make_run({0: (base, [])}, problems={0: [problem]})
    report = build_report([run])
    assert report["totals"]["not_comparable"] == 1 and report["totals"]["different"] == 0
    x = report["runs"][0]["exchanges"][0]
    assert (x["status"], x["cause"], x["reason"]) == ("not_comparable", "sut_died", "SUT died: exit code 139")
    assert x["log_tail"] == "boot\nsegfault in handler"
    text = render_html(report)
    page = Page(text)
    card = [set(a["class"].split()) for t, a in page.tags if t == "details" and "exchange" in a.get("class", "")]
    assert card == [{"exchange", "not-comparable"}]
    assert "not comparable: SUT died: exit code 139" in text and "segfault in handler" in text
    assert "1 not comparable" in text and '<label for="f-notcomparable">Not comparable (1)</label>' in text
    assert summary_lines([run])[0] == "traffic.pcap: 1 session, 1 exchange: 1 not comparable"


def test_a_long_value_differing_after_2000_characters_is_shown_around_the_difference():
    head = "a" * 3000
    base = exchange(0, 0, request(), response(json.dumps({"doc": head + "premium" + "z" * 3000}).encode()))
    cand = exchange(0, 0, request(), response(json.dumps({"doc": head + "free" + "z" * 3000}).encode()))
    [change] = build_report([make_run({0: ([base], [cand])})])["runs"][0]["exchanges"][0]["changes"]
    assert "premium" in change["old"] and "free" in change["new"]
    assert change["old"].startswith("[characters 2501-3508 of 6009, first difference at 3001] ")
    assert len(change["old"]) < model.MAX_VALUE_CHARS + 80


def test_no_planted_secret_reaches_the_json_html_or_terminal_reports():
    sessions = planted_sessions()
    base0 = sessions[0][0][:1]
    runs_pairs = {0: sessions[0], 1: sessions[1], 2: (base0, [])}
    config = DiffConfig(compare_cookie_values=True)
    run = make_run(runs_pairs, config=config, problems={2: [planted_problem()]})
    report = build_report([run], config.redaction)
    outputs = {
        "JSON report": json.dumps(report, allow_nan=False),
        "HTML report": render_html(report),
        "terminal summary": "\n".join(summary_lines([run], config.redaction)),
    }
    for where, text in outputs.items():
        assert_no_secrets(text, where)
        assert all(value in text for value in VISIBLE), f"the {where} did not show the exchanges"
    assert report["totals"]["different"] == 10 and report["totals"]["not_comparable"] == 1
