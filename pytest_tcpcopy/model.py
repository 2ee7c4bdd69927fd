"""The values a replay is judged with: the indexed capture and the judged run.

``CaptureIndex`` is a capture read once, in one streaming pass, and kept small: which sessions
the sample and filter select, how many exchanges they hold, per endpoint template how many, and
(for exchange items) one reference per exchange; the peak of concurrent sessions and the time
window they span. No stream bytes are kept: the judge reads the capture again, session by session,
as their results arrive (``judging.sessions``). ``ReplayRun`` is one replay of it: the copiers'
results (totals, notes; no sessions unless asked for) and the verdicts (``judging.verdicts``:
counts, findings, bounded examples, per item a compact verdict). The runner builds both;
reports, load figures and the plugin read them. Nothing here runs anything.
"""

from __future__ import annotations

import zlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .capture import open_capture
from .compare import (
    ComparisonStatus,
    Exchange,
    ExchangeComparison,
    IgnoreUsage,
    Redaction,
    endpoint_template,
    exchanges_from_capture,
)
from .flows.assembler import assemble_sessions
from .flows.session import CapturedSession
from .judging.verdicts import RunVerdicts
from .replay.results import Outcome, ReplayResult, SessionResult
from .sanity import SanityCounters
from .settings import Settings


class ExchangeRef(NamedTuple):
    """One exchange to judge, as collection knows it: its session, its number in the session,
    the item name (the exchange id, ``[2]``... for a repeat in one session) and its endpoint."""

    session: int
    number: int
    name: str
    endpoint: str


@dataclass(slots=True)
class CaptureIndex:
    """A capture read once (see the module comment); ``selected`` holds the session indexes to
    replay, as a ``range`` when every session is."""

    path: Path
    sessions: int  # sessions in the capture
    selected: frozenset[int] | range
    exchanges: int  # exchanges to judge: in the selected sessions, the filter applied
    endpoints: dict[str, int]  # endpoint template -> exchanges to judge, in capture order
    refs: list[ExchangeRef] | None = None  # one per exchange to judge, in capture order; None: not kept
    requests: int = 0  # captured requests of the selected sessions (the load schedule's)
    window: tuple[float, float] | None = None  # first and last capture time of the selected sessions
    peak_concurrency: int = 0  # most selected sessions open at once, first to last packet
    server_ports: frozenset[int] = frozenset()  # the server ports the selected sessions went to

    def items(self) -> list[ExchangeRef]:
        """The exchanges to judge, in capture order: one pytest item each."""
        if self.refs is None:
            raise ValueError(f"{self.path.name} was indexed without its exchanges (endpoint items)")
        return self.refs

    @property
    def everything(self) -> bool:
        """True when every captured session is selected."""
        return isinstance(self.selected, range) and len(self.selected) == self.sessions


def index_capture(path: str | Path, settings: Settings, redaction: Redaction | None = None, *,
                  refs: bool = True) -> CaptureIndex:  # fmt: skip
    """Read ``path`` once and index what ``settings`` (sample, filter) select; ``redaction`` is
    the one findings use (for the endpoint templates); ``refs``: keep one reference per exchange
    (exchange items), else only the counts per endpoint."""
    path = Path(path)
    redaction = redaction or Redaction()
    total = exchanges = requests = 0
    endpoints: dict[str, int] = {}
    kept: list[ExchangeRef] | None = [] if refs else None
    chosen = array("q")
    starts, ends = array("d"), array("d")
    ports: set[int] = set()
    with open_capture(path) as reader:
        for session in assemble_sessions(reader, settings.filter.ports, path=str(path)):
            total += 1
            if not selects_session(session, settings):
                continue
            found = exchanges_from_capture(session)
            wanted = [e for e in found if selects_exchange(e, settings)]
            if not wanted:
                continue
            chosen.append(session.index)
            ports.add(session.server.port)
            starts.append(session.first_ts)
            ends.append(session.last_ts)
            requests += len(found)
            exchanges += len(wanted)
            seen: dict[str, int] = {}
            for exchange in wanted:
                endpoint = endpoint_template(exchange.request, exchange.codec, redaction)
                endpoints[endpoint] = endpoints.get(endpoint, 0) + 1
                if kept is not None:
                    name = exchange.id
                    seen[name] = seen.get(name, 0) + 1
                    if seen[name] > 1:
                        name = f"{name} [{seen[name]}]"  # the same request again in one session
                    kept.append(ExchangeRef(session.index, exchange.number, name, endpoint))
    if kept is not None:
        kept.sort(key=lambda ref: (ref.session, ref.number))  # sessions end out of order
    window = (min(starts), max(ends)) if starts else None
    return CaptureIndex(path, total, _selection(chosen, total), exchanges, endpoints, kept, requests, window,
                        peak_concurrency(starts, ends), frozenset(ports))  # fmt: skip


def _selection(chosen: array, total: int) -> frozenset[int] | range:
    if len(chosen) == total:
        return range(total)  # every session: sessions are indexed 0..total-1
    return frozenset(chosen)


def peak_concurrency(starts: array, ends: array) -> int:
    """The most intervals [start, end] open at once (touching ones count as open together)."""
    begin, finish = sorted(starts), sorted(ends)
    peak = now = j = 0
    for start in begin:
        while finish[j] < start:
            now -= 1
            j += 1
        now += 1
        peak = max(peak, now)
    return peak


def selects_session(session: CapturedSession, settings: Settings) -> bool:
    """Stable per-session sampling: a hash of the captured client endpoint (as tcpcopy's -r)."""
    percent = settings.sample
    if percent >= 100:
        return True
    return zlib.crc32(str(session.client).encode()) % 10_000 < percent * 100


def selects_exchange(exchange: Exchange, settings: Settings) -> bool:
    """Whether the filter (methods, path regex) keeps ``exchange``."""
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
    """One replay of one capture: the copiers' results and the verdicts on its exchanges.

    ``candidate`` is the candidate copier's result, ``baselines`` those of side-by-side baseline
    SUTs (in start order): their totals and notes, and their sessions only when the runner was
    asked to keep them (``keep_sessions``); ``sut_logs`` the candidate's log tail when it died
    during the replay. ``verdicts`` holds every exchange's verdict as counts and findings, the
    first comparisons whole (``comparisons``: all of them in a small run, the notable ones up to a
    bound at scale), and per item a compact verdict. ``aborted`` lists the first candidate
    session copies that did not complete (response bytes dropped), ``aborted_count`` all of
    them. ``load`` holds the request samples of the load figures when they were collected
    (``load.LoadSamples``); ``judging`` what the judging took (``judging.stream.JudgeFigures``).
    ``label`` names who replayed it (a test's node id).
    """

    capture: CaptureIndex
    settings: Settings
    candidate: ReplayResult
    baselines: list[ReplayResult] = field(default_factory=list)
    sut_logs: str | None = None
    verdicts: RunVerdicts = field(default_factory=RunVerdicts)
    aborted: list[SessionResult] = field(default_factory=list)
    aborted_count: int = 0
    load: object | None = None
    label: str | None = None
    judging: object | None = None  # what the judging took (``judging.stream.JudgeFigures``)
    sanity: SanityCounters = field(default_factory=SanityCounters)
    usage: IgnoreUsage | None = None  # which ignore paths matched something
    reproducers: list = field(default_factory=list)  # reproduce.Reproducer of its findings' examples, when written

    @property
    def sessions(self) -> dict[int, SessionResult]:
        """The candidate's kept per-session results (first copy), by captured session index."""
        return {s.session: s for s in self.candidate.sessions if s.copy == 0}

    @property
    def comparisons(self) -> dict[tuple[int, int], ExchangeComparison]:
        """The kept comparisons by (session, exchange number): see the class comment."""
        return self.verdicts.kept

    def comparison(self, session: int, number: int) -> ExchangeComparison | None:
        return self.verdicts.kept.get((session, number))

    @property
    def differences(self) -> list[ExchangeComparison]:
        """The kept comparisons that differ (every one up to ``judging.verdicts.MAX_KEPT``)."""
        return [c for c in self.verdicts.kept.values() if c.status is ComparisonStatus.DIFFERENT]

    @property
    def noisy(self) -> list[ExchangeComparison]:
        return [c for c in self.verdicts.kept.values() if c.noise is not None]

    def stats(self) -> dict:
        counts = self.verdicts.counts
        return {
            "capture": str(self.capture.path),
            "sessions": len(self.capture.selected),
            "exchanges": self.verdicts.total,
            "same": counts[ComparisonStatus.SAME],
            "differences": counts[ComparisonStatus.DIFFERENT],
            "not_comparable": counts[ComparisonStatus.NOT_COMPARABLE],
            "noise": self.verdicts.noisy,
            "aborted": self.aborted_count,
            "totals": self.candidate.totals(),
        }

    def add_aborted(self, result: SessionResult, limit: int) -> None:
        """Count a candidate session copy that did not complete; keep the first ``limit``."""
        if result.outcome is Outcome.COMPLETE:
            return
        self.aborted_count += 1
        if len(self.aborted) < limit:
            self.aborted.append(result)
