"""Findings: endpoint templates, grouping by endpoint x path x change, bounds, streaming memory."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from pytest_tcpcopy.compare import (
    Cause,
    ComparisonStatus,
    DiffConfig,
    Exchange,
    FindingsAccumulator,
    HttpRequest,
    HttpResponse,
    RawMessage,
    ReplayProblem,
    VolatileKind,
    compare_sessions,
    endpoint_template,
    volatile_kind,
)
from pytest_tcpcopy.compare.endpoints import template_segment


def request(target: str, method: str = "GET") -> HttpRequest:
    return HttpRequest(method, target, "HTTP/1.1", (("Host", "sut"),), b"")


def response(body: dict, status: int = 200, headers=()) -> HttpResponse:
    return HttpResponse("HTTP/1.1", status, "OK", (("Content-Type", "application/json"), *headers),
                        json.dumps(body).encode())  # fmt: skip


def pair(session: int, target: str, old: dict, new: dict, number: int = 0, **kw) -> tuple[Exchange, Exchange]:
    req = request(target)
    return (Exchange(session, number, req, response(old, **kw), "http"),
            Exchange(session, number, req, response(new), "http"))  # fmt: skip


def judge(*pairs, config: DiffConfig | None = None, problems=()):
    out = []
    for base, cand in pairs:
        out += compare_sessions([base], [cand], config or DiffConfig(), candidate_problems=problems)
    return out


@pytest.mark.parametrize(
    ("target", "template"),
    [
        ("/api/users/42", "GET /api/users/{id}"),
        ("/api/users/42/", "GET /api/users/{id}/"),
        ("/api/orders/3fa85f64-5717-4562-b3fc-2c963f66afa6", "GET /api/orders/{uuid}"),
        ("/blobs/d41d8cd98f00b204e9800998ecf8427e", "GET /blobs/{hash}"),
        ("/blobs/D41D8CD98F00B204E9800998ECF8427E", "GET /blobs/{hash}"),
        ("/reports/2024-01-31/summary", "GET /reports/{date}/summary"),
        ("/events/2024-01-31T10:00:00Z", "GET /events/{timestamp}"),
        ("/files/7.json", "GET /files/{id}.json"),
        ("/session/a8Kx92Lm0Qz7Wp31", "GET /session/{token}"),
        ("/api/users/me", "GET /api/users/me"),
        ("/api/v2/health", "GET /api/v2/health"),
        ("/search?q=red%20shoes&page=3&sort=asc", "GET /search?q={value}&page={n}&sort=asc"),
        ("/search?q=shoes&format=json", "GET /search?q=shoes&format=json"),
        ("/feed?since=2024-01-31&id=3fa85f64-5717-4562-b3fc-2c963f66afa6", "GET /feed?since={date}&id={uuid}"),
        ("/x?flag&empty=", "GET /x?flag&empty="),
        ("/reset?token=abc123", "GET /reset?token={secret}"),
        ("http://backend:8080/api/users/7?x=1", "GET /api/users/{id}?x={n}"),
        ("*", "GET *"),
    ],
)
def test_endpoint_templates(target, template):
    assert endpoint_template(request(target)) == template


@pytest.mark.parametrize(
    ("data", "template"),
    [
        (b"*2\r\n$3\r\nget\r\n$3\r\nkey\r\n", "raw GET"),
        (b"SET k v\r\n", "raw SET"),
        (b"EHLO mail.example\r\n", "raw EHLO"),
        (b"a001 LOGIN ada pw\r\n", "raw LOGIN"),
        (b"QUIT", "raw QUIT"),
        (b"", "raw (no request)"),
        (b"\x00\x00\x00\x08\x04\xd2\x16\x2f", "raw (binary)"),
    ],
)
def test_endpoint_templates_of_other_protocols_use_the_command_word(data, template):
    assert endpoint_template(RawMessage(data)) == template


def test_endpoint_templates_of_user_codecs_use_the_codec_name():
    class Message:
        pass

    assert endpoint_template(Message(), "lines") == "lines"
    assert template_segment("12345") == "{id}" and template_segment("users") == "users"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("3fa85f64-5717-4562-b3fc-2c963f66afa6", VolatileKind.UUID),
        ("2024-01-31T10:00:00.123+01:00", VolatileKind.TIMESTAMP),
        ("Thu, 26 Nov 2026 17:00:00 GMT", VolatileKind.TIMESTAMP),
        (1_700_000_000, VolatileKind.TIMESTAMP),
        (1_700_000_000_123, VolatileKind.TIMESTAMP),
        ("2024-01-31", VolatileKind.DATE),
        ("d41d8cd98f00b204e9800998ecf8427e", VolatileKind.HASH),
        ("req-8f2K9x0Lq7Zw3Pn1", VolatileKind.TOKEN),
        (42, None), (True, None), ("premium", None), ("user_preferences_v2", None), ("1234567890123456789", None),
    ],
)  # fmt: skip
def test_volatile_values(value, kind):
    assert volatile_kind(value) is kind


def test_one_regression_across_many_exchanges_is_one_finding():
    pairs = [pair(s, f"/api/users/{s}", {"id": s, "plan": "premium"}, {"id": s, "plan": "free"}) for s in range(50)]
    findings = FindingsAccumulator()
    keys = [findings.add(c) for c in judge(*pairs)]
    [finding] = findings.findings()
    assert (finding.endpoint, finding.path, finding.change, finding.count) == ("GET /api/users/{id}", "body.plan",
                                                                               "changed", 50)  # fmt: skip
    assert [c.id for c in finding.examples] == ["s0000-GET /api/users/0", "s0001-GET /api/users/1",
                                                "s0002-GET /api/users/2"]  # fmt: skip
    assert dict(finding.values) == {("'premium'", "'free'"): 50} and finding.values_omitted == 0
    assert all(k == (finding.key,) for k in keys)
    assert finding.to_json() == {
        "status": "different", "endpoint": "GET /api/users/{id}", "path": "body.plan", "change": "changed",
        "count": 50, "examples": [{"exchange": f"s000{i}-GET /api/users/{i}", "session": i, "number": 0}
                                  for i in range(3)],
        "values": [{"old": "'premium'", "new": "'free'", "count": 50}], "values_omitted": 0, "message": None,
        "suggested_ignore": None,
    }  # fmt: skip
    assert findings.counts[ComparisonStatus.DIFFERENT] == 50 and findings.total == 50


def test_findings_split_by_endpoint_path_and_change_and_count_an_exchange_once_per_finding():
    items = {"items": [{"id": 1, "tag": "a"}, {"id": 2, "tag": "b"}]}
    changed_items = {"items": [{"id": 1, "tag": "x"}, {"id": 2, "tag": "y"}]}
    comparisons = judge(
        pair(0, "/api/cart/1", items, changed_items),  # two changes at body.items[*].tag: counted once
        pair(1, "/api/cart/2", {"a": 1}, {"a": 1, "b": 2}),
        pair(2, "/api/cart/3", {"a": 1, "b": 2}, {"a": 1}),
        pair(3, "/api/orders/9", {"a": 1}, {"a": 2}),
        pair(4, "/api/cart/4", {"a": 1}, {"a": 1}),  # same: no finding
    )
    findings = FindingsAccumulator()
    for comparison in comparisons:
        findings.add(comparison)
    assert [(f.endpoint, f.path, f.change, f.count) for f in findings.findings()] == [
        ("GET /api/cart/{id}", "body.b", "added", 1),
        ("GET /api/cart/{id}", "body.b", "removed", 1),
        ("GET /api/cart/{id}", "body.items[*].tag", "changed", 1),
        ("GET /api/orders/{id}", "body.a", "changed", 1),
    ]
    tags = findings.findings()[2]
    assert dict(tags.values) == {("'a'", "'x'"): 1}  # the first change of the exchange stands for it
    assert findings.counts[ComparisonStatus.SAME] == 1


def test_status_headers_and_missing_exchanges_have_their_own_paths():
    base, cand = pair(0, "/a", {"a": 1}, {"a": 1}, headers=(("X-Api", "1"),))
    cand = Exchange(0, 0, cand.request, HttpResponse("HTTP/1.1", 500, "OK", (("X-Api", "2"),), b""), "http")
    extra = Exchange(0, 1, request("/b"), response({}), "http")
    findings = FindingsAccumulator()
    for comparison in compare_sessions([base], [cand, extra]):
        findings.add(comparison)
    assert {(f.endpoint, f.path, f.change) for f in findings.findings()} == {
        ("GET /a", "status", "changed"), ("GET /a", "headers.x-api", "changed"), ("GET /a", "body", "changed"),
        ("GET /a", "headers.content-type", "removed"), ("GET /b", "exchange", "added"),
    }  # fmt: skip


def test_not_comparable_verdicts_group_by_endpoint_and_cause():
    base, _ = pair(0, "/slow/1", {"a": 1}, {"a": 1})
    other, _ = pair(1, "/slow/2", {"a": 1}, {"a": 1})
    problem = ReplayProblem(Cause.SUT_TOO_SLOW, "10 of 80 bytes after 5 s")
    findings = FindingsAccumulator()
    for comparison in compare_sessions([base], [], candidate_problems=[problem]) + compare_sessions(
        [other], [], candidate_problems=[ReplayProblem(Cause.SUT_TOO_SLOW, "0 of 80 bytes after 5 s")]
    ):
        findings.add(comparison)
    [finding] = findings.findings()
    assert (finding.endpoint, finding.path, finding.change, finding.count) == ("GET /slow/{id}", None,
                                                                               "sut_too_slow", 2)  # fmt: skip
    assert finding.message == "SUT too slow: 10 of 80 bytes after 5 s"
    assert finding.key.render() == "GET /slow/{id} not comparable (SUT too slow)"
    assert findings.causes == {"sut_too_slow": 2} and findings.counts[ComparisonStatus.NOT_COMPARABLE] == 2


def test_examples_and_value_pairs_are_bounded():
    pairs = [pair(s, f"/p/{s}", {"v": s % 7}, {"v": 100 + s % 7}) for s in range(30)]
    findings = FindingsAccumulator(max_examples=2, max_values=3)
    for comparison in judge(*pairs):
        findings.add(comparison)
    [finding] = findings.findings()
    assert finding.count == 30 and len(finding.examples) == 2
    assert len(finding.values) == 3 and sum(finding.values.values()) + finding.values_omitted == 30
    assert all(c.baseline is None and c.candidate is None and c.request is None for c in finding.examples)


def test_examples_are_the_first_in_the_capture_whatever_order_sessions_are_judged_in():
    pairs = [pair(s, f"/p/{s}", {"v": 1}, {"v": 2}) for s in (7, 3, 9, 0, 5, 1)]  # the order sessions end in
    findings = FindingsAccumulator(max_examples=3)
    for comparison in judge(*pairs):
        findings.add(comparison)
    [finding] = findings.findings()
    assert [c.session for c in finding.examples] == [0, 1, 3]


def test_long_values_in_findings_are_kept_short_around_their_difference():
    old, new = "x" * 500 + "premium" + "y" * 500, "x" * 500 + "free" + "y" * 500
    findings = FindingsAccumulator()
    for comparison in judge(pair(0, "/p", {"html": old}, {"html": new})):
        findings.add(comparison)
    [(shown_old, shown_new)] = findings.findings()[0].values
    assert "premium" in shown_old and "free" in shown_new and len(shown_old) < 200
    assert shown_old.startswith("[461:")  # offsets in the repr


def test_past_max_findings_further_findings_are_only_counted():
    pairs = [pair(s, f"/p{s}", {"v": 1}, {"v": 2}) for s in range(5)]
    findings = FindingsAccumulator(max_findings=3)
    for comparison in judge(*pairs):
        findings.add(comparison)
    assert len(findings.findings()) == 3 and findings.overflow == 2 and findings.total == 5


def test_volatile_looking_fields_get_a_suggested_ignore_path():
    comparisons = judge(
        pair(0, "/a", {"meta": {"request_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6"}, "items": [{"ts": 1700000000}]},
             {"meta": {"request_id": "9c1a2e64-5717-4562-b3fc-2c963f66afa6"}, "items": [{"ts": 1700000055}]}),
        pair(1, "/b", {"plan": "premium"}, {"plan": "free"}),
    )  # fmt: skip
    findings = FindingsAccumulator()
    for comparison in comparisons:
        findings.add(comparison)
    suggestions = {f.path: f.suggestion for f in findings.findings()}
    assert suggestions["body.meta.request_id"].path == "body.meta.request_id"
    assert suggestions["body.meta.request_id"].kind is VolatileKind.UUID
    assert suggestions["body.items[*].ts"].render() == "values look like timestamps: ignore path body.items[*].ts"
    assert suggestions["body.plan"] is None
    assert DiffConfig(ignore_paths=["body.meta.request_id", "body.items[*].ts"])  # a suggestion is a valid path


def test_a_finding_with_one_steady_value_is_not_called_volatile():
    uuid_a, uuid_b = "3fa85f64-5717-4562-b3fc-2c963f66afa6", "9c1a2e64-5717-4562-b3fc-2c963f66afa6"
    findings = FindingsAccumulator()
    for comparison in judge(pair(0, "/a", {"k": uuid_a}, {"k": uuid_b}), pair(1, "/a", {"k": "on"}, {"k": "off"})):
        findings.add(comparison)
    assert findings.findings()[0].suggestion is None


def test_the_accumulator_memory_does_not_grow_with_the_exchanges():
    """10,000 exchanges of one regression cost what 1,000 do: counts grow, kept state does not."""
    base, cand = pair(0, "/api/users/1", {"plan": "premium", "pad": "p" * 2000}, {"plan": "free", "pad": "p" * 2000})
    [comparison] = judge((base, cand))
    findings = FindingsAccumulator()

    def feed(n: int) -> int:
        tracemalloc.start()
        for _ in range(n):
            findings.add(comparison)
        current = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return current

    small = feed(1_000)
    large = feed(10_000)
    assert findings.findings()[0].count == 11_000
    assert large < 4096 and small < 4096 + 64 * 1024  # nothing kept per exchange past the first examples


def test_the_findings_of_a_comparison_can_be_looked_up_after_the_fact():
    comparisons = judge(*(pair(s, f"/api/users/{s}", {"plan": "premium"}, {"plan": "free"}) for s in range(5)))
    findings = FindingsAccumulator()
    for comparison in comparisons:
        findings.add(comparison)
    [key] = findings.keys_of(comparisons[4])
    finding = findings.finding(key)
    assert finding.count == 5 and comparisons[4].id not in [c.id for c in finding.examples]
    assert findings.total == 5  # looking up added nothing
