"""Baseline strategies, one per kind: the SUTs each needs, what a session is compared with, and
how a session is judged; through the streaming judge, with results built by hand (no replay)."""

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
    strategy_for,
)
from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.compare import Cause, ComparisonStatus, DiffConfig, exchanges_from_capture
from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.flows.assembler import assemble_sessions
from pytest_tcpcopy.judging.stream import StreamingJudge
from pytest_tcpcopy.judging.verdicts import RunVerdicts
from pytest_tcpcopy.model import ReplayRun, index_capture
from pytest_tcpcopy.replay.results import ExchangeTiming, Outcome, ReplayResult, SessionResult
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

SAME, DIFFERENT, NOT_COMPARABLE = ComparisonStatus.SAME, ComparisonStatus.DIFFERENT, ComparisonStatus.NOT_COMPARABLE


def captured() -> dict:
    with open_capture(EXAMPLE) as reader:
        return {s.index: s for s in assemble_sessions(reader)}


CAPTURED = captured()


def replayed(session: int, answered: bool, outcome: Outcome = Outcome.COMPLETE) -> SessionResult:
    """The candidate answering ``session`` as production did (or with nothing at all)."""
    captured_session = CAPTURED[session]
    result = SessionResult(session, 0, str(captured_session.client), "", "", outcome, "closed by sut")
    response = captured_session.server_stream.data() if answered else b""
    for exchange in exchanges_from_capture(captured_session):
        end = "framing" if answered else None  # a response never judged over: the session ended first
        result.exchanges.append(ExchangeTiming(exchange.request.offset, 1, 0.0, response_end=end))
    if result.exchanges:
        result.exchanges[0].response_bytes = len(response)
    if response:
        result.response_chunks[0] = response
        result.response_bytes = len(response)
    return result


def run_of(baseline: str, results: dict[int, SessionResult], baselines: dict[int, SessionResult] | None = None,
           **more) -> tuple[ReplayRun, list[str]]:  # fmt: skip
    """The run judged from the candidate's ``results`` (and a side-by-side baseline's), and what
    its strategy said at the end."""
    current = settings(baseline, **more)
    index = index_capture(EXAMPLE, current)
    run = ReplayRun(index, current, ReplayResult([], 1.0), verdicts=RunVerdicts(per_exchange=True))
    strategy = strategy_for(current)
    names = ["candidate"] if baselines is None else ["candidate", "baseline"]
    judge = StreamingJudge(run, strategy, DiffConfig(), names)
    for result in results.values():
        judge.on_session("candidate", result)
    for result in (baselines or {}).values():
        judge.on_session("baseline", result)
    judge.finish()
    return run, strategy.finish(run)


def statuses(run: ReplayRun, session: int) -> set:
    return {run.verdicts.item(session, e.number).status for e in exchanges_from_capture(CAPTURED[session])}


def message(run: ReplayRun, session: int) -> str:
    return run.verdicts.item(session, 0).message


def test_capture_baseline_judges_what_the_candidate_answered_and_names_why_it_could_not():
    run, _ = run_of("capture", {0: replayed(0, True), 1: replayed(1, False, Outcome.SUT_RESET),
                             3: replayed(3, False)})  # fmt: skip
    assert statuses(run, 0) == {SAME}
    assert statuses(run, 1) == {NOT_COMPARABLE} and message(run, 1) == "SUT reset the connection: closed by sut"
    assert statuses(run, 2) == {NOT_COMPARABLE}  # never reported: not replayed, never silently absent
    assert message(run, 2) == "session not replayed: the copier reported no result for it"
    assert statuses(run, 3) == {DIFFERENT}  # a clean replay that answered nothing differs
    counts = run.verdicts.counts
    assert counts[SAME] + counts[DIFFERENT] + counts[NOT_COMPARABLE] == run.capture.exchanges == 54


def test_without_a_baseline_an_answer_is_enough_and_a_clean_silence_differs():
    run, _ = run_of("none", {0: replayed(0, True), 1: replayed(1, False, Outcome.SUT_RESET), 3: replayed(3, False)})
    assert statuses(run, 0) == {SAME}
    assert statuses(run, 1) == {NOT_COMPARABLE}
    assert statuses(run, 2) == {NOT_COMPARABLE}  # not replayed
    assert statuses(run, 3) == {DIFFERENT}
    [finding] = [f for f in run.verdicts.findings.findings() if f.key.status is DIFFERENT]
    assert (finding.path, finding.change) == ("response", "changed")


def test_a_side_by_side_baseline_that_lacks_a_session_makes_it_not_comparable():
    run, _ = run_of("command:app v1", {0: replayed(0, True), 1: replayed(1, True)}, {0: replayed(0, True)},
                 backend="netns")  # fmt: skip
    assert statuses(run, 0) == {SAME}
    assert statuses(run, 1) == {NOT_COMPARABLE}
    assert message(run, 1) == "the baseline lacks this session: the baseline's replay reported no result for it"


def test_a_recorded_baseline_update_run_records_passes_and_says_what_it_wrote(tmp_path):
    record = f"dir:{tmp_path / 'rec'}"
    folder = tmp_path / "rec" / EXAMPLE.name
    first, told = run_of(record, {0: replayed(0, True), 1: replayed(1, True)}, update_baseline=True)
    assert statuses(first, 0) == statuses(first, 1) == {SAME}  # recorded whole: an update run compares nothing
    assert told == [f"recorded baseline {folder}: 2 written, 0 unchanged, 0 removed"]
    _, told = run_of(record, {0: replayed(0, True), 1: replayed(1, True)}, update_baseline=True)
    assert told == [f"recorded baseline {folder}: 0 written, 2 unchanged, 0 removed"]
    again, told = run_of(record, {0: replayed(0, True), 1: replayed(1, False)})
    assert statuses(again, 0) == {SAME}
    assert statuses(again, 1) == {DIFFERENT}
    assert statuses(again, 2) == {NOT_COMPARABLE}  # not replayed (and never recorded)
    assert told == []  # not an update run: nothing written


def test_a_missing_recording_is_not_comparable_and_names_the_command_that_records_it(tmp_path):
    record = f"dir:{tmp_path / 'rec'}"
    run_of(record, {0: replayed(0, True)}, update_baseline=True)
    run, told = run_of(record, {0: replayed(0, True), 2: replayed(2, True)}, image="svc:1")
    command = (f"pytest {EXAMPLE} --tcpcopy-image svc:1 --tcpcopy-port 8080 --tcpcopy-baseline dir:{tmp_path / 'rec'} "
               "--tcpcopy-update-baseline")  # fmt: skip
    assert statuses(run, 0) == {SAME} and statuses(run, 2) == {NOT_COMPARABLE}
    assert message(run, 2) == (f"no recorded baseline: no recording of this session "
                               f"({tmp_path / 'rec' / EXAMPLE.name / 's0002.json'}); record it with the release to "
                               f"compare against: {command}")  # fmt: skip
    assert told == [f"recorded baseline {tmp_path / 'rec' / EXAMPLE.name}: 1 session(s) without a recording; record "
                    f"them with the release to compare against: {command}"]  # fmt: skip


def test_an_update_removes_recordings_of_sessions_the_capture_no_longer_has(tmp_path):
    record = f"dir:{tmp_path / 'rec'}"
    folder = tmp_path / "rec" / EXAMPLE.name
    run_of(record, {0: replayed(0, True), 1: replayed(1, True), 2: replayed(2, True)}, update_baseline=True)
    gone = folder / "s9999.json"
    gone.write_text((folder / "s0002.json").read_text())  # a session index the capture does not have
    moved = folder / "s0002.json"  # the capture's session 2 now has another client: the capture changed
    moved.write_text(moved.read_text().replace('"client": "', '"client": "10.9.9.9:1', 1))
    notes = folder / "README"
    notes.write_text("not a recording: never touched")
    compared, told = run_of(record, {0: replayed(0, True), 2: replayed(2, True)})
    assert statuses(compared, 2) == {NOT_COMPARABLE} and "was recorded for another session" in message(compared, 2)
    assert told[-1] == (f"recorded baseline {folder}: 2 recording(s) of sessions the capture no longer has; "
                        "--tcpcopy-update-baseline removes them")  # fmt: skip
    _, told = run_of(record, {0: replayed(0, True)}, update_baseline=True, baseline_keep_unused=True)
    assert told == [f"recorded baseline {folder}: 0 written, 1 unchanged, 0 removed"]
    assert gone.exists() and moved.exists()
    # Session 2 replayed under its new client: its old file goes with the one past the capture.
    _, told = run_of(record, {0: replayed(0, True), 2: replayed(2, True)}, update_baseline=True)
    assert told == [f"recorded baseline {folder}: 1 written, 1 unchanged, 1 removed"]
    assert sorted(p.name for p in folder.iterdir()) == ["README", "s0000.json", "s0001.json", "s0002.json"]
    # Sessions 1 and 2 did not run: they keep their files.
    assert run_of(record, {0: replayed(0, True)}, update_baseline=True)[1] == [
        f"recorded baseline {folder}: 0 written, 1 unchanged, 0 removed"]  # fmt: skip


def test_a_cut_response_is_recorded_as_such_and_never_compared(tmp_path):
    record = f"dir:{tmp_path / 'rec'}"
    result = replayed(0, True)
    result.exchanges[0].cut = "SUT too slow: 10 of 120 bytes after 5.0 s"
    run, _ = run_of(record, {0: result}, update_baseline=True)
    assert run.verdicts.item(0, 0).status is NOT_COMPARABLE  # not recorded whole: an error, never a pass
    assert run.verdicts.item(0, 0).message == "SUT too slow: 10 of 120 bytes after 5.0 s"
    doc = json.loads((tmp_path / "rec" / EXAMPLE.name / "s0000.json").read_text())
    first = doc["exchanges"][0]
    assert (first["complete"], first["cut"]) == (False, "SUT too slow: 10 of 120 bytes after 5.0 s")
    compared, _ = run_of(record, {0: replayed(0, True)})
    assert compared.verdicts.item(0, 0).status is NOT_COMPARABLE
    assert "recorded response cut: SUT too slow: 10 of 120 bytes after 5.0 s" in compared.verdicts.item(0, 0).message
