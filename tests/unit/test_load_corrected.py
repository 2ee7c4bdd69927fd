"""Latency free of coordinated omission, from hand-built copier documents: corrected latency
(last response byte - scheduled time), schedule lag (sent - scheduled), delayed starts, SLOs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_tcpcopy.compare import Exchange, HttpRequest
from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.load import LoadReport, SloViolation
from pytest_tcpcopy.model import CaptureIndex
from pytest_tcpcopy.replay.results import ReplayResult


def http(session: int, number: int, target: str, offset: int) -> Exchange:
    return Exchange(session, number, HttpRequest("GET", target, "HTTP/1.1", (), b"", offset=offset), None, "http")


def timing(offset: int, scheduled: float | None, sent: float, last: float | None) -> dict:
    answered = {"first_response_at": last, "last_response_at": last, "response_bytes": 0 if last is None else 10}
    return {"request_offset": offset, "request_bytes": 50, "scheduled_at": scheduled, "sent_at": sent, **answered}


def capture() -> CaptureIndex:
    """Session 0: GET /a then GET /b; session 1: GET /a. Two seconds of capture."""
    return CaptureIndex(Path("slow.pcap"), 2, frozenset({0, 1}), 3, {}, requests=3, window=(100.0, 102.0))


EXCHANGES = {0: [http(0, 0, "/a", 0), http(0, 1, "/b", 50)], 1: [http(1, 0, "/a", 0)]}


def document(delayed: int = 0) -> dict:
    # A slow SUT: /a of session 0 takes 400 ms, so /b (scheduled at 0.1) goes out at 0.4, 300 ms late.
    sessions = [
        {"session": 0, "copy": 0, "outcome": "complete", "reason": "",
         "exchanges": [timing(0, 0.0, 0.0, 0.4), timing(50, 0.1, 0.4, 0.45)]},
        {"session": 1, "copy": 0, "outcome": "timeout", "reason": "",
         "exchanges": [timing(0, 0.5, 0.52, None)]},
    ]  # fmt: skip
    return {"sessions": sessions, "totals": {"elapsed": 2.0, "delayed_starts": delayed}, "notes": []}


def report(delayed: int = 0, speed: float | None = 1.0) -> LoadReport:
    return LoadReport.build(ReplayResult.from_json(document(delayed)), EXCHANGES, capture(), amplify=1, speed=speed)


def test_corrected_latency_counts_the_wait_the_service_latency_hides():
    overall = report().overall
    # Service (from sent): /a 400 ms, /b 50 ms. Corrected (from scheduled): /a 400 ms, /b 350 ms.
    assert (overall.response.p50, overall.response.max) == (pytest.approx(0.05), pytest.approx(0.4))
    assert overall.corrected.count == 2
    assert (overall.corrected.p50, overall.corrected.max) == (pytest.approx(0.35), pytest.approx(0.4))
    # Lag over every request sent, answered or not: 0, 300 and 20 ms.
    assert overall.lag.count == 3
    assert (overall.lag.p50, overall.lag.p99, overall.lag.max) == (
        pytest.approx(0.02), pytest.approx(0.3), pytest.approx(0.3))  # fmt: skip
    b = report().endpoint("GET /b")
    assert b.corrected.max == pytest.approx(0.35) and b.response.max == pytest.approx(0.05)


def test_render_and_json_show_the_schedule_figures():
    text = report().render()
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("from schedule ms"))
    assert lines[header + 1].split() == ["all", "2", "350.000", "400.000", "400.000", "400.000", "20.000",
                                         "300.000", "300.000"]  # fmt: skip
    assert "offered load not met" not in text
    doc = json.loads(json.dumps(report().to_json()))
    assert doc["overall"]["corrected"]["p50_ms"] == 350.0 and doc["overall"]["schedule_lag"]["max_ms"] == 300.0
    assert doc["delayed_starts"] == 0


def test_delayed_starts_say_the_offered_load_was_not_met():
    delayed = report(delayed=3)
    assert delayed.delayed_starts == 3 and delayed.to_json()["delayed_starts"] == 3
    assert "offered load not met: 3 sessions waited for a free slot" in delayed.render()


def test_an_unpaced_document_has_no_schedule_figures():
    doc = document()
    for session in doc["sessions"]:
        for t in session["exchanges"]:
            del t["scheduled_at"]  # documents from before schedules existed
    unpaced = LoadReport.build(ReplayResult.from_json(doc), EXCHANGES, capture(), amplify=1, speed=None)
    assert unpaced.overall.corrected.count == 0 and unpaced.overall.lag.p50 is None
    assert "from schedule" not in unpaced.render()


def test_slo_on_corrected_latency():
    paced = report()
    assert paced.check_slo(p50_ms=100).passed  # service p50 is 50 ms
    with pytest.raises(SloViolation) as failed:
        paced.assert_slo(p50_ms=100, latency="corrected")
    assert "latency: request's scheduled time to last response byte" in str(failed.value)
    rows = [line.split() for line in str(failed.value).splitlines()[2:5]]
    assert rows == [["all", "p50", "ms", "100", "350.000", "FAIL"],
                    ["GET", "/a", "p50", "ms", "100", "400.000", "over"],
                    ["GET", "/b", "p50", "ms", "100", "350.000", "over"]]  # fmt: skip
    with pytest.raises(UsageError, match="needs a paced replay"):
        report(speed=None).assert_slo(p99_ms=1000, latency="corrected")
    with pytest.raises(UsageError, match="'response', 'ttfb' or 'corrected'"):
        paced.assert_slo(p99_ms=1000, latency="p95")
