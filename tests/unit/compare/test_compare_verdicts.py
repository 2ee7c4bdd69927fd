"""The three verdicts: same, different, not comparable with a named cause; never mixed."""

from __future__ import annotations

import pytest
from comparekit import C, S, captured, replay_result

from pytest_tcpcopy.compare import (
    Cause,
    ComparisonStatus,
    DiffConfig,
    Exchange,
    ExchangeComparison,
    HttpRequest,
    ReplayProblem,
    compare_sessions,
    exchanges_from_capture,
    exchanges_from_replay,
)
from pytest_tcpcopy.compare.verdict import MAX_LOG_LINES, NotComparable
from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.replay.results import Outcome


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: sut\r\n\r\n".encode()


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


A, B, D = ok(b'{"n": 1}'), ok(b'{"n": 2}'), ok(b'{"n": 3}')
SESSION = captured([(C, get("/a")), (S, A), (C, get("/b")), (S, B), (C, get("/c")), (S, D)])
OFFSETS = [0, len(get("/a")), len(get("/a")) + len(get("/b"))]  # where each request starts


def candidate(responses: list[bytes]) -> list[Exchange]:
    return exchanges_from_replay(SESSION, replay_result(SESSION, responses))


BASELINE = exchanges_from_capture(SESSION)


def statuses(comparisons) -> list[str]:
    return [c.status.value for c in comparisons]


def test_same_and_different_are_judged_as_before():
    comparisons = compare_sessions(BASELINE, candidate([A, ok(b'{"n": 9}'), D]))
    assert statuses(comparisons) == ["same", "different", "same"]
    assert [c.failed for c in comparisons] == [False, True, False]
    assert [c.id for c in comparisons] == ["s0000-GET /a", "s0000-GET /b", "s0000-GET /c"]
    assert [(c.session, c.number) for c in comparisons] == [(0, 0), (0, 1), (0, 2)]


def test_a_timed_out_exchange_and_the_ones_after_it_are_not_comparable_not_different():
    cut = candidate([A, B[:40]])  # the SUT sent 40 bytes of the second response, then the replay gave up
    problem = ReplayProblem(Cause.SUT_TOO_SLOW, "40 of 79 bytes after 5 s", request_offset=OFFSETS[1])
    comparisons = compare_sessions(BASELINE, cut, candidate_problems=[problem])
    assert statuses(comparisons) == ["same", "not_comparable", "not_comparable"]
    second, third = comparisons[1:]
    assert second.cause.cause is Cause.SUT_TOO_SLOW and third.cause.cause is Cause.SUT_TOO_SLOW
    assert second.reason == "SUT too slow: 40 of 79 bytes after 5 s"
    assert second.render() == "s0000-GET /b: not comparable: SUT too slow: 40 of 79 bytes after 5 s"
    assert third.render().startswith("s0000-GET /c: not comparable: SUT too slow")
    assert not any(c.failed for c in comparisons)
    assert compare_sessions(BASELINE, cut)[1].status is ComparisonStatus.DIFFERENT  # without the problem


def test_a_problem_never_hides_what_differed_before_it_or_an_exchange_that_is_the_same():
    wrong_then_reset = candidate([ok(b'{"n": 0}'), B])
    problem = ReplayProblem(Cause.SUT_RESET, "reset after 2 requests", request_offset=OFFSETS[2])
    comparisons = compare_sessions(BASELINE, wrong_then_reset, candidate_problems=[problem])
    assert statuses(comparisons) == ["different", "same", "not_comparable"]
    assert comparisons[2].reason == "SUT reset the connection: reset after 2 requests"


def test_the_nearest_problem_names_the_cause_and_a_session_wide_one_covers_everything():
    slow = ReplayProblem(Cause.SUT_TOO_SLOW, "slow", request_offset=OFFSETS[1])
    died = ReplayProblem(Cause.SUT_DIED, "exit 137", request_offset=OFFSETS[2])
    comparisons = compare_sessions(BASELINE, candidate([A]), candidate_problems=[died, slow])
    assert [c.cause.cause if c.cause else None for c in comparisons] == [None, Cause.SUT_TOO_SLOW, Cause.SUT_DIED]
    whole = ReplayProblem(Cause.NOT_REPLAYED, "the intercept died")
    comparisons = compare_sessions(BASELINE, [], candidate_problems=[whole])
    assert [c.reason for c in comparisons] == ["session not replayed: the intercept died"] * 3


def test_a_clean_candidate_answering_fewer_exchanges_is_different():
    comparisons = compare_sessions(BASELINE, candidate([A]))
    assert statuses(comparisons) == ["same", "different", "different"]
    assert [c.diff.changes[0].where for c in comparisons[1:]] == ["response", "response"]


def test_problems_of_the_baseline_replay_make_its_cut_exchanges_not_comparable():
    cut_baseline = candidate([A, B[:30]])
    problem = ReplayProblem(Cause.SUT_TOO_SLOW, "30 of 79 bytes after 5 s", request_offset=OFFSETS[1])
    comparisons = compare_sessions(cut_baseline, BASELINE, baseline_problems=[problem])
    assert statuses(comparisons) == ["same", "not_comparable", "not_comparable"]
    assert comparisons[1].cause.on_baseline
    assert comparisons[1].reason == "baseline replay: SUT too slow: 30 of 79 bytes after 5 s"


def test_a_baseline_exchange_that_is_not_clean_is_not_comparable_whatever_the_candidate():
    session = captured([(C, get("/a")), (S, A[:20], "lost"), (S, A[20:])])
    [comparison] = compare_sessions(exchanges_from_capture(session), candidate([A])[:1])
    assert comparison.status is ComparisonStatus.NOT_COMPARABLE and comparison.cause.cause is Cause.BASELINE_UNCLEAN
    assert "gap" in comparison.reason and comparison.diff is None


def test_a_comparison_names_its_exchange_when_neither_side_has_it():
    captured_exchange = BASELINE[1]
    comparison = ExchangeComparison.not_comparable(
        captured_exchange, ReplayProblem(Cause.NO_RECORDED_BASELINE, "run with --tcpcopy-update-baseline")
    )
    assert comparison.baseline is None and comparison.candidate is None
    assert (comparison.id, comparison.session, comparison.number) == ("s0000-GET /b", 0, 1)
    assert isinstance(comparison.request, HttpRequest) and comparison.request.target == "/b"
    assert comparison.render() == (
        "s0000-GET /b: not comparable: no recorded baseline: run with --tcpcopy-update-baseline"
    )
    assert comparison.to_json()["exchange"] == "s0000-GET /b" and repr(comparison).startswith("<ExchangeComparison")


def test_verdict_kinds_never_mix():
    cause = NotComparable(Cause.SUT_DIED)
    with pytest.raises(UsageError, match="cause goes with a not comparable verdict"):
        ExchangeComparison("x", 0, 0, ComparisonStatus.DIFFERENT, cause=cause)
    with pytest.raises(UsageError, match="cause goes with a not comparable verdict"):
        ExchangeComparison("x", 0, 0, ComparisonStatus.NOT_COMPARABLE)
    with pytest.raises(UsageError, match="diff goes with a different verdict"):
        ExchangeComparison("x", 0, 0, ComparisonStatus.DIFFERENT)
    assert [s.value for s in ComparisonStatus] == ["same", "different", "not_comparable"]


def test_a_dead_suts_log_tail_comes_with_its_cause_bounded_and_redacted():
    logs = "\n".join(f"line {i}" for i in range(100)) + "\npassword=hunter2"
    problem = ReplayProblem(Cause.SUT_DIED, "exit code 139", log_tail=logs)
    [comparison] = compare_sessions(BASELINE[:1], [], candidate_problems=[problem])
    tail = comparison.cause.log_tail.splitlines()
    assert len(tail) == MAX_LOG_LINES and tail[-1] == "password=[redacted]" and tail[0] == "line 61"
    text = comparison.render()
    head = ["s0000-GET /a: not comparable: SUT died: exit code 139", "  --- SUT log (tail) ---"]
    assert text.splitlines()[:2] == head
    assert "hunter2" not in text + repr(comparison.to_json())


@pytest.mark.parametrize(
    ("outcome", "cause"),
    [
        (Outcome.COMPLETE, None),
        (Outcome.TIMEOUT, Cause.SUT_TOO_SLOW),
        (Outcome.SUT_RESET, Cause.SUT_RESET),
        (Outcome.NOT_ESTABLISHED, Cause.SUT_REFUSED),
        (Outcome.ABORTED, Cause.REPLAY_ABORTED),
        (Outcome.UNFINISHED, Cause.REPLAY_STOPPED),
        (Outcome.NOT_REPLAYED, Cause.NOT_REPLAYED),
    ],
)
def test_every_session_outcome_maps_to_a_cause(outcome, cause):
    assert Cause.of_outcome(outcome) is cause


def test_every_cause_has_a_message():
    assert all(cause.title and cause.title[0] != " " for cause in Cause)
    assert NotComparable(Cause.BASELINE_MISSING).message == "the baseline lacks this session"


def test_noise_stays_apart_from_a_same_verdict():
    primary, second, cand = (candidate([ok(b'{"t": %d}' % n)])[:1] for n in (1, 2, 3))
    [comparison] = compare_sessions(primary, cand, DiffConfig(), second)
    assert comparison.status is ComparisonStatus.SAME and comparison.noise.changes[0].where == "body.t"
