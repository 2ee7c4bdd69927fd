"""The verdict on one exchange: same, different, or not comparable with a named cause.

Three kinds, never mixed:

- ``SAME``: the candidate's response matches the baseline's (noise aside).
- ``DIFFERENT``: the responses differ; the candidate is to blame. This includes a clean candidate
  that answered fewer or more exchanges than the baseline (it closed the connection cleanly):
  the diff then holds an ``exchange`` change.
- ``NOT_COMPARABLE``: nothing can be said about the candidate; ``NotComparable`` names the
  ``Cause`` (the SUT was too slow, reset, died; the baseline exchange is not clean; the session
  was not replayed; no baseline is recorded yet...) with the detail the caller knows.

Every ``ExchangeComparison`` names its exchange (``exchange_id``, ``session``, ``number``) even
when neither side has the exchange, so no rendering ever lacks it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import UsageError
from ..replay.results import Outcome
from .diff import ExchangeDiff
from .exchange import Exchange
from .redact import Redaction

MAX_LOG_LINES = 40  # lines of a SUT's log tail kept with a cause


class ComparisonStatus(enum.Enum):
    """The verdict on one exchange (see the module comment)."""

    SAME = "same"
    DIFFERENT = "different"
    NOT_COMPARABLE = "not_comparable"


class Cause(enum.Enum):
    """Why an exchange is not comparable; ``title`` is its message."""

    SUT_TOO_SLOW = "sut_too_slow"
    SUT_RESET = "sut_reset"
    SUT_DIED = "sut_died"
    SUT_REFUSED = "sut_refused"
    REPLAY_STOPPED = "replay_stopped"
    REPLAY_ABORTED = "replay_aborted"
    NOT_REPLAYED = "not_replayed"
    BASELINE_UNCLEAN = "baseline_unclean"
    BASELINE_MISSING = "baseline_missing"
    NO_RECORDED_BASELINE = "no_recorded_baseline"

    @property
    def title(self) -> str:
        return _TITLES[self]

    @classmethod
    def of_outcome(cls, outcome: Outcome) -> Cause | None:
        """The cause a replayed session's outcome stands for (None for a complete session)."""
        return _OF_OUTCOME[outcome]


_TITLES = {
    Cause.SUT_TOO_SLOW: "SUT too slow",
    Cause.SUT_RESET: "SUT reset the connection",
    Cause.SUT_DIED: "SUT died",
    Cause.SUT_REFUSED: "SUT did not accept the connection",
    Cause.REPLAY_STOPPED: "replay stopped before the session ended",
    Cause.REPLAY_ABORTED: "replay gave the session up",
    Cause.NOT_REPLAYED: "session not replayed",
    Cause.BASELINE_UNCLEAN: "baseline exchange not clean",
    Cause.BASELINE_MISSING: "the baseline lacks this session",
    Cause.NO_RECORDED_BASELINE: "no recorded baseline",
}
_OF_OUTCOME = {
    Outcome.COMPLETE: None,
    Outcome.SUT_RESET: Cause.SUT_RESET,
    Outcome.NOT_ESTABLISHED: Cause.SUT_REFUSED,
    Outcome.TIMEOUT: Cause.SUT_TOO_SLOW,
    Outcome.ABORTED: Cause.REPLAY_ABORTED,
    Outcome.UNFINISHED: Cause.REPLAY_STOPPED,
    Outcome.NOT_REPLAYED: Cause.NOT_REPLAYED,
}


@dataclass(frozen=True, slots=True)
class ReplayProblem:
    """Something that went wrong in a replay, as its caller knows it (typed, from the copier's
    results): a response cut because the SUT was too slow, reset, died...

    ``request_offset`` is the client-stream offset of the first request it hit (a timing's
    ``request_offset``); the problem covers every exchange whose request starts there or later.
    None covers the whole session. ``detail`` says what was seen ("1200 of 3400 bytes after
    5 s"); ``log_tail`` is the SUT's log tail when it died.
    """

    cause: Cause
    detail: str = ""
    request_offset: int | None = None
    log_tail: str | None = None

    def covers(self, offset: int | None) -> bool:
        """True when the exchange whose request starts at ``offset`` is hit. An exchange of
        unknown offset is hit by every problem: nothing says it came before it."""
        return self.request_offset is None or offset is None or offset >= self.request_offset


@dataclass(frozen=True, slots=True)
class NotComparable:
    """The named cause of a ``NOT_COMPARABLE`` verdict; ``on_baseline`` when it hit the baseline's
    replay rather than the candidate's. ``detail`` and ``log_tail`` are already redacted."""

    cause: Cause
    detail: str = ""
    log_tail: str | None = None
    on_baseline: bool = False

    @classmethod
    def of(cls, problem: ReplayProblem, redaction: Redaction, on_baseline: bool = False) -> NotComparable:
        """The cause of ``problem``, its detail and log tail redacted and the tail bounded."""
        tail = None
        if problem.log_tail:
            tail = redaction.scrub_text("\n".join(problem.log_tail.splitlines()[-MAX_LOG_LINES:]))
        return cls(problem.cause, redaction.scrub_text(problem.detail), tail, on_baseline)

    @property
    def message(self) -> str:
        """``"SUT too slow: 1200 of 3400 bytes after 5 s"``; the baseline's own problems say so."""
        title = self.cause.title
        if self.on_baseline:
            title = f"baseline replay: {title}"
        return f"{title}: {self.detail}" if self.detail else title

    def to_json(self) -> dict:
        return {
            "cause": self.cause.value,
            "message": self.message,
            "on_baseline": self.on_baseline,
            "log_tail": self.log_tail,
        }


@dataclass(frozen=True, slots=True)
class ExchangeComparison:
    """The verdict on one exchange of a session: which exchange, the verdict, and why.

    ``request`` is the exchange's request (from either side, or the capture), for grouping;
    ``diff`` holds the real differences (``DIFFERENT`` only), ``noise`` what a secondary baseline
    showed differs anyway, ``cause`` why it is ``NOT_COMPARABLE``.
    """

    exchange_id: str
    session: int
    number: int
    status: ComparisonStatus
    request: object | None = None
    baseline: Exchange | None = None
    candidate: Exchange | None = None
    diff: ExchangeDiff | None = None
    noise: ExchangeDiff | None = None
    cause: NotComparable | None = None

    def __post_init__(self) -> None:
        if (self.status is ComparisonStatus.NOT_COMPARABLE) != (self.cause is not None):
            raise UsageError(f"{self.exchange_id}: a cause goes with a not comparable verdict, and only there")
        if (self.status is ComparisonStatus.DIFFERENT) != (self.diff is not None):
            raise UsageError(f"{self.exchange_id}: a diff goes with a different verdict, and only there")

    @classmethod
    def not_comparable(
        cls, exchange: Exchange, problem: ReplayProblem, redaction: Redaction | None = None
    ) -> ExchangeComparison:
        """The verdict on ``exchange`` (as captured) when nothing was compared for it: the session
        was not replayed, the baseline lacks it, no baseline is recorded yet."""
        cause = NotComparable.of(problem, redaction or Redaction())
        status = ComparisonStatus.NOT_COMPARABLE
        return cls(exchange.id, exchange.session, exchange.number, status, exchange.request, cause=cause)

    @property
    def id(self) -> str:
        return self.exchange_id

    @property
    def failed(self) -> bool:
        """True for a ``DIFFERENT`` verdict: the candidate is to blame."""
        return self.status is ComparisonStatus.DIFFERENT

    @property
    def reason(self) -> str | None:
        """The message of the cause of a ``NOT_COMPARABLE`` verdict."""
        return self.cause.message if self.cause else None

    def __repr__(self) -> str:
        # Never the exchanges themselves: their bytes may hold secrets (pytest prints reprs).
        return f"<ExchangeComparison {self.exchange_id} {self.status.value}>"

    def render(self, limit: int = 50) -> str:
        """The verdict as text, headed by the exchange id: the diff, the noise, or the cause."""
        if self.cause is not None:
            lines = [f"{self.exchange_id}: not comparable: {self.cause.message}"]
            if self.cause.log_tail:
                lines += ["  --- SUT log (tail) ---"] + ["  " + line for line in self.cause.log_tail.splitlines()]
        elif self.diff is not None:
            lines = [self.diff.render(limit)]
        else:
            lines = [f"{self.exchange_id}: same"]
        if self.noise:
            lines += ["  noise (the baseline differs from itself here too):"]
            lines += ["    " + line for change in self.noise.changes[:limit] for line in change.render().splitlines()]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "exchange": self.exchange_id,
            "session": self.session,
            "number": self.number,
            "status": self.status.value,
            "reason": self.reason,
            "cause": self.cause.to_json() if self.cause else None,
            "changes": [c.to_json() for c in self.diff.changes] if self.diff else [],
            "noise": [c.to_json() for c in self.noise.changes] if self.noise else [],
        }
