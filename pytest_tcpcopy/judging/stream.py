"""The streaming judge: each session judged as soon as its results are in, in bounded memory.

The copiers report each session copy as it ends (``on_session``, from their reader threads).
``StreamingJudge`` joins those streams by captured session index: a session is whole when every
candidate copy (``amplify``) and the first copy of every baseline SUT have reported. It then takes
the captured session from a second, lazy pass over the capture (``sessions.CapturedSessions``),
splits production's exchanges and each copy's, weighs the problems of each replay
(``problems``), asks the baseline strategy for what to compare with and compares, keeps of each
exchange the copy that represents it (different over not comparable over same), and hands the
verdict to ``RunVerdicts``. Then it forgets the session: what stays is counts, findings and
bounded examples.

What is held meanwhile: per session whose results are incomplete, the copies reported so far
(as long as the copiers drift apart, about their concurrent sessions); captured sessions read
ahead of their results (about the replay's reordering window). ``finish`` judges what is left
once the streams ended: sessions a baseline never reported (``BASELINE_MISSING``), and selected
sessions the candidate never reported (``NOT_REPLAYED``, with why the replay stopped).

A dead SUT is found when a session arrives that may have ended because of it (it did not
complete, or a response of it was not seen whole: ``problems.suspect``): ``death(sut)`` says
whether the SUT died (and its log tail); those sessions are not comparable as ``SUT_DIED``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ..compare import (
    Cause,
    DiffConfig,
    Exchange,
    ExchangeComparison,
    IgnoreUsage,
    ReplayProblem,
    exchanges_from_capture,
)
from ..flows.session import CapturedSession
from ..model import CaptureIndex, ReplayRun, selects_exchange
from ..replay.results import Outcome, SessionResult
from ..sanity import status_of
from .problems import SutDeath, replay_problems, suspect
from .sessions import CapturedSessions
from .verdicts import representative

MAX_ABORTED = 200  # candidate session copies that did not complete, kept for the reports
_COMPLETE = Outcome.COMPLETE  # read per exchange: an Enum member off its class is a slow lookup in 3.11

DeathProbe = Callable[[str], "SutDeath | None"]  # (SUT name) -> how it died, or None while it runs


@dataclass(frozen=True, slots=True)
class JudgeFigures:
    """What judging a replay took: sessions and exchanges judged, the seconds spent judging them
    (reading the captured sessions again, splitting, comparing, keeping the verdicts; not the
    waits for results), and the most captured sessions read ahead of their results (``held``)
    and sessions waiting for the rest of their results (``pending``) at once."""

    sessions: int
    exchanges: int
    seconds: float
    held: int
    pending: int

    @property
    def rate(self) -> float:
        """Exchanges judged per second spent judging."""
        return self.exchanges / self.seconds if self.seconds else 0.0


@dataclass(slots=True)
class _Pending:
    """The results of one session reported so far."""

    copies: list[SessionResult] = field(default_factory=list)
    baselines: list[SessionResult | None] = field(default_factory=list)


class StreamingJudge:
    """Judges ``run`` (its capture, settings and empty verdicts) from the copiers' streams; see
    the module comment. ``suts`` names the SUTs in start order, the candidate first;
    ``strategy`` is the baseline strategy; ``load`` (a ``load.LoadSamples``) gathers the load
    figures when given; ``death`` probes a SUT that may have died."""

    def __init__(self, run: ReplayRun, strategy, config: DiffConfig, suts: Sequence[str], *,
                 load=None, death: DeathProbe | None = None, usage: IgnoreUsage | None = None) -> None:  # fmt: skip
        self.run = run
        self.index: CaptureIndex = run.capture
        self.settings = run.settings
        self.strategy = strategy
        self.config = config
        self.suts = list(suts)
        self.load = load
        self._death = death
        self._usage = usage
        self._deaths: dict[str, SutDeath | None] = {}
        self._amplify = self.settings.amplify
        self._pending: dict[int, _Pending] = {}
        self._judged = 0
        self._lock = threading.Lock()
        self._captured = CapturedSessions(self.index.path, self.settings.filter.ports, self.index.selected)
        self.peak_pending = 0  # the most sessions waiting for results at once
        self.seconds = 0.0  # spent judging (reading captured sessions, splitting, comparing, keeping)

    def set_death_probe(self, death: DeathProbe) -> None:
        """Ask ``death`` whether a SUT died (once the SUTs are started)."""
        self._death = death

    @property
    def sessions_judged(self) -> int:
        return self._judged

    @property
    def peak_held(self) -> int:
        """The most captured sessions read ahead of their results at once."""
        return self._captured.peak_held

    def on_session(self, sut: str, result: SessionResult) -> None:
        """A session copy reported by ``sut``'s copier (from any thread)."""
        with self._lock:
            position = self.suts.index(sut)
            if position and result.copy:
                return  # baselines are compared by their first copy
            if result.session not in self.index.selected:
                return
            pending = self._pending.get(result.session)
            if pending is None:
                pending = self._pending[result.session] = _Pending(baselines=[None] * (len(self.suts) - 1))
                self.peak_pending = max(self.peak_pending, len(self._pending))
            if position:
                pending.baselines[position - 1] = result
            else:
                pending.copies.append(result)
            if len(pending.copies) == self._amplify and None not in pending.baselines:
                del self._pending[result.session]
                started = time.perf_counter()
                self._judge(result.session, pending)
                self.seconds += time.perf_counter() - started

    def finish(self, *, stopped: str | None = None) -> None:
        """The streams have ended: judge what is left (see the module comment); ``stopped`` is
        why the candidate's replay stopped early, if it did."""
        with self._lock:
            started = time.perf_counter()
            try:
                for index in sorted(self._pending):
                    self._judge(index, self._pending.pop(index), stopped=stopped)
                for session in self._captured.rest():
                    self._judge_captured(session, _Pending(baselines=[None] * (len(self.suts) - 1)), stopped)
            finally:
                self._captured.close()
                self.seconds += time.perf_counter() - started

    def figures(self) -> JudgeFigures:
        """What the judging took (see ``JudgeFigures``)."""
        return JudgeFigures(self._judged, self.run.verdicts.total, round(self.seconds, 3), self.peak_held,
                            self.peak_pending)  # fmt: skip

    def close(self) -> None:
        """Release the capture (when the replay failed before ``finish``)."""
        self._captured.close()

    # -- one session ----------------------------------------------------------------------------

    def _judge(self, index: int, pending: _Pending, stopped: str | None = None) -> None:
        captured = self._captured.take(index)
        if captured is not None:
            self._judge_captured(captured, pending, stopped)

    def _judge_captured(self, captured: CapturedSession, pending: _Pending, stopped: str | None) -> None:
        self._judged += 1
        production = exchanges_from_capture(captured)
        wanted = {e.number for e in production if selects_exchange(e, self.settings)}
        if not wanted:
            return
        top = len(production) - 1  # positions past production's (the candidate answered more) count as its last
        copies = pending.copies if len(pending.copies) == 1 else sorted(pending.copies, key=_copy_number)
        if not copies:
            reason = f"the replay stopped: {stopped}" if stopped else "the copier reported no result for it"
            problem = ReplayProblem(Cause.NOT_REPLAYED, reason)
            for exchange in production:
                if exchange.number in wanted:
                    self.run.verdicts.add(ExchangeComparison.not_comparable(exchange, problem, self.config.redaction))
            return
        theirs = self.strategy.exchanges(captured, production, pending.baselines, self.index)
        baseline_problems = self._baseline_problems(pending.baselines)
        by_number: dict[int, list[tuple[ExchangeComparison, SessionResult]]] = {}
        for result in copies:
            for comparison in self._compare(captured, production, theirs, result, baseline_problems):
                number = min(comparison.number, top)
                if number in wanted:
                    by_number.setdefault(number, []).append((comparison, result))
        sanity, verdicts = self.run.sanity, self.run.verdicts
        for number in sorted(by_number):
            judged = by_number[number]
            if len(judged) == 1:
                chosen, result = judged[0]
            else:
                chosen = representative([c for c, _ in judged])
                result = next(r for c, r in judged if c is chosen)
            differing = tuple(r.copy for c, r in judged if c.failed) if self._amplify > 1 else ()
            outcome = None if result.outcome is _COMPLETE else (result.outcome.value, result.reason)
            sanity.add(status_of(_response(chosen.candidate)), status_of(_response(chosen.baseline)),
                       status_of(_response(production[number])))  # fmt: skip
            verdicts.add(chosen, copies=differing, outcome=outcome)
        self.strategy.record(self.index, captured, copies[0])
        for result in copies:
            if self.load is not None:
                self.load.add(result, production)
            if result.outcome is not _COMPLETE:
                self.run.add_aborted(replace(result, response_chunks={}), MAX_ABORTED)

    def _compare(self, captured: CapturedSession, production: list[Exchange], theirs, result: SessionResult,
                 baseline_problems: list[ReplayProblem]) -> list[ExchangeComparison]:  # fmt: skip
        """The verdicts on one candidate copy's exchanges."""
        if isinstance(theirs, ReplayProblem):
            redaction = self.config.redaction
            return [ExchangeComparison.not_comparable(e, theirs, redaction) for e in production]
        death = self._dead(self.suts[0]) if suspect(result) else None
        mine = self.strategy.candidate(captured, result)
        return self.strategy.compare(theirs, mine, self.config, candidate_problems=replay_problems(result, death),
                                     baseline_problems=baseline_problems, usage=self._usage)  # fmt: skip

    def _baseline_problems(self, baselines: list[SessionResult | None]) -> list[ReplayProblem]:
        first = baselines[0] if baselines else None
        if first is None:
            return []
        death = self._dead(self.suts[1]) if suspect(first) else None
        return replay_problems(first, death)

    def _dead(self, sut: str) -> SutDeath | None:
        """How ``sut`` died, once it has (asked of ``death`` until then)."""
        known = self._deaths.get(sut)
        if known is not None or self._death is None:
            return known
        found = self._deaths[sut] = self._death(sut)
        return found


def _copy_number(result: SessionResult) -> int:
    return result.copy


def _response(exchange: Exchange | None) -> object | None:
    return None if exchange is None else exchange.response
