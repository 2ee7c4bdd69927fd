"""What the candidate's responses are compared with: one strategy per kind of baseline.

Each strategy knows which SUTs a replay needs besides the candidate (``suts``), what one captured
session is compared against (``exchanges``: the baseline's exchanges, or the problem that leaves
nothing to compare with), how a session is judged (``compare``), what it does with each judged
candidate session (``record``: a recorded baseline being updated writes it) and after the
judging (``finish``). ``strategy_for(settings)`` picks one from ``settings.baseline``; nothing
else looks at the kind. The judge (``judging.stream``) calls them session by session, as results
arrive.

- ``capture``: production's own responses in the capture.
- ``image:REF`` / ``command:CMD``: a baseline release replayed side by side with the candidate
  (docker / netns backend), and with ``noise`` a second instance whose disagreements with the
  first are noise. A session the baseline's replay did not report is not comparable
  (``BASELINE_MISSING``).
- ``dir:PATH``: a recorded baseline (``recorded``), written by an update run; a session with no
  recording yet is not comparable (``NO_RECORDED_BASELINE``).
- ``none``: nothing to compare with; an exchange is the same when the candidate answered it (or
  production did not answer it either), not comparable when a problem of the replay left it
  unanswered, and different when a clean replay left it unanswered.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .backends.base import SutSpec
from .compare import (
    Cause,
    ComparisonStatus,
    DiffConfig,
    Exchange,
    ExchangeComparison,
    IgnoreUsage,
    NotComparable,
    ReplayProblem,
    compare_sessions,
    diff_exchange,
    exchanges_from_replay,
)
from .compare.judge import covering
from .errors import UsageError
from .flows.session import CapturedSession
from .model import CaptureIndex, ReplayRun
from .recorded import RecordedBaseline
from .replay.results import SessionResult
from .settings import Baseline, Settings


@dataclass(frozen=True, slots=True)
class BaselineExchanges:
    """The exchanges one captured session is judged against; ``secondary`` (a second baseline
    instance) sets noise apart."""

    primary: list[Exchange]
    secondary: list[Exchange] | None = None


class BaselineStrategy:
    """What every kind of baseline answers; the defaults suit a baseline that needs no SUT."""

    def __init__(self, baseline: Baseline, settings: Settings) -> None:
        self.baseline = baseline
        self.settings = settings

    def suts(self, candidate: SutSpec) -> list[SutSpec]:
        """Every SUT a replay starts: the candidate first, then the baseline's."""
        return [candidate]

    def exchanges(self, session: CapturedSession, production: list[Exchange], baselines: Sequence[SessionResult | None],
                  index: CaptureIndex) -> BaselineExchanges | ReplayProblem:  # fmt: skip
        """What ``session`` is compared against (``production``: its captured exchanges;
        ``baselines``: each baseline SUT's result of it, None where it reported none), or the
        problem that leaves nothing to compare with."""
        raise NotImplementedError

    def compare(self, theirs: BaselineExchanges, mine: list[Exchange], config: DiffConfig, *,
                candidate_problems: Sequence[ReplayProblem] = (), baseline_problems: Sequence[ReplayProblem] = (),
                usage: IgnoreUsage | None = None) -> list[ExchangeComparison]:  # fmt: skip
        """The verdict on every exchange position of one session (``compare.compare_sessions``)."""
        return compare_sessions(theirs.primary, mine, config, theirs.secondary, candidate_problems=candidate_problems,
                                baseline_problems=baseline_problems, usage=usage)  # fmt: skip

    def record(self, index: CaptureIndex, session: CapturedSession, result: SessionResult) -> None:
        """Told of the candidate's result (first copy) of every session judged."""

    def finish(self, run: ReplayRun) -> list[str]:
        """Work after the judging; returns lines worth telling the user."""
        return []


class CaptureBaseline(BaselineStrategy):
    """Production's own responses, in the capture."""

    def exchanges(self, session: CapturedSession, production: list[Exchange], baselines: Sequence[SessionResult | None],
                  index: CaptureIndex) -> BaselineExchanges | ReplayProblem:  # fmt: skip
        return BaselineExchanges(production)


class SideBySideBaseline(BaselineStrategy):
    """A baseline release replayed beside the candidate: ``image:REF`` on the docker backend,
    ``command:CMD`` on the netns backend."""

    def suts(self, candidate: SutSpec) -> list[SutSpec]:
        kind, backend = self.baseline.kind, self.settings.backend
        wanted = "image" if backend == "docker" else "command"
        if kind != wanted:
            raise UsageError(f"baseline {self.baseline}: the {backend} backend runs a baseline {wanted}; "
                             f"give --tcpcopy-baseline {wanted}:{'REF' if wanted == 'image' else 'CMD'}")  # fmt: skip
        if kind == "image":
            spec = replace(candidate, name="baseline", image=self.baseline.ref, command=())
        else:
            spec = replace(candidate, name="baseline", command=tuple(shlex.split(self.baseline.ref)))
        second = [replace(spec, name="baseline-2")] if self.settings.noise else []
        return [candidate, spec, *second]

    def exchanges(self, session: CapturedSession, production: list[Exchange], baselines: Sequence[SessionResult | None],
                  index: CaptureIndex) -> BaselineExchanges | ReplayProblem:  # fmt: skip
        first = baselines[0] if baselines else None
        if first is None:
            return ReplayProblem(Cause.BASELINE_MISSING, "the baseline's replay reported no result for it")
        secondary = None
        if len(baselines) > 1 and baselines[1] is not None:
            secondary = exchanges_from_replay(session, baselines[1])
        return BaselineExchanges(exchanges_from_replay(session, first), secondary)


class RecordedBaselineStrategy(BaselineStrategy):
    """A recorded baseline under ``dir:PATH``; an update run (``update_baseline``) rewrites the
    sessions it judges, as they are judged."""

    def __init__(self, baseline: Baseline, settings: Settings) -> None:
        super().__init__(baseline, settings)
        self._written: list[Path] = []
        self._folder: Path | None = None

    def _recorded(self, index: CaptureIndex) -> RecordedBaseline:
        return RecordedBaseline(Path(self.baseline.ref), index.path)

    def exchanges(self, session: CapturedSession, production: list[Exchange], baselines: Sequence[SessionResult | None],
                  index: CaptureIndex) -> BaselineExchanges | ReplayProblem:  # fmt: skip
        stored = self._recorded(index).load(session.index)
        if stored is None:
            return ReplayProblem(Cause.NO_RECORDED_BASELINE, "run with --tcpcopy-update-baseline to record it")
        return BaselineExchanges(exchanges_from_replay(session, stored))

    def record(self, index: CaptureIndex, session: CapturedSession, result: SessionResult) -> None:
        if self.settings.update_baseline:
            recorded = self._recorded(index)
            self._folder = recorded.folder
            self._written.append(recorded.write(session, result))

    def finish(self, run: ReplayRun) -> list[str]:
        if not self.settings.update_baseline:
            return []
        folder = self._folder or self._recorded(run.capture).folder
        return [f"recorded baseline: {len(self._written)} session file(s) written under {folder}"]


class NoBaseline(BaselineStrategy):
    """``none``: replay only (see the module comment)."""

    def exchanges(self, session: CapturedSession, production: list[Exchange], baselines: Sequence[SessionResult | None],
                  index: CaptureIndex) -> BaselineExchanges | ReplayProblem:  # fmt: skip
        return BaselineExchanges(production)

    def compare(self, theirs: BaselineExchanges, mine: list[Exchange], config: DiffConfig, *,
                candidate_problems: Sequence[ReplayProblem] = (), baseline_problems: Sequence[ReplayProblem] = (),
                usage: IgnoreUsage | None = None) -> list[ExchangeComparison]:  # fmt: skip
        out = []
        for i, production in enumerate(theirs.primary):
            answer = mine[i] if i < len(mine) else None
            verdict = _answered_verdict(production, answer, config, candidate_problems)
            out.append(verdict)
        return out


def _answered_verdict(production: Exchange, answer: Exchange | None, config: DiffConfig,
                      problems: Sequence[ReplayProblem]) -> ExchangeComparison:  # fmt: skip
    """Same when the candidate answered (or production did not either); else not comparable
    when a problem of the replay covers the request, different when none does."""
    def verdict(status: ComparisonStatus, **kw) -> ExchangeComparison:
        return ExchangeComparison(production.id, production.session, production.number, status, production.request,
                                  production, answer, **kw)  # fmt: skip

    if production.response is None or (answer is not None and answer.response is not None):
        return verdict(ComparisonStatus.SAME)
    problem = covering(problems, getattr(production.request, "offset", None))
    if problem is not None:
        return verdict(ComparisonStatus.NOT_COMPARABLE, cause=NotComparable.of(problem, config.redaction))
    return verdict(ComparisonStatus.DIFFERENT, diff=diff_exchange(production, answer, config))


_STRATEGIES: dict[str, type[BaselineStrategy]] = {
    "capture": CaptureBaseline,
    "image": SideBySideBaseline,
    "command": SideBySideBaseline,
    "dir": RecordedBaselineStrategy,
    "none": NoBaseline,
}


def strategy_for(settings: Settings) -> BaselineStrategy:
    """The strategy of ``settings.baseline``."""
    return _STRATEGIES[settings.baseline.kind](settings.baseline, settings)
