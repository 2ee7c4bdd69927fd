"""What went wrong in one session copy's replay, read from the copier's typed result, as the
``compare.ReplayProblem``s the judge weighs (``compare.judge``: a differing exchange hit by a
problem is not comparable, with the problem's cause).

In order, for a ``SessionResult``:

1. the SUT died during the replay (``SutDeath``): ``SUT_DIED``, with the SUT's log tail, from the
   first request left unanswered (a dying process's sockets may close cleanly: a session that
   "completed" without its answers counts too);
2. each exchange whose response was cut (``ExchangeTiming.cut``): "SUT too slow: 40 of 79 bytes
   after 5.0 s" is ``SUT_TOO_SLOW``; any other cut (the session ended while the response was
   awaited) takes the cause of the session's outcome; from that exchange's request on;
3. a session that did not complete: the cause of its outcome (``Cause.of_outcome``: timeout,
   reset, not established, aborted, unfinished, not replayed) with its reason, from the first
   request left unanswered: the first whose response was not seen whole, by its framing or its
   captured length (in a session that failed, a response ended by the SUT's close or silence may
   be cut short), else the first not sent.

A problem covers the exchanges whose request starts at or after its offset; where several do,
the nearest before the exchange names the cause, and of equals the first listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..compare import Cause, ReplayProblem
from ..replay.results import Outcome, SessionResult

TOO_SLOW = "SUT too slow: "


@dataclass(frozen=True, slots=True)
class SutDeath:
    """A SUT that died during the replay: how (``exited with code 1``) and its log tail."""

    how: str
    log_tail: str | None = None


def replay_problems(result: SessionResult, death: SutDeath | None = None) -> list[ReplayProblem]:
    """The problems of one session copy's replay; see the module comment."""
    problems: list[ReplayProblem] = []
    complete = result.outcome is Outcome.COMPLETE
    cut = [timing for timing in result.exchanges if timing.cut is not None]
    if complete and death is None and not cut:
        return problems  # the common case, without the work below
    unanswered = first_unanswered(result)
    if death is not None and (unanswered is not None or not complete):
        problems.append(ReplayProblem(Cause.SUT_DIED, death.how, unanswered, death.log_tail))
    outcome_cause = Cause.of_outcome(result.outcome) or Cause.REPLAY_ABORTED
    for timing in cut:
        if timing.cut.startswith(TOO_SLOW):
            problems.append(ReplayProblem(Cause.SUT_TOO_SLOW, timing.cut[len(TOO_SLOW):], timing.request_offset))
        else:
            problems.append(ReplayProblem(outcome_cause, timing.cut, timing.request_offset))
    if not complete:
        problems.append(ReplayProblem(outcome_cause, result.reason, unanswered))
    return problems


WHOLE = frozenset({"framing", "captured_length"})  # response ends that say a response was read whole


def suspect(result: SessionResult) -> bool:
    """Whether a session copy may have ended because its SUT died: it did not complete, or a
    response of it was not seen whole."""
    return result.outcome is not Outcome.COMPLETE or any(
        t.cut is not None or t.response_end not in WHOLE for t in result.exchanges
    )


def first_unanswered(result: SessionResult) -> int | None:
    """The client-stream offset of the first request a session copy left unanswered: the first
    whose response was not judged whole (``WHOLE``), else the first byte not sent; None when
    nothing was sent (the whole session)."""
    sent_end = 0
    for timing in result.exchanges:
        if timing.cut is not None or timing.response_end not in WHOLE:
            return timing.request_offset
        sent_end = max(sent_end, timing.request_offset + timing.request_bytes)
    return sent_end if result.exchanges else None
