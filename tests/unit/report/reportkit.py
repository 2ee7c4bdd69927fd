"""Builds ReplayRuns from real compare-package pieces (no replay, no root) for report tests."""

from __future__ import annotations

from pathlib import Path

from pytest_tcpcopy.compare import (
    Cause,
    DiffConfig,
    Exchange,
    HttpRequest,
    HttpResponse,
    ReplayProblem,
    compare_sessions,
)
from pytest_tcpcopy.judging.verdicts import RunVerdicts
from pytest_tcpcopy.model import CaptureIndex, ReplayRun
from pytest_tcpcopy.replay.results import Outcome, ReplayResult, SessionResult
from pytest_tcpcopy.settings import Settings


def request(target: str = "/api/users/2", method: str = "GET", headers=(), body: bytes = b"") -> HttpRequest:
    return HttpRequest(method, target, "HTTP/1.1", (("Host", "sut"), *headers), body)


def response(body: bytes, status: int = 200, headers=(), content_type: str = "application/json") -> HttpResponse:
    base = (("Content-Type", content_type), ("Content-Length", str(len(body))))
    return HttpResponse("HTTP/1.1", status, "OK", (*base, *headers), body)


def exchange(session: int, number: int, req: HttpRequest, resp: HttpResponse | None) -> Exchange:
    return Exchange(session, number, req, resp, "http")


def session_result(session: int, outcome: str = "complete", reason: str = "closed by client",
                   copy: int = 0) -> SessionResult:  # fmt: skip
    return SessionResult(session, copy, f"10.0.0.{session + 1}:4000{session}", "", "", outcome=Outcome(outcome),
                         reason=reason, requests_sent=1)  # fmt: skip


def make_run(
    pairs: dict[int, tuple[list, list] | tuple[list, list, list]],
    outcomes: dict[int, tuple[str, str]] | None = None,
    *,
    config: DiffConfig | None = None,
    capture: str = "traffic.pcap",
    notes: tuple[str, ...] = (),
    problems: dict[int, list[ReplayProblem]] | None = None,
) -> ReplayRun:
    """A run whose session ``s`` compared ``pairs[s] = (baseline, candidate[, secondary])``
    exchange lists with the real ``compare_sessions``; ``outcomes`` overrides session outcomes,
    and a session that did not complete is a problem of the candidate's replay from its start;
    ``problems`` gives a session's problems instead."""
    outcomes = outcomes or {}
    settings = Settings().with_overrides({"pcap": capture, "port": 8080, "command": "app --release v2"}, "tests")
    index = CaptureIndex(Path(capture), len(pairs), frozenset(pairs), 0, {})
    sessions = [session_result(s, *outcomes.get(s, ("complete", "closed by client"))) for s in sorted(pairs)]
    redaction = (config or DiffConfig()).redaction
    run = ReplayRun(index, settings, ReplayResult(sessions, 1.0, list(notes)), verdicts=RunVerdicts(redaction))
    for s, sides in sorted(pairs.items()):
        base, cand, *second = sides
        cut = []
        outcome = outcomes.get(s)
        if outcome is not None and outcome[0] != "complete":
            cut.append(ReplayProblem(Cause.of_outcome(Outcome(outcome[0])), outcome[1]))
        comparisons = compare_sessions(base, cand, config or DiffConfig(), second[0] if second else None,
                                       candidate_problems=(problems or {}).get(s, cut))  # fmt: skip
        for comparison in comparisons:
            run.verdicts.add(comparison, outcome=outcome if outcome and outcome[0] != "complete" else None)
    for result in sessions:
        run.add_aborted(result, 200)
    return run


def user(plan: str, extra: str = "") -> bytes:
    return b'{"id": 2, "name": "Grace Hopper", "plan": "' + plan.encode() + b'"' + extra.encode() + b"}"


def regression_run() -> ReplayRun:
    """Session 0 the same, session 1 a changed plan, session 2 not comparable: the SUT took too long."""
    same = exchange(0, 0, request("/health"), response(b'{"ok": true}'))
    return make_run(
        {
            0: ([same], [same]),
            1: (
                [exchange(1, 0, request(), response(user("premium")))],
                [exchange(1, 0, request(), response(user("free"), headers=(("X-Service-Version", "2"),)))],
            ),
            2: ([exchange(2, 0, request("/api/orders", "POST"), response(b'{"order": 1}', 201))], []),
        },
        {2: ("timeout", "no response within 5 s")},
    )
