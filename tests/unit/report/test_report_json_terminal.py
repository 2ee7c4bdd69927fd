"""The JSON report file and the terminal summary."""

from __future__ import annotations

import json

import pytest
from reportkit import exchange, make_run, regression_run, request, response

from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.report import build_report, report_format, summary_lines, write_json_report, write_report


def reject_constants(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def test_json_report_is_the_model_in_strict_json_with_sorted_keys(tmp_path):
    run = regression_run()
    path = write_json_report(tmp_path / "out" / "report.json", [run])
    text = path.read_text(encoding="utf-8")
    doc = json.loads(text, parse_constant=reject_constants)
    assert doc == json.loads(json.dumps(build_report([run])))
    assert text == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert list(doc) == ["findings", "format", "runs", "totals", "version"]


def test_json_report_is_stable_across_writes(tmp_path):
    run = regression_run()
    first = write_json_report(tmp_path / "a.json", [run]).read_bytes()
    assert write_json_report(tmp_path / "b.json", [run]).read_bytes() == first


def test_write_report_picks_the_format_by_suffix(tmp_path):
    run = regression_run()
    assert write_report(tmp_path / "r.JSON", [run]).read_text().startswith("{")
    assert write_report(tmp_path / "r.html", [run]).read_text().startswith("<!DOCTYPE html>")
    assert report_format("x.htm") == "html"
    with pytest.raises(UsageError, match=r"give a \.html or \.json file name, not '\.txt'"):
        write_report(tmp_path / "r.txt", [run])
    assert not (tmp_path / "r.txt").exists()


def test_summary_is_empty_without_runs_or_when_all_is_well():
    same = exchange(0, 0, request("/health"), response(b'{"ok": true}'))
    assert summary_lines([]) == []
    assert summary_lines([make_run({0: ([same], [same])})]) == []


def test_summary_counts_verdicts_apart_names_aborted_reasons_and_lists_findings():
    assert summary_lines([regression_run()]) == [
        "traffic.pcap: 3 sessions, 3 exchanges: 1 same, 1 different, 1 not comparable; 1 session aborted",
        "  aborted x1: timeout: no response within 5 s",
        "findings (1 different, 1 not comparable):",
        "  exchanges  endpoint             path       change          values",
        "          1  GET /api/users/{id}  body.plan  changed         'premium' -> 'free'",
        "          1  POST /api/orders     -          not comparable  SUT too slow: no response within 5 s",
        "GET /api/users/{id} body.plan changed: 1 exchange, e.g. s0001-GET /api/users/2",
        "  s0001-GET /api/users/2: 1 difference(s)",
        "    body.plan: 'premium' -> 'free'",
        "POST /api/orders not comparable (SUT too slow): 1 exchange, e.g. s0002-POST /api/orders",
        "  s0002-POST /api/orders: not comparable: SUT too slow: no response within 5 s",
    ]


def test_summary_lists_top_reasons_only_and_mentions_noise():
    sessions = {s: ([], []) for s in range(6)}
    outcomes = {0: ("timeout", "a"), 1: ("timeout", "a"), 2: ("sut_reset", "b"), 3: ("not_established", "c"),
                4: ("aborted", "d"), 5: ("aborted", "e")}  # fmt: skip
    assert summary_lines([make_run(sessions, outcomes)]) == [
        "traffic.pcap: 6 sessions, 0 exchanges; 6 sessions aborted",
        "  aborted x2: timeout: a",
        "  aborted x1: aborted: d",
        "  aborted x1: aborted: e",
        "  aborted x2: 2 other reason(s)",
    ]
    base, second, cand = (exchange(0, 0, request("/t"), response(b'{"t": %d}' % n)) for n in (1, 2, 3))
    assert summary_lines([make_run({0: ([base], [cand], [second])}, capture="noisy.pcap")]) == [
        "noisy.pcap: 1 session, 1 exchange: 1 same; 1 with noise"
    ]
