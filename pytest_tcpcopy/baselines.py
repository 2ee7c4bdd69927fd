"""What the candidate's responses are compared with: one strategy per kind of baseline.

Each strategy knows which SUTs a replay needs besides the candidate (``suts``), what the user
should know about the settings (``notes``), what one captured session is compared against
(``exchanges``: the baseline's exchanges, or the problem that leaves nothing to compare with),
how the candidate's exchanges are read (``candidate``), how a session is judged (``compare``),
what it does with each judged candidate session (``record``: a recorded baseline being updated
writes it) and after the judging (``finish``). ``strategy_for(settings)`` picks one from ``settings.baseline``; nothing
else looks at the kind. The judge (``judging.stream``) calls them session by session, as results
arrive.

- ``capture``: production's own responses in the capture.
- ``image:REF`` / ``command:CMD``: a baseline release replayed side by side with the candidate
  (docker / netns backend), and with ``noise`` a second instance whose disagreements with the
  first are noise. A session the baseline's replay did not report is not comparable
  (``BASELINE_MISSING``).
- ``dir:PATH``: a recorded baseline (``recorded``). The candidate is compared as a recording
  would keep it (redacted, volatile headers masked); a session with no usable recording is not
  comparable (``NO_RECORDED_BASELINE``, with the command that records it). An update run
  (``update_baseline``) compares nothing: it records each session as it is judged, and an
  exchange is the same when it was recorded whole, not comparable when a problem of the replay
  cut it, different when a clean replay left it unanswered (as ``none``).
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
from .recorded import RecordedBaseline, UpdateCounts
from .recorded_format import ResponseFormat
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

    def notes(self) -> list[str]:
        """What the user should know about these settings before the replay (said once per replay)."""
        if self.settings.noise:
            return [f"--tcpcopy-noise has no effect with the {self.baseline.kind} baseline: noise is told apart by "
                    "a second baseline instance, which only image: and command: baselines run"]  # fmt: skip
        return []

    def candidate(self, session: CapturedSession, result: SessionResult) -> list[Exchange]:
        """The candidate's exchanges of ``session`` (one copy's ``result``), as they are compared."""
        return exchanges_from_replay(session, result)

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

    def notes(self) -> list[str]:
        return []

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
    """A recorded baseline under ``dir:PATH`` (see the module comment)."""

    def __init__(self, baseline: Baseline, settings: Settings) -> None:
        super().__init__(baseline, settings)
        self._format: ResponseFormat | None = None
        self._counts = UpdateCounts([], [], [])
        self._clients: dict[int, str] = {}  # captured client of every session judged, by index
        self._missing = 0  # sessions judged without a usable recording

    def _recorded(self, index: CaptureIndex) -> RecordedBaseline:
        return RecordedBaseline(Path(self.baseline.ref), index.path, self.settings.diff_config())

    def exchanges(self, session: CapturedSession, production: list[Exchange], baselines: Sequence[SessionResult | None],
                  index: CaptureIndex) -> BaselineExchanges | ReplayProblem:  # fmt: skip
        if self.settings.update_baseline:
            return BaselineExchanges(production)
        recording = self._recorded(index).load(session, production)
        if recording.exchanges is None:
            self._missing += 1
            return ReplayProblem(Cause.NO_RECORDED_BASELINE, f"{recording.missing}; record it with the release to "
                                                             f"compare against: {self.update_command(index.path)}")  # fmt: skip
        return BaselineExchanges(recording.exchanges)

    def candidate(self, session: CapturedSession, result: SessionResult) -> list[Exchange]:
        if self._format is None:
            self._format = ResponseFormat(self.settings.diff_config())
        kept = self._format.round_trip
        return [replace(e, response=kept(e.response)) for e in exchanges_from_replay(session, result)]

    def compare(self, theirs: BaselineExchanges, mine: list[Exchange], config: DiffConfig, *,
                candidate_problems: Sequence[ReplayProblem] = (), baseline_problems: Sequence[ReplayProblem] = (),
                usage: IgnoreUsage | None = None) -> list[ExchangeComparison]:  # fmt: skip
        if not self.settings.update_baseline:
            return super().compare(theirs, mine, config, candidate_problems=candidate_problems,
                                   baseline_problems=baseline_problems, usage=usage)  # fmt: skip
        return [_answered_verdict(production, mine[i] if i < len(mine) else None, config, candidate_problems,
                                  problems_first=True)
                for i, production in enumerate(theirs.primary)]  # fmt: skip

    def record(self, index: CaptureIndex, session: CapturedSession, result: SessionResult) -> None:
        self._clients[session.index] = str(session.client)
        if self.settings.update_baseline:
            recorded = self._recorded(index)
            done = self._counts.written if recorded.write(session, result) else self._counts.unchanged
            done.append(recorded.path(session.index))

    def update_command(self, capture: Path) -> str:
        """The pytest command line that records ``capture`` with these settings' SUT."""
        settings = self.settings
        parts = ["pytest", str(capture)]
        if settings.backend != "docker":
            parts += ["--tcpcopy-backend", settings.backend]
        if settings.backend == "docker" and settings.image:
            parts += ["--tcpcopy-image", settings.image]
        elif settings.command:
            parts += ["--tcpcopy-command", shlex.join(settings.command)]
        if settings.port is not None:
            parts += ["--tcpcopy-port", str(settings.port)]
        parts += ["--tcpcopy-baseline", f"dir:{self.baseline.ref}", "--tcpcopy-update-baseline"]
        return shlex.join(parts)

    def finish(self, run: ReplayRun) -> list[str]:
        recorded = self._recorded(run.capture)
        unused = recorded.unused(run.capture.sessions, self._clients)
        if self.settings.update_baseline:
            if not self.settings.baseline_keep_unused:
                for path in unused:
                    path.unlink()
                self._counts.removed.extend(unused)
            return [self._counts.render(recorded.folder)]
        lines = []
        if self._missing:
            lines.append(f"recorded baseline {recorded.folder}: {self._missing} session(s) without a recording; "
                         f"record them with the release to compare against: "
                         f"{self.update_command(run.capture.path)}")  # fmt: skip
        if unused:
            lines.append(f"recorded baseline {recorded.folder}: {len(unused)} recording(s) of sessions the capture no "
                         "longer has; --tcpcopy-update-baseline removes them")  # fmt: skip
        return lines


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
                      problems: Sequence[ReplayProblem], *, problems_first: bool = False) -> ExchangeComparison:  # fmt: skip
    """Same when the candidate answered (or production did not either); else not comparable
    when a problem of the replay covers the request, different when none does. With
    ``problems_first`` (a recording), a covering problem makes it not comparable even when
    answered: the answer may be cut."""
    def verdict(status: ComparisonStatus, **kw) -> ExchangeComparison:
        return ExchangeComparison(production.id, production.session, production.number, status, production.request,
                                  production, answer, **kw)  # fmt: skip

    problem = covering(problems, getattr(production.request, "offset", None))
    if problems_first and problem is not None:
        return verdict(ComparisonStatus.NOT_COMPARABLE, cause=NotComparable.of(problem, config.redaction))
    if production.response is None or (answer is not None and answer.response is not None):
        return verdict(ComparisonStatus.SAME)
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
