"""Load figures from hand-built copier documents: percentiles, request mapping, errors, rates, SLOs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_tcpcopy.compare import Exchange, HttpRequest, RawMessage
from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.load import LoadReport, RequestMap, SloViolation, nearest_rank, session_samples
from pytest_tcpcopy.model import CaptureIndex, index_capture
from pytest_tcpcopy.replay.results import ReplayResult, SessionResult
from pytest_tcpcopy.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jsonservice" / "traffic.pcap.gz"


def http(session: int, number: int, method: str, target: str, offset: int) -> Exchange:
    return Exchange(session, number, HttpRequest(method, target, "HTTP/1.1", (), b"", offset=offset), None, "http")


def timing(offset: int, nbytes: int, sent: float, first: float | None = None, last: float | None = None,
           response: int = 0) -> dict:  # fmt: skip
    return {"request_offset": offset, "request_bytes": nbytes, "sent_at": sent,
            "first_response_at": first, "last_response_at": last if last is not None else first,
            "response_bytes": response if first is not None else 0}  # fmt: skip


def result(session: int, copy: int, timings: list[dict], outcome: str = "complete") -> SessionResult:
    client = f"198.18.0.{copy + 1}:{4000 + session}"
    return SessionResult.from_json({"session": session, "copy": copy, "outcome": outcome, "reason": "",
                                    "exchanges": timings, "client": client})  # fmt: skip


# Session 0: three HTTP requests at client offsets 0, 100 and 250 (a query string on the second).
SHOP = [http(0, 0, "GET", "/health", 0), http(0, 1, "GET", "/items?page=2", 100), http(0, 2, "POST", "/orders", 250)]
SHOP_MAP = RequestMap(SHOP)
BASIS = "latency: request's first byte sent to last response byte, nearest-rank percentiles"


# -- percentiles ------------------------------------------------------------------------------------


def test_nearest_rank_on_one_to_ten():
    values = [float(v) for v in range(1, 11)]
    assert [nearest_rank(values, p) for p in (0, 10, 50, 55, 90, 91, 99, 100)] == [1, 1, 5, 6, 9, 10, 10, 10]
    assert nearest_rank([], 50) is None
    assert nearest_rank([7.0], 99) == 7.0
    with pytest.raises(UsageError):
        nearest_rank(values, 101)


def test_nearest_rank_is_exact_where_floats_are_not():
    # 7 / 100 * 100 is 7.000000000000001 in floats: a float ceil would pick rank 8, not 7.
    values = [float(v) for v in range(100)]
    assert nearest_rank(values, 7) == 6.0
    assert nearest_rank(values, 99.9) == 99.0  # rank ceil(99.9) = 100


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=60), st.integers(1, 100))
def test_nearest_rank_is_the_smallest_value_covering_the_percentile(values, p):
    ordered = sorted(values)
    got = nearest_rank(ordered, p)
    assert got in ordered
    assert sum(v <= got for v in ordered) * 100 >= p * len(ordered)
    assert sum(v < got for v in ordered) * 100 < p * len(ordered)


# -- mapping timings to captured requests -----------------------------------------------------------


def test_one_burst_per_request_maps_to_its_endpoint_without_query():
    found = session_samples(result(0, 0, [timing(0, 100, 0.0, 0.010, 0.012, 300), timing(100, 150, 0.1, 0.101, 0.105, 50),
                                          timing(250, 80, 0.2, 0.230, 0.260, 70)]), SHOP_MAP)  # fmt: skip
    assert [s.endpoint for s in found.samples] == ["GET /health", "GET /items", "POST /orders"]
    assert [round(s.ttfb * 1000, 3) for s in found.samples] == [10.0, 1.0, 30.0]
    assert [round(s.response_time * 1000, 3) for s in found.samples] == [12.0, 5.0, 60.0]
    assert found.sent == {"GET /health": 1, "GET /items": 1, "POST /orders": 1}
    assert found.resends == 0 and [s.response_bytes for s in found.samples] == [300, 50, 70]


def test_a_request_in_several_bursts_is_one_sample_timed_from_its_first_byte():
    bursts = [timing(250, 40, 0.5), timing(290, 40, 0.7, 0.75, 0.8, 90)]
    (sample,) = session_samples(result(0, 0, bursts), SHOP_MAP).samples
    assert (sample.endpoint, sample.sent_at, sample.first_response_at, sample.last_response_at) == (
        "POST /orders",
        0.5,
        0.75,
        0.8,
    )
    assert sample.requests == 1 and sample.response_bytes == 90


def test_pipelined_requests_are_sent_but_share_the_burst_that_carried_them():
    found = session_samples(result(0, 0, [timing(0, 330, 0.0, 0.02, 0.05, 400)]), SHOP_MAP)
    (sample,) = found.samples
    assert sample.endpoint == "GET /health" and sample.requests == 3
    assert found.sent == {"GET /health": 1, "GET /items": 1, "POST /orders": 1}


def test_a_request_sent_again_after_a_reconnect_counts_once_timed_by_the_answered_attempt():
    bursts = [timing(0, 100, 0.0, 0.01, 0.01, 300), timing(100, 150, 0.1), timing(100, 150, 0.4, 0.41, 0.42, 50)]
    found = session_samples(result(0, 0, bursts), SHOP_MAP)
    assert found.resends == 1 and found.sent == {"GET /health": 1, "GET /items": 1}
    assert [(s.endpoint, s.sent_at) for s in found.samples] == [("GET /health", 0.0), ("GET /items", 0.4)]


def test_a_pipelined_resend_supersedes_the_earlier_sample_of_what_it_carries_again():
    bursts = [timing(100, 150, 0.1), timing(0, 330, 0.3, 0.31, 0.33, 100)]
    found = session_samples(result(0, 0, bursts), SHOP_MAP)
    assert [(s.endpoint, s.requests) for s in found.samples] == [("GET /health", 3)]
    assert found.resends == 0  # the burst at 0 starts /health, which had not been sent before


def test_unanswered_requests_are_sent_not_answered():
    found = session_samples(result(0, 0, [timing(0, 100, 0.0, 0.01, 0.01, 300), timing(100, 150, 0.2)]), SHOP_MAP)
    assert [s.answered for s in found.samples] == [True, False]
    assert found.samples[1].ttfb is None and found.samples[1].response_time is None


def test_raw_requests_are_raw_and_an_empty_greeting_turn_is_no_request():
    turns = [Exchange(1, 0, RawMessage(b"", 0), RawMessage(b"220 hi\r\n"), "raw"),
             Exchange(1, 1, RawMessage(b"HELO x\r\n", 0), None, "raw"),
             Exchange(1, 2, RawMessage(b"QUIT\r\n", 8), None, "raw")]  # fmt: skip
    requests = RequestMap(turns)
    assert requests.starts == [0, 8]
    found = session_samples(result(1, 0, [timing(0, 8, 0.0, 0.001), timing(8, 6, 0.1, 0.102)]), requests)
    assert [s.endpoint for s in found.samples] == ["raw", "raw"] and found.sent == {"raw": 2}


def test_bytes_before_the_first_request_belong_to_it():
    requests = RequestMap([http(0, 0, "GET", "/a", 2), http(0, 1, "GET", "/b", 40)])  # after a blank line
    (sample,) = session_samples(result(0, 0, [timing(0, 40, 0.0, 0.003)]), requests).samples
    assert sample.endpoint == "GET /a" and sample.requests == 1


# -- the report: counts, errors and rates -----------------------------------------------------------


def shop_capture() -> CaptureIndex:
    """Session 0 (SHOP, 3 requests) and session 1 (one GET /health), spanning 2 s of capture."""
    return CaptureIndex(Path("shop.pcap"), 2, frozenset({0, 1}), 4, {}, requests=4, window=(100.0, 102.0))


SHOP_EXCHANGES = {0: SHOP, 1: [http(1, 0, "GET", "/health", 0)]}


def shop_document() -> ReplayResult:
    """Amplify 3 of shop_capture: 6 copies asked for, 5 reported (one never started)."""
    full = [
        timing(0, 100, 0.0, 0.010, 0.020, 10),
        timing(100, 150, 0.1, 0.120, 0.140, 10),
        timing(250, 80, 0.2, 0.240, 0.260, 10),
    ]
    sessions = [
        result(0, 0, full),
        result(0, 1, full[:2], "sut_reset"),
        result(0, 2, [*full[:2], timing(250, 80, 0.2)], "timeout"),
        result(1, 0, [timing(0, 90, 0.5, 0.501, 0.502, 5)]),
        result(1, 1, [], "not_established"),
    ]
    return ReplayResult(sessions, 2.0)


def test_report_counts_errors_by_outcome_and_copies_never_started():
    report = LoadReport.build(shop_document(), SHOP_EXCHANGES, shop_capture(), amplify=3, speed=1.0)
    assert (report.copies, report.completed, report.errors) == (6, 2, 4)
    assert (report.resets, report.timeouts, report.not_established) == (1, 1, 1)
    assert report.outcomes["not_started"] == 1 and report.error_rate == pytest.approx(4 / 6)
    assert (report.overall.requests, report.overall.answered) == (9, 8)  # POST of copy 2 never answered
    assert {e.endpoint: (e.requests, e.answered) for e in report.endpoints} == {
        "GET /health": (4, 4), "GET /items": (3, 3), "POST /orders": (2, 1)}  # fmt: skip


def test_report_percentiles_overall_and_per_endpoint():
    report = LoadReport.build(shop_document(), SHOP_EXCHANGES, shop_capture(), amplify=3, speed=None)
    health = report.endpoint("GET /health")
    # /health ttfb: 10 ms x3 (copies 0-2 of session 0) and 1 ms (session 1).
    assert (health.ttfb.count, health.ttfb.p50, health.ttfb.max) == (4, pytest.approx(0.010), pytest.approx(0.010))
    assert health.ttfb.p90 == pytest.approx(0.010) and health.response.p50 == pytest.approx(0.020)
    overall = report.overall.ttfb  # 8 values: 1, 10, 10, 10, 20, 20, 20, 40 ms
    assert overall.count == 8
    assert (overall.p50, overall.p90, overall.p99) == (pytest.approx(0.010), pytest.approx(0.040), pytest.approx(0.040))
    with pytest.raises(KeyError, match="GET /health, GET /items, POST /orders"):
        report.endpoint("GET /nothing")


def test_offered_follows_the_capture_schedule_and_achieved_the_elapsed_time():
    capture, document = shop_capture(), shop_document()
    paced = LoadReport.build(document, SHOP_EXCHANGES, capture, amplify=3, speed=2.0)
    # 4 captured requests and 2 sessions over a 2 s window, x3 copies, twice as fast: 1 s.
    assert paced.window == 2.0 and paced.scheduled == 4
    assert (paced.offered.requests, paced.offered.sessions) == (12.0, 6.0)
    assert (paced.achieved.requests, paced.achieved.sessions) == (4.0, 1.0)  # 8 answered, 2 complete in 2 s
    fastest = LoadReport.build(document, SHOP_EXCHANGES, capture, amplify=3, speed=None)
    assert fastest.offered is None and fastest.achieved == paced.achieved
    assert "as fast as possible" in fastest.render() and "12.0/s" in paced.render()


def test_offered_rate_of_the_example_capture():
    capture = index_capture(EXAMPLE, Settings())
    document = ReplayResult([], 0.0)
    report = LoadReport.build(document, SHOP_EXCHANGES, capture, amplify=5, speed=1.0)
    assert (report.sessions, report.scheduled) == (30, 54)
    assert report.offered.requests == pytest.approx(5 * 54 / report.window)
    assert 1.0 < report.window < 1.5  # the example's clients ran for about 1.2 s
    assert report.achieved is None and report.outcomes == {"not_started": 150}


def test_a_document_of_another_capture_is_refused():
    document = ReplayResult([result(7, 0, [])], 1.0)
    with pytest.raises(UsageError, match="session 7, which shop.pcap does not hold"):
        LoadReport.build(document, SHOP_EXCHANGES, shop_capture(), amplify=1, speed=None)


def test_render_and_json():
    report = LoadReport.build(shop_document(), SHOP_EXCHANGES, shop_capture(), amplify=3, speed=1.0)
    text = report.render()
    assert text.splitlines()[0] == "load: shop.pcap, 2 sessions x3 = 6 copies, speed x1, 2.000 s"
    assert "errors: 4 of 6 copies (66.67%): 1 sut reset, 1 timeout, 1 not established, 1 not started" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("POST /orders"))
    assert row.split() == [
        "POST",
        "/orders",
        "1",
        "40.000",
        "40.000",
        "40.000",
        "40.000",
        "60.000",
        "60.000",
        "60.000",
        "60.000",
    ]
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["speed"] == 1.0 and doc["error_rate"] == pytest.approx(4 / 6) and doc["scheduled_requests"] == 12
    assert doc["overall"]["ttfb"] == {"count": 8, "p50_ms": 10.0, "p90_ms": 40.0, "p99_ms": 40.0, "max_ms": 40.0}
    assert [e["endpoint"] for e in doc["endpoints"]] == ["GET /health", "GET /items", "POST /orders"]


# -- service level objectives -----------------------------------------------------------------------


def shop_report() -> LoadReport:
    return LoadReport.build(shop_document(), SHOP_EXCHANGES, shop_capture(), amplify=3, speed=1.0)


def test_slo_met():
    check = shop_report().check_slo(p99_ms=100, max_ms=100, error_rate=0.7, per_endpoint=True)
    assert check.passed and check.render().startswith("SLO met")
    shop_report().assert_slo(p99_ms=100, error_rate=0.7)


def test_slo_table_names_the_broken_limits_and_the_endpoints_over_them():
    with pytest.raises(SloViolation) as failed:
        shop_report().assert_slo(p99_ms=50, error_rate=0.1)
    assert isinstance(failed.value, AssertionError)
    assert str(failed.value).splitlines() == [
        f"SLO not met: 2 of 2 limits broken ({BASIS} over 8 answered requests)",
        "scope         metric       limit  measured  verdict",
        "all           p99 ms          50    60.000  FAIL",
        "all           error rate  10.00%    66.67%  FAIL",
        "POST /orders  p99 ms          50    60.000  over",
        "over: an endpoint above a broken overall limit (judged only with per_endpoint=True)",
    ]  # fmt: skip
    assert [r.metric for r in failed.value.check.broken] == ["p99", "error_rate"]


def test_slo_per_endpoint_judges_every_endpoint_and_ttfb_on_request():
    # Response times (ms): /health 20, 20, 20, 2; /items 40 x3; /orders 60; overall p50 is 20.
    check = shop_report().check_slo(p50_ms=25, per_endpoint=True)
    assert [(r.scope, r.verdict.value) for r in check.rows] == [
        ("all", "ok"), ("GET /health", "ok"), ("GET /items", "FAIL"), ("POST /orders", "FAIL")]  # fmt: skip
    assert shop_report().check_slo(p50_ms=15, latency="ttfb").passed  # ttfb p50 is 10 ms
    assert "first response byte" in shop_report().check_slo(p50_ms=15, latency="ttfb").render()
    assert not shop_report().check_slo(p50_ms=15, latency="response").passed  # response p50 is 20 ms


def test_slo_without_measurements_is_not_met():
    document = ReplayResult([result(1, 0, [timing(0, 90, 0.5)], "timeout")], 1.0)
    report = LoadReport.build(document, SHOP_EXCHANGES, shop_capture(), amplify=1, speed=None)
    check = report.check_slo(p99_ms=1000)
    assert not check.passed and check.rows[0].measured is None
    assert check.render().splitlines()[1:] == [
        "scope  metric  limit  measured  verdict",
        "all    p99 ms   1000       n/a  FAIL",
    ]


@pytest.mark.parametrize(
    ("limits", "message"),
    [({}, "without limits"), ({"p99_ms": -1}, "p99_ms=-1"), ({"p50_ms": math.nan}, "p50_ms=nan"),
     ({"error_rate": 1.5}, "error_rate=1.5"), ({"p99_ms": 1, "latency": "p95"}, "latency='p95'")],
)  # fmt: skip
def test_slo_misuse_is_a_usage_error(limits, message):
    with pytest.raises(UsageError, match=message):
        shop_report().assert_slo(**limits)
