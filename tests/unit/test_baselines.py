"""Baseline strategies, one per kind: the SUTs each needs, what a session is compared with, and
what an exchange without a comparison means (no replay: results built by hand)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_tcpcopy.backends.base import SutSpec
from pytest_tcpcopy.baselines import (
    CaptureBaseline,
    NoBaseline,
    RecordedBaselineStrategy,
    SideBySideBaseline,
    Unjudged,
    strategy_for,
)
from pytest_tcpcopy.compare import ComparisonStatus, DiffConfig
from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.model import ReplayRun, index_capture
from pytest_tcpcopy.replay.results import ExchangeTiming, Outcome, ReplayResult, SessionResult
from pytest_tcpcopy.runner import judge
from pytest_tcpcopy.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jsonservice" / "traffic.pcap.gz"
CANDIDATE = SutSpec("candidate", 8080, image="svc:2", ready_timeout=5.0)


def settings(baseline: str, **more) -> Settings:
    return Settings().with_overrides({"baseline": baseline, "port": 8080, **more}, "test")


@pytest.mark.parametrize(
    ("baseline", "kind"),
    [("capture", CaptureBaseline), ("image:svc:1", SideBySideBaseline), ("command:app v1", SideBySideBaseline),
     ("dir:rec", RecordedBaselineStrategy), ("none", NoBaseline)],
)  # fmt: skip
def test_each_kind_has_its_strategy(baseline, kind):
    assert type(strategy_for(settings(baseline))) is kind


def test_the_suts_each_kind_needs():
    assert strategy_for(settings("capture")).suts(CANDIDATE) == [CANDIDATE]
    assert strategy_for(settings("none")).suts(CANDIDATE) == [CANDIDATE]
    assert strategy_for(settings("dir:rec")).suts(CANDIDATE) == [CANDIDATE]
    candidate, baseline = strategy_for(settings("image:svc:1")).suts(CANDIDATE)
    assert (baseline.name, baseline.image, baseline.port, baseline.ready_timeout) == ("baseline", "svc:1", 8080, 5.0)
    noisy = strategy_for(settings("image:svc:1", noise=True)).suts(CANDIDATE)
    assert [s.name for s in noisy] == ["candidate", "baseline", "baseline-2"] and noisy[2].image == "svc:1"
    netns = SutSpec("candidate", 8080, command=("app", "v2"))
    _, local = strategy_for(settings("command:app --release v1", backend="netns")).suts(netns)
    assert local.command == ("app", "--release", "v1") and local.image is None


@pytest.mark.parametrize(("baseline", "backend", "fix"), [("command:app", "docker", "--tcpcopy-baseline image:REF"),
                                                          ("image:svc:1", "netns", "--tcpcopy-baseline command:CMD")])
def test_a_side_by_side_baseline_of_the_other_backend_says_what_to_give(baseline, backend, fix):
    with pytest.raises(UsageError, match=fix):
        strategy_for(settings(baseline, backend=backend)).suts(CANDIDATE)


# -- judging with hand-built results ------------------------------------------------------------------


def replayed(index, session: int, answered: bool, outcome: Outcome = Outcome.COMPLETE) -> SessionResult:
    """The candidate answering ``session`` as production did (or with nothing at all)."""
    captured = index.sessions[session]
    result = SessionResult(session, 0, str(captured.client), "", "", outcome, "closed by sut")
    offset = 0
    response = captured.server_stream.data() if answered else b""
    for exchange in index.exchanges[session]:
        result.exchanges.append(ExchangeTiming(exchange.request.offset, 1, 0.0))
    if result.exchanges:
        result.exchanges[0].response_bytes = len(response)
    if response:
        result.response_chunks[offset] = response
        result.response_bytes = len(response)
    return result


def run_of(baseline: str, answered: dict[int, bool], **more) -> ReplayRun:
    current = settings(baseline, **more)
    index = index_capture(EXAMPLE, current)
    results = [replayed(index, s, ok, Outcome.COMPLETE if ok else Outcome.SUT_RESET) for s, ok in answered.items()]
    run = ReplayRun(index, current, ReplayResult(results, 1.0))
    judge(run, strategy_for(current), DiffConfig())
    return run


def test_capture_baseline_judges_what_the_candidate_answered():
    run = run_of("capture", {0: True, 1: False})
    assert {c.status for (s, _), c in run.comparisons.items() if s == 0} == {ComparisonStatus.SAME}
    assert {c.failed for (s, _), c in run.comparisons.items() if s == 1} == {True}
    verdict = strategy_for(run.settings).unjudged(run, 2, 0, "s0002-GET /x")
    assert verdict.outcome is Unjudged.FAILED and "not replayed" in verdict.message


def test_without_a_baseline_nothing_is_compared_and_answered_exchanges_pass():
    run = run_of("none", {0: True, 1: False})
    assert run.comparisons == {} and run.without_baseline == {0, 1}
    strategy = strategy_for(run.settings)
    answered = run.capture.exchanges[0][0]
    assert strategy.unjudged(run, 0, answered.number, answered.id).outcome is Unjudged.PASSED
    unanswered = run.capture.exchanges[1][0]
    verdict = strategy.unjudged(run, 1, unanswered.number, unanswered.id)
    assert verdict.outcome is Unjudged.FAILED
    assert verdict.message == f"{unanswered.id}: no response from the candidate (sut_reset: closed by sut)"
    assert strategy.unjudged(run, 2, 0, "s0002-x").outcome is Unjudged.FAILED  # not replayed at all


def test_a_recorded_baseline_update_run_records_passes_and_says_what_it_wrote(tmp_path):
    record = f"dir:{tmp_path / 'rec'}"
    folder = tmp_path / "rec" / EXAMPLE.name
    first, said = finished(record, {0: True, 1: True}, update_baseline=True)
    assert first.comparisons == {} and first.without_baseline == {0, 1}  # an update run compares nothing
    assert strategy_for(first.settings).unjudged(first, 0, 0, "x").outcome is Unjudged.PASSED
    assert said == [f"recorded baseline {folder}: 2 written, 0 unchanged, 0 removed"]
    assert finished(record, {0: True, 1: True}, update_baseline=True)[1] == [
        f"recorded baseline {folder}: 0 written, 2 unchanged, 0 removed"]  # fmt: skip
    again = run_of(record, {0: True, 1: False})
    assert {c.status for (s, _), c in again.comparisons.items() if s == 0} == {ComparisonStatus.SAME}
    assert {c.failed for (s, _), c in again.comparisons.items() if s == 1} == {True}
    assert strategy_for(again.settings).finish(again) == []  # not an update run: nothing written


def test_a_missing_recording_fails_with_the_command_that_records_it(tmp_path):
    record = f"dir:{tmp_path / 'rec'}"
    finished(record, {0: True}, update_baseline=True)
    run = run_of(record, {0: True, 2: True}, image="svc:1")
    assert run.without_baseline == {2}
    verdict = strategy_for(run.settings).unjudged(run, 2, 0, "s0002-GET /x")
    assert verdict.outcome is Unjudged.FAILED
    command = (f"pytest {EXAMPLE} --tcpcopy-image svc:1 --tcpcopy-port 8080 --tcpcopy-baseline dir:{tmp_path / 'rec'} "
               "--tcpcopy-update-baseline")  # fmt: skip
    assert verdict.message.splitlines() == [
        f"s0002-GET /x: no recorded baseline: no recording of this session ({tmp_path / 'rec' / EXAMPLE.name / 's0002.json'})",
        "record it with the release to compare against:", f"  {command}"]  # fmt: skip
    assert strategy_for(run.settings).finish(run) == [
        f"recorded baseline {tmp_path / 'rec' / EXAMPLE.name}: 1 session(s) without a recording; record them with the "
        f"release to compare against: {command}"]  # fmt: skip


def test_an_update_removes_recordings_of_sessions_the_capture_no_longer_has(tmp_path):
    record = f"dir:{tmp_path / 'rec'}"
    folder = tmp_path / "rec" / EXAMPLE.name
    finished(record, {0: True, 1: True, 2: True}, update_baseline=True)
    gone = folder / "s9999.json"
    gone.write_text((folder / "s0002.json").read_text())  # a session index the capture does not have
    moved = folder / "s0002.json"  # the capture's session 2 now has another client: the capture changed
    moved.write_text(moved.read_text().replace('"client": "', '"client": "10.9.9.9:1', 1))
    notes = folder / "README"
    notes.write_text("not a recording: never touched")
    compared, said = finished(record, {0: True, 2: True})
    assert compared.without_baseline == {2}
    assert "was recorded for another session" in strategy_for(compared.settings).unjudged(compared, 2, 0, "x").message
    assert said[-1] == (f"recorded baseline {folder}: 2 recording(s) of sessions the capture no longer has; "
                        "--tcpcopy-update-baseline removes them")  # fmt: skip
    assert finished(record, {0: True}, update_baseline=True, baseline_keep_unused=True)[1][0].endswith(
        "0 written, 1 unchanged, 0 removed")  # fmt: skip
    assert gone.exists() and moved.exists()
    # Sessions 1 and 2 did not run: 1 stays, 2 goes (the capture's session 2 is another session).
    assert finished(record, {0: True}, update_baseline=True)[1][0].endswith("0 written, 1 unchanged, 2 removed")
    assert sorted(p.name for p in folder.iterdir()) == ["README", "s0000.json", "s0001.json"]


def test_a_cut_response_is_recorded_as_such_and_never_compared(tmp_path):
    record = f"dir:{tmp_path / 'rec'}"
    current = settings(record, update_baseline=True)
    index = index_capture(EXAMPLE, current)
    result = replayed(index, 0, True)
    result.exchanges[0].cut = "SUT too slow: 10 of 120 bytes after 5.0 s"
    run = ReplayRun(index, current, ReplayResult([result], 1.0))
    judge(run, strategy_for(current), DiffConfig())
    strategy_for(current).finish(run)
    verdict = strategy_for(current).unjudged(run, 0, 0, "s0000-GET /health")
    assert verdict.outcome is Unjudged.FAILED
    assert verdict.message == ("s0000-GET /health: recorded, but its response was cut (SUT too slow: 10 of 120 bytes "
                               "after 5.0 s); it is not compared until it is recorded whole")  # fmt: skip
    doc = json.loads((tmp_path / "rec" / EXAMPLE.name / "s0000.json").read_text())
    first = doc["exchanges"][0]
    assert (first["complete"], first["cut"]) == (False, "SUT too slow: 10 of 120 bytes after 5.0 s")
    comparison = run_of(record, {0: True}).comparisons[(0, 0)]
    assert comparison.status is ComparisonStatus.NOT_COMPARABLE
    assert comparison.reason == ("baseline exchange not clean: recorded response cut: SUT too slow: 10 of 120 bytes "
                                 "after 5.0 s")  # fmt: skip


def finished(baseline: str, answered: dict[int, bool], **more) -> tuple[ReplayRun, list[str]]:
    """A judged run and what its strategy said when it finished (an update run records then)."""
    run = run_of(baseline, answered, **more)
    return run, strategy_for(run.settings).finish(run)
