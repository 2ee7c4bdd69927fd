"""What the candidate's responses are compared with: one strategy per kind of baseline.

Each strategy knows which SUTs a replay needs besides the candidate (``suts``), where the
baseline exchanges of a session come from (``exchanges``), what an exchange with no comparison
means (``unjudged``), and what happens after the judging (``finish``: a recorded baseline is
updated). ``strategy_for(settings)`` picks one from ``settings.baseline``; nothing else looks at
the kind.

- ``capture``: production's own responses in the capture.
- ``image:REF`` / ``command:CMD``: a baseline release replayed side by side with the candidate
  (docker / netns backend), and with ``noise`` a second instance whose disagreements with the
  first are noise.
- ``dir:PATH``: a recorded baseline (``recorded``), written by an update run.
- ``none``: nothing to compare with; an exchange passes when the candidate answered it (or
  production did not answer it either), so a replay-only run still says which requests failed.
"""

from __future__ import annotations

import enum
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from .backends.base import SutSpec
from .compare import Exchange, exchanges_from_replay
from .errors import UsageError
from .flows.session import CapturedSession
from .model import CaptureIndex, ReplayRun
from .recorded import RecordedBaseline, recorded_exchanges
from .recorded_format import ResponseFormat
from .replay.results import SessionResult
from .settings import Baseline, Settings


@dataclass(frozen=True, slots=True)
class BaselineExchanges:
    """The exchanges one captured session is judged against; ``secondary`` (a second baseline
    instance) sets noise apart."""

    primary: list[Exchange]
    secondary: list[Exchange] | None = None


class Unjudged(enum.Enum):
    """What an exchange item does when its exchange got no comparison."""

    PASSED = "passed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class UnjudgedVerdict:
    outcome: Unjudged
    message: str = ""


# The baselines of a session, as results by captured session index, one mapping per baseline SUT.
BaselineResults = list[dict[int, SessionResult]]


class BaselineStrategy:
    """What every kind of baseline answers; the defaults suit a baseline that needs no SUT."""

    def __init__(self, baseline: Baseline, settings: Settings) -> None:
        self.baseline = baseline
        self.settings = settings

    def suts(self, candidate: SutSpec) -> list[SutSpec]:
        """Every SUT a replay starts: the candidate first, then the baseline's."""
        return [candidate]

    def exchanges(self, session: CapturedSession, index: CaptureIndex,
                  baselines: BaselineResults) -> BaselineExchanges | None:  # fmt: skip
        """What ``session`` is compared against, or None when there is nothing to compare with."""
        raise NotImplementedError

    def candidate(self, session: CapturedSession, result: SessionResult) -> list[Exchange]:
        """The candidate's exchanges of ``session`` (one copy's ``result``), as they are compared."""
        return exchanges_from_replay(session, result)

    def notes(self) -> list[str]:
        """What the user should know about these settings before the replay (said once per replay)."""
        if self.settings.noise:
            return [f"--tcpcopy-noise has no effect with the {self.baseline.kind} baseline: noise is told apart by "
                    "a second baseline instance, which only image: and command: baselines run"]  # fmt: skip
        return []

    def unjudged(self, run: ReplayRun, session: int, number: int, name: str) -> UnjudgedVerdict:
        """The verdict of exchange ``number`` (named ``name``) of ``session``, which got no comparison."""
        result = run.sessions.get(session)
        reason = f"{result.outcome.value} ({result.reason})" if result is not None else "not replayed"
        return UnjudgedVerdict(Unjudged.FAILED, f"{name}: no response to compare ({reason})")

    def finish(self, run: ReplayRun) -> list[str]:
        """Work after the judging; returns lines worth telling the user."""
        return []


class CaptureBaseline(BaselineStrategy):
    """Production's own responses, in the capture."""

    def exchanges(self, session: CapturedSession, index: CaptureIndex,
                  baselines: BaselineResults) -> BaselineExchanges | None:  # fmt: skip
        return BaselineExchanges(index.exchanges[session.index])


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

    def exchanges(self, session: CapturedSession, index: CaptureIndex,
                  baselines: BaselineResults) -> BaselineExchanges | None:  # fmt: skip
        first = baselines[0].get(session.index)
        primary = exchanges_from_replay(session, first) if first is not None else []
        secondary = None
        if len(baselines) > 1 and session.index in baselines[1]:
            secondary = exchanges_from_replay(session, baselines[1][session.index])
        return BaselineExchanges(primary, secondary)


class RecordedBaselineStrategy(BaselineStrategy):
    """A recorded baseline under ``dir:PATH`` (``recorded``). An update run
    (``update_baseline``) compares nothing: it records every replayed session, and each exchange
    passes when it was recorded whole. Otherwise a session without a recording fails its
    exchanges with the command that records it. The candidate is compared as a recording would
    keep it (``recorded_format``: redacted, volatile headers masked)."""

    def __init__(self, baseline: Baseline, settings: Settings) -> None:
        super().__init__(baseline, settings)
        self._format: ResponseFormat | None = None

    def _recorded(self, index: CaptureIndex) -> RecordedBaseline:
        return RecordedBaseline(Path(self.baseline.ref), index.path, self.settings.diff_config())

    def exchanges(self, session: CapturedSession, index: CaptureIndex,
                  baselines: BaselineResults) -> BaselineExchanges | None:  # fmt: skip
        if self.settings.update_baseline:
            return None
        recording = self._recorded(index).load(session, index.exchanges[session.index])
        return None if recording.exchanges is None else BaselineExchanges(recording.exchanges)

    def candidate(self, session: CapturedSession, result: SessionResult) -> list[Exchange]:
        if self._format is None:
            self._format = ResponseFormat(self.settings.diff_config())
        kept = self._format.round_trip
        return [replace(e, response=kept(e.response)) for e in exchanges_from_replay(session, result)]

    def unjudged(self, run: ReplayRun, session: int, number: int, name: str) -> UnjudgedVerdict:
        if self.settings.update_baseline:
            return self._recorded_verdict(run, session, number, name)
        if session in run.without_baseline:
            index = run.capture
            missing = self._recorded(index).load(index.sessions[session], index.exchanges[session]).missing
            command = self.update_command(index.path)
            return UnjudgedVerdict(Unjudged.FAILED, f"{name}: no recorded baseline: {missing}\n"
                                                    f"record it with the release to compare against:\n  {command}")  # fmt: skip
        return super().unjudged(run, session, number, name)

    def _recorded_verdict(self, run: ReplayRun, session: int, number: int, name: str) -> UnjudgedVerdict:
        """An update run's verdict: passed when the exchange was recorded whole (or neither the
        SUT nor production answered it)."""
        result = run.sessions.get(session)
        if result is None:
            return UnjudgedVerdict(Unjudged.FAILED, f"{name}: not recorded: the session was not replayed")
        entries = recorded_exchanges(run.capture.sessions[session], result)
        entry = next((e for e in entries if e.exchange.number == number), None)
        if entry is None or entry.exchange.response is None:
            production = _find(run.capture.exchanges.get(session, []), number)
            if production is None or production.response is None:
                return UnjudgedVerdict(Unjudged.PASSED, "neither the SUT nor production answered it")
            return UnjudgedVerdict(Unjudged.FAILED, f"{name}: recorded without a response "
                                                    f"({result.outcome.value}: {result.reason or '-'})")  # fmt: skip
        if entry.cut is not None:
            return UnjudgedVerdict(Unjudged.FAILED, f"{name}: recorded, but its response was cut ({entry.cut}); "
                                                    "it is not compared until it is recorded whole")  # fmt: skip
        return UnjudgedVerdict(Unjudged.PASSED, "recorded")

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
        if self.settings.update_baseline:
            counts = recorded.update(run.sessions, run.capture, keep_unused=self.settings.baseline_keep_unused)
            return [counts.render(recorded.folder)]
        lines = []
        if run.without_baseline:
            lines.append(f"recorded baseline {recorded.folder}: {len(run.without_baseline)} session(s) without a "
                         f"recording; record them with the release to compare against: "
                         f"{self.update_command(run.capture.path)}")  # fmt: skip
        unused = recorded.unused(run.capture)
        if unused:
            lines.append(f"recorded baseline {recorded.folder}: {len(unused)} recording(s) of sessions the capture no "
                         "longer has; --tcpcopy-update-baseline removes them")  # fmt: skip
        return lines


class NoBaseline(BaselineStrategy):
    """``none``: replay only. An exchange passes when the candidate answered it, or when
    production did not answer it either; it fails when its session was not replayed or the
    candidate left it unanswered."""

    def exchanges(self, session: CapturedSession, index: CaptureIndex,
                  baselines: BaselineResults) -> BaselineExchanges | None:  # fmt: skip
        return None

    def unjudged(self, run: ReplayRun, session: int, number: int, name: str) -> UnjudgedVerdict:
        result = run.sessions.get(session)
        if result is None:
            return UnjudgedVerdict(Unjudged.FAILED, f"{name}: not replayed")
        production = _find(run.capture.exchanges.get(session, []), number)
        mine = _find(exchanges_from_replay(run.capture.sessions[session], result), number)
        if mine is not None and mine.response is not None:
            return UnjudgedVerdict(Unjudged.PASSED)
        if production is None or production.response is None:
            return UnjudgedVerdict(Unjudged.PASSED, "production did not answer it either")
        return UnjudgedVerdict(Unjudged.FAILED, f"{name}: no response from the candidate "
                                                f"({result.outcome.value}: {result.reason or '-'})")  # fmt: skip


def _find(exchanges: list[Exchange], number: int) -> Exchange | None:
    return next((e for e in exchanges if e.number == number), None)


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
