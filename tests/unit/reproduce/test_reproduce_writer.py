"""Which examples get reproducers (bounds per finding and per run), the folders and index a run
writes, and what happens to examples that cannot be reproduced."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from reprokit import Conversation, http_exchanges, write_capture

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.compare import (
    Cause,
    ComparisonStatus,
    FindingsAccumulator,
    HttpResponse,
    ReplayProblem,
    compare_sessions,
    exchanges_from_capture,
)
from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.flows import assemble_sessions
from pytest_tcpcopy.reproduce import (
    Example,
    ReproducerConfig,
    RerunTarget,
    SliceMode,
    choose_examples,
    write_reproducer,
    write_reproducers,
)

TARGET = RerunTarget(8080, image="svc:v2", capture_ports=(8080,))


def users_capture(path: Path, sessions: int) -> Path:
    """``sessions`` sessions, each GET /api/users/<n> and GET /health."""
    conversations = []
    for n in range(sessions):
        c = Conversation((f"10.3.0.{n + 1}", 40000 + n), ("10.3.0.9", 8080), 100.0 + n * 0.01).handshake()
        for request, response in http_exchanges(f"/api/users/{n}") + http_exchanges("/health"):
            c.turn(request, response)
        conversations.append(c.close())
    return write_capture(path, *conversations)


def findings_of(capture: Path, *, dead: set[int] = frozenset(), max_examples: int = 3) -> FindingsAccumulator:
    """The candidate answers every /api/users/<n> with another body; sessions in ``dead`` were
    cut by a dying SUT (not comparable)."""
    findings = FindingsAccumulator(max_examples=max_examples)
    with open_capture(capture) as reader:
        sessions = list(assemble_sessions(reader, [8080]))
    for session in sessions:
        baseline = exchanges_from_capture(session)
        candidate = [replace(e, response=_changed(e.response)) if "users" in e.id else e for e in baseline]
        problems = [ReplayProblem(Cause.SUT_DIED, "exit 1")] if session.index in dead else []
        for comparison in compare_sessions(baseline, candidate, candidate_problems=problems):
            findings.add(comparison)
    return findings


def _changed(response: HttpResponse) -> HttpResponse:
    return replace(response, body=response.body.replace(b'{"n": ', b'{"n": 1'))


def test_examples_are_bounded_per_finding_and_per_run(tmp_path):
    findings = findings_of(users_capture(tmp_path / "c.pcap", 6), dead={5}).findings()
    [changed] = [f for f in findings if f.key.status is ComparisonStatus.DIFFERENT and f.key.path == "body.n"]
    assert changed.count == 5 and len(changed.examples) == 3 and len(findings) == 2
    examples, omitted = choose_examples(findings, per_finding=1, limit=10)
    assert [(e.session, e.number) for e in examples] == [(0, 0), (5, 0)]  # the difference, the SUT's death
    examples, omitted = choose_examples(findings, per_finding=3, limit=2)
    assert len(examples) == 2 and omitted == 2


def test_findings_whose_cause_the_sut_is_not_get_no_reproducer(tmp_path):
    capture = users_capture(tmp_path / "c.pcap", 2)
    with open_capture(capture) as reader:
        [session, _] = list(assemble_sessions(reader, [8080]))
    findings = FindingsAccumulator()
    for comparison in compare_sessions(exchanges_from_capture(session), [],
                                       candidate_problems=[ReplayProblem(Cause.NOT_REPLAYED, "stopped")]):  # fmt: skip
        findings.add(comparison)
    assert findings.findings() and choose_examples(findings.findings(), 1, 10) == ([], 0)


def test_an_exchange_shared_by_findings_is_reproduced_once_and_names_them_all(tmp_path):
    capture = users_capture(tmp_path / "c.pcap", 1)
    with open_capture(capture) as reader:
        [session] = list(assemble_sessions(reader, [8080]))
    baseline = exchanges_from_capture(session)
    candidate = [replace(baseline[0], response=replace(_changed(baseline[0].response), status=201)), baseline[1]]
    findings = FindingsAccumulator()
    for comparison in compare_sessions(baseline, candidate):
        findings.add(comparison)
    assert len(findings.findings()) == 2
    out = write_reproducers(tmp_path / "out", [(capture, findings.findings())], ReproducerConfig(TARGET))
    [reproducer] = out.reproducers
    assert len(reproducer.findings) == 2
    assert all(out.for_finding(f.key) == [reproducer] for f in findings.findings())
    assert out.for_exchange(capture, 0, 0) is reproducer and out.for_exchange(capture, 0, 1) is None


def test_a_run_writes_folders_per_capture_an_index_and_stays_within_its_bound(tmp_path):
    first, second = users_capture(tmp_path / "a.pcap", 3), users_capture(tmp_path / "b.pcap.gz", 3)
    runs = [(first, findings_of(first).findings()), (second, findings_of(second).findings())]
    config = ReproducerConfig(TARGET, per_finding=2, max_reproducers=3)
    out = write_reproducers(tmp_path / "out", runs, config)
    assert len(out.reproducers) == 3 and out.omitted == 1
    assert sorted(p.name for p in out.directory.iterdir()) == [".pytest-tcpcopy-reproducers", "a_pcap", "b_pcap_gz",
                                                               "index.json", "index.md"]  # fmt: skip
    index = json.loads((out.directory / "index.json").read_text())
    assert index["format"] == "pytest-tcpcopy-reproducers" and index["omitted"] == 1
    for entry in index["reproducers"]:
        for key in ("path", "readme", "slice", "request"):
            assert (out.directory / entry[key]).exists(), entry[key]
        assert entry["item"] == "s0000-GET /api/users/{}".format(entry["session"])
        assert entry["commands"]["pytest"].startswith("pytest 'session.pcap::s0000-GET /api/users/")
    markdown = out.index.read_text()
    assert markdown.count("GET /api/users/{id} body.n changed") == 3 and "1 more example(s) left out" in markdown
    reproducer = out.reproducers[0]
    assert reproducer.to_json(relative_to=out.directory)["readme"] == "a_pcap/s0000-000-get-api-users-0/README.md"
    doc = json.loads((reproducer.directory / "reproducer.json").read_text())
    assert doc["slice"] == "session.pcap" and doc["findings"] == ["GET /api/users/{id} body.n changed"]


def test_a_reproducer_folder_is_emptied_by_the_next_run_and_any_other_folder_refused(tmp_path):
    capture = users_capture(tmp_path / "c.pcap", 1)
    findings = findings_of(capture).findings()
    out = write_reproducers(tmp_path / "out", [(capture, findings)], ReproducerConfig(TARGET))
    stale = out.directory / "c_pcap" / "stale.txt"
    stale.write_text("from an earlier run")
    write_reproducers(tmp_path / "out", [(capture, findings)], ReproducerConfig(TARGET))
    assert not stale.exists() and (out.directory / "index.md").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not empty and not a folder of pytest-tcpcopy reproducers"):
        write_reproducers(mine, [(capture, findings)], ReproducerConfig(TARGET))
    assert (mine / "notes.txt").read_text() == "keep me"


def test_examples_that_cannot_be_reproduced_say_why(tmp_path):
    capture = users_capture(tmp_path / "c.pcap", 1)
    config = ReproducerConfig(TARGET, slices=SliceMode.NEVER)
    wrong = write_reproducer(capture, Example(0, 1, "s0000-GET /api/users/0"), tmp_path / "out", config)
    assert wrong.item is None and "reads as 'GET /health', not 'GET /api/users/0'" in wrong.problem
    assert "request.sh" not in wrong.files and "Not written: exchange 1" in wrong.readme.read_text()
    past = write_reproducer(capture, Example(0, 5, "s0000-GET /x"), tmp_path / "out", config)
    assert "holds 2 exchange(s), none numbered 5" in past.problem
    with pytest.raises(UsageError, match="no session 3"):
        write_reproducer(capture, Example(3, 0, "s0003-GET /x"), tmp_path / "out", config)
    out = write_reproducers(tmp_path / "run", [(capture, [])], config)
    assert out.reproducers == [] and "No reproducer was written." in out.index.read_text()


def test_the_pytest_item_of_a_repeated_request_carries_its_rank(tmp_path):
    c = Conversation(("10.3.0.1", 40000), ("10.3.0.9", 8080), 100.0).handshake()
    for request, response in http_exchanges("/same", 3):
        c.turn(request, response)
    capture = write_capture(tmp_path / "c.pcap", c.close())
    reproducer = write_reproducer(capture, Example(0, 2, "s0000-GET /same"), tmp_path / "out",
                                  ReproducerConfig(TARGET))  # fmt: skip
    assert reproducer.item == "s0000-GET /same [3]"
    assert (
        "'/tmp" not in reproducer.commands["pytest"]
        and "session.pcap::s0000-GET /same [3]" in reproducer.commands["pytest"]
    )
    assert f"{capture}::s0000-GET /same [3]" in reproducer.commands["capture_pytest"]
