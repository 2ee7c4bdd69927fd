"""The values a replay is judged with: the indexed capture and the judged run.

``CaptureIndex`` is a capture read once: its sessions, production's exchanges, and what the sample
and filter select. ``ReplayRun`` is one replay of it: the copier's typed results (candidate, any
side-by-side baselines) and the judgement of every selected exchange. The runner builds both;
recorded baselines, load figures and reports read them. Nothing here runs anything.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .capture import open_capture
from .compare import Exchange, ExchangeComparison, exchanges_from_capture
from .flows.assembler import assemble_sessions
from .flows.session import CapturedSession
from .replay.results import Outcome, ReplayResult, SessionResult
from .settings import Settings


@dataclass(slots=True)
class CaptureIndex:
    """A capture read once: its sessions, production's exchanges, and what the settings select."""

    path: Path
    sessions: dict[int, CapturedSession]
    exchanges: dict[int, list[Exchange]]  # production's exchanges, per session index
    selected: frozenset[int]  # session indexes to replay (sample and filter applied)
    wanted: dict[int, frozenset[int]]  # per selected session: exchange numbers the filter keeps

    def items(self) -> list[Exchange]:
        """The exchanges to judge, in capture order: one pytest item each."""
        return [e for s in sorted(self.selected) for e in self.exchanges[s] if e.number in self.wanted[s]]


def index_capture(path: str | Path, settings: Settings) -> CaptureIndex:
    """Read ``path`` whole (streams kept: this serves comparisons) and apply sample and filter."""
    path = Path(path)
    with open_capture(path) as reader:
        sessions = {s.index: s for s in assemble_sessions(reader, settings.filter.ports)}
    exchanges = {i: exchanges_from_capture(s) for i, s in sessions.items()}
    selected, wanted = set(), {}
    for index, session in sessions.items():
        if not _sampled(session, settings.sample):
            continue
        keep = frozenset(e.number for e in exchanges[index] if _matches(e, settings))
        if keep:
            selected.add(index)
            wanted[index] = keep
    return CaptureIndex(path, sessions, exchanges, frozenset(selected), wanted)


def _sampled(session: CapturedSession, percent: float) -> bool:
    """Stable per-session sampling: a hash of the captured client endpoint (as tcpcopy's -r)."""
    if percent >= 100:
        return True
    return zlib.crc32(str(session.client).encode()) % 10_000 < percent * 100


def _matches(exchange: Exchange, settings: Settings) -> bool:
    wanted = settings.filter
    request = exchange.request
    method = getattr(request, "method", None)
    if wanted.methods and method not in wanted.methods:
        return False
    if wanted.path is not None and not wanted.path.search(getattr(request, "target", "")):
        return False
    return True


@dataclass(slots=True)
class ReplayRun:
    """One replay of one capture: the copier's results and the judgement of every exchange.

    ``candidate`` is the candidate's result, ``baselines`` those of side-by-side baseline SUTs (in
    start order); ``sut_logs`` the candidate's log tail when it died during the replay. ``label``
    names who replayed it (a test's node id), for summaries of several replays.
    """

    capture: CaptureIndex
    settings: Settings
    candidate: ReplayResult
    baselines: list[ReplayResult] = field(default_factory=list)
    sut_logs: str | None = None
    comparisons: dict[tuple[int, int], ExchangeComparison] = field(default_factory=dict)
    # (session, exchange) -> the amplify copies whose response differed from the baseline
    differing_copies: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    # sessions the baseline had nothing to compare with when the run was judged
    without_baseline: set[int] = field(default_factory=set)
    label: str | None = None

    @property
    def sessions(self) -> dict[int, SessionResult]:
        """The candidate's per-session results (first copy), by captured session index."""
        return {s.session: s for s in self.candidate.sessions if s.copy == 0}

    def comparison(self, session: int, number: int) -> ExchangeComparison | None:
        return self.comparisons.get((session, number))

    @property
    def differences(self) -> list[ExchangeComparison]:
        return [c for c in self.comparisons.values() if c.failed]

    @property
    def noisy(self) -> list[ExchangeComparison]:
        return [c for c in self.comparisons.values() if c.noise is not None]

    @property
    def aborted(self) -> list[SessionResult]:
        """The candidate's session copies that did not complete, in session order."""
        return sorted((s for s in self.candidate.sessions if s.outcome is not Outcome.COMPLETE),
                      key=lambda s: (s.session, s.copy))  # fmt: skip

    def stats(self) -> dict:
        return {
            "capture": str(self.capture.path),
            "sessions": len(self.capture.selected),
            "exchanges": len(self.comparisons),
            "differences": len(self.differences),
            "noise": len(self.noisy),
            "aborted": len(self.aborted),
            "totals": self.candidate.totals(),
        }
