"""Sanity checks that stop a green lie: their thresholds, their messages, and the counters a judged
run feeds (no replay: hand-built results)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tcpcopy.baselines import strategy_for
from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.compare import DiffConfig, exchanges_from_capture
from pytest_tcpcopy.flows.assembler import assemble_sessions
from pytest_tcpcopy.flows.session import CapturedSession
from pytest_tcpcopy.judging.stream import StreamingJudge
from pytest_tcpcopy.model import ReplayRun, index_capture
from pytest_tcpcopy.replay.results import ExchangeTiming, Outcome, ReplayResult, SessionResult
from pytest_tcpcopy.sanity import DISAGREE_SHARE, MIN_EXCHANGES, SAME_ERROR_SHARE, SanityCounters, sanity_lines
from pytest_tcpcopy.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jsonservice" / "traffic.pcap.gz"


def counters(*rows: tuple[int, tuple[int | None, int | None, int | None]], sut_port=8080, ports=(8080,)):
    out = SanityCounters(sut_port, ports)
    for n, statuses in rows:
        for _ in range(n):
            out.add(*statuses)
    return out


def checks(found: SanityCounters) -> list[str]:
    return [problem.check for problem in found.problems()]


def test_the_thresholds_are_what_the_docs_say():
    assert (MIN_EXCHANGES, SAME_ERROR_SHARE, DISAGREE_SHARE) == (5, 0.9, 0.5)


def test_the_same_error_nearly_everywhere_fails_the_run():
    found = counters((9, (404, 404, 200)), (1, (200, 200, 200)))
    [problem] = found.problems()
    assert (problem.check, problem.fails) == ("same-error", True)
    assert problem.message.startswith("9 of 10 exchanges got the same error status from the candidate and the "
                                      "baseline (404 x9); production answered 9 of them below 400: ")  # fmt: skip
    assert checks(counters((8, (404, 404, 404)), (2, (200, 200, 200)))) == []  # 80 %: not nearly every one
    assert checks(counters((4, (500, 500, 500)))) == []  # too few to say anything
    assert checks(counters((9, (404, 500, 500)), (1, (200, 200, 200)))) == []  # errors, but not the same


def test_a_baseline_that_does_not_reproduce_production_fails_the_run():
    found = counters((6, (200, 404, 200)), (4, (200, 200, 200)))
    [problem] = found.problems()
    assert (problem.check, problem.fails) == ("baseline-disagrees", True)
    assert "the baseline answered 6 of 10 exchanges with another status than production did in the capture " \
           "(production -> baseline: 200 -> 404 x6)" in problem.message  # fmt: skip
    assert checks(counters((5, (200, 404, 200)), (5, (200, 200, 200)))) == []  # half: not most
    assert checks(counters((10, (200, None, 200)))) == []  # no baseline status (not HTTP, no answer)


def test_a_capture_baseline_is_production_and_never_disagrees():
    assert checks(counters((10, (500, 200, 200)))) == []


def test_a_port_other_than_the_capture_s_is_a_warning_and_a_hint():
    [problem] = counters((10, (200, 200, 200)), sut_port=8081).problems()
    assert (problem.check, problem.fails) == ("port", False)
    assert problem.message.startswith("the SUT listens on port 8081, the captured sessions went to port 8080")
    both = counters((10, (404, 404, 200)), sut_port=8081).problems()
    assert [p.check for p in both] == ["same-error", "port"]
    assert "note the SUT's port 8081 is not the capture's (8080)" in both[0].message
    assert checks(counters((10, (200, 200, 200)), sut_port=8081, ports=())) == []  # ports unknown: nothing said


def test_the_summary_lines_are_loud_only_when_the_run_fails():
    problems = [("traffic.pcap.gz", p) for p in counters((10, (404, 404, 200)), sut_port=8081).problems()]
    lines = sanity_lines(problems, fail=True)
    assert [loud for _, loud in lines] == [True, False, True]
    assert lines[0][0].startswith("SANITY CHECK FAILED: traffic.pcap.gz: 10 of 10 exchanges")
    assert lines[1][0].startswith("sanity warning: traffic.pcap.gz: the SUT listens on port 8081")
    assert lines[2][0] == ("the run fails its sanity checks (exit status 1); if the set-up is right, "
                           "--tcpcopy-sanity warn only warns")  # fmt: skip
    assert [loud for _, loud in sanity_lines(problems, fail=False)] == [False, False]


# -- what a judged run feeds ------------------------------------------------------------------------


def captured() -> dict:
    with open_capture(EXAMPLE) as reader:
        return {s.index: s for s in assemble_sessions(reader)}


def answered_404(session: CapturedSession) -> SessionResult:
    """A SUT that answers every request of ``session`` with 404."""
    result = SessionResult(session.index, 0, str(session.client), "", "", Outcome.COMPLETE, "closed by sut")
    response = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    exchanges = exchanges_from_capture(session)
    for exchange in exchanges:
        result.exchanges.append(ExchangeTiming(exchange.request.offset, 1, 0.0, response_bytes=len(response),
                                               response_end="framing"))  # fmt: skip
    if exchanges:
        result.response_chunks[0] = response * len(exchanges)
        result.response_bytes = len(result.response_chunks[0])
    return result


@pytest.mark.parametrize(("baseline", "expected"), [("image:svc:1", ["same-error"]), ("capture", [])])
def test_a_judged_run_feeds_the_counters(baseline, expected):
    """Both releases answer 404 to the example's traffic: a side-by-side baseline agrees with the
    candidate (every item would pass) and the run is found suspect; against production's own
    responses the candidate simply differs (every item fails), so nothing more is said."""
    settings = Settings().with_overrides({"baseline": baseline, "port": 8080}, "test")
    index = index_capture(EXAMPLE, settings)
    sessions = captured()
    run = ReplayRun(index, settings, ReplayResult([], 1.0), sanity=SanityCounters(8080, index.server_ports))
    names = ["candidate", "baseline"] if baseline != "capture" else ["candidate"]
    judge = StreamingJudge(run, strategy_for(settings), DiffConfig(), names)
    for s in sorted(index.selected):
        for name in names:
            judge.on_session(name, answered_404(sessions[s]))
    judge.finish()
    found = run.sanity
    assert sum(found.statuses.values()) == run.verdicts.total == 54
    assert checks(found) == expected
    if expected:
        assert found.problems()[0].message.startswith("54 of 54 exchanges got the same error status from the "
                                                      "candidate and the baseline (404 x54); production answered "
                                                      "49 of them below 400")  # fmt: skip
