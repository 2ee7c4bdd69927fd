"""The plugin's progress line: rendering, throttling, and nothing at all when output is not a tty."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pytest_tcpcopy.progress_line import ReplayProgressLine, render_progress
from pytest_tcpcopy.replay.contract import Progress

pytest_plugins = ["pytester"]

REPORT = Progress(sessions_done=120, sessions_total=480, active=30, waiting=5, requests=900, rate=40.0, errors=2)


def test_one_sut_renders_without_its_name():
    assert render_progress({"candidate": REPORT}) == (
        "tcpcopy replay: 120/480 sessions (25%), 30 active, 5 waiting, 900 requests, 40 sessions/s, 2 errors"
    )


def test_an_unknown_total_and_several_suts():
    streaming = replace(REPORT, sessions_total=None, rate=12.5)
    line = render_progress({"candidate": streaming, "baseline": REPORT})
    assert line.startswith("tcpcopy replay: candidate: 120 sessions, 30 active")
    assert "12.5 sessions/s" in line and " | baseline: 120/480 sessions (25%)" in line


class Reporter:
    """What the line asks of pytest's terminal reporter, recorded."""

    def __init__(self, verbosity: int = 0) -> None:
        self.calls: list[tuple[str, str]] = []
        self.verbosity = verbosity

    def ensure_newline(self) -> None:
        self.calls.append(("newline", ""))

    def rewrite(self, line: str, erase: bool = False) -> None:
        assert erase
        self.calls.append(("rewrite", line))

    def write_fspath_result(self, nodeid: str, res: str) -> None:
        self.calls.append(("prefix", nodeid))


def test_the_line_is_rewritten_at_most_once_per_interval_and_forgets_finished_replays(monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    clock = [100.0]
    reporter = Reporter()
    line = ReplayProgressLine(reporter, interval=1.0, clock=lambda: clock[0])
    line("candidate", REPORT)
    line("baseline", replace(REPORT, sessions_done=7))  # same instant: kept for the next rewrite
    clock[0] += 1.0
    line("candidate", replace(REPORT, sessions_done=130))
    rewrites = [text for kind, text in reporter.calls if kind == "rewrite"]
    assert len(rewrites) == 2 and reporter.calls[0] == ("newline", "")
    assert "candidate: 130/480" in rewrites[1] and "baseline: 7/480" in rewrites[1]
    clock[0] += 5.0  # a later replay of the candidate alone: the baseline's old report is gone
    line("candidate", replace(REPORT, sessions_done=1))
    assert reporter.calls[-1][1].startswith("tcpcopy replay: 1/480 sessions")


@pytest.mark.parametrize(("verbosity", "ending"), [(0, [("prefix", "traffic.pcap::s0001-GET /")]), (1, [])])
def test_finish_ends_a_shown_line_once_and_only_then(verbosity, ending):
    reporter = Reporter(verbosity)
    line = ReplayProgressLine(reporter)
    line.finish("traffic.pcap::s0000-GET /")  # nothing shown: nothing to end
    assert reporter.calls == []
    line("candidate", REPORT)
    shown = list(reporter.calls)
    line.finish("traffic.pcap::s0001-GET /")
    line.finish("traffic.pcap::s0002-GET /")
    assert reporter.calls == shown + ending


def test_the_line_is_cut_to_the_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    reporter = Reporter()
    ReplayProgressLine(reporter)("candidate", REPORT)
    assert reporter.calls[-1] == ("rewrite", render_progress({"candidate": REPORT})[:39])


def test_no_progress_line_without_a_tty(pytester):
    pytester.makepyfile(
        """
        from pytest_tcpcopy.plugin import STATE_KEY

        def test_state(request):
            assert request.config.stash[STATE_KEY].progress is None
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
