"""Judging one session: the candidate's exchanges against the baseline's, position by position.

For each position, in order:

1. A baseline exchange hit by a problem of the baseline's replay (``baseline_problems``) that is
   missing, not clean, or differs: not comparable, with that problem's cause.
2. A baseline exchange that is not clean (a capture gap, bad traffic): not comparable
   (``BASELINE_UNCLEAN``), never diffed.
3. The responses are diffed (with noise set apart by a secondary baseline): no real difference
   is ``SAME``.
4. A differing candidate exchange hit by a problem of the candidate's replay
   (``candidate_problems``: it timed out, was reset, the SUT died) is not comparable with that
   problem's cause: a cut response says nothing about the release.
5. Anything else that differs is ``DIFFERENT``, including exchanges a clean candidate answered
   fewer or more of than the baseline.

A problem hits the exchanges whose request starts at or after its ``request_offset`` (both
sides split the same client bytes, so the offsets agree); of several, the nearest before the
exchange names its cause.
"""

from __future__ import annotations

from collections.abc import Sequence

from .config import DiffConfig
from .diff import diff_exchange
from .exchange import Exchange
from .noise import Verdict, classify
from .usage import IgnoreUsage
from .verdict import Cause, ComparisonStatus, ExchangeComparison, NotComparable, ReplayProblem

_DEFAULT = DiffConfig()


def compare_sessions(
    baseline: list[Exchange],
    candidate: list[Exchange],
    config: DiffConfig = _DEFAULT,
    secondary: list[Exchange] | None = None,
    *,
    candidate_problems: Sequence[ReplayProblem] = (),
    baseline_problems: Sequence[ReplayProblem] = (),
    usage: IgnoreUsage | None = None,
) -> list[ExchangeComparison]:
    """The verdict on every exchange position of one session; see the module comment.

    With ``secondary`` (the same session from a second baseline instance), differences the two
    baselines also show are set apart as noise (``noise.classify``). ``usage`` records which
    ignore paths matched something.
    """
    out = []
    for i in range(max(len(baseline), len(candidate))):
        base = baseline[i] if i < len(baseline) else None
        cand = candidate[i] if i < len(candidate) else None
        out.append(_judge(base, cand, secondary[i] if secondary and i < len(secondary) else None,
                          secondary is not None, config, candidate_problems, baseline_problems, usage))  # fmt: skip
    return out


def _judge(
    base: Exchange | None,
    cand: Exchange | None,
    second: Exchange | None,
    with_secondary: bool,
    config: DiffConfig,
    candidate_problems: Sequence[ReplayProblem],
    baseline_problems: Sequence[ReplayProblem],
    usage: IgnoreUsage | None,
) -> ExchangeComparison:
    ref = base if base is not None else cand
    assert ref is not None
    offset = getattr((base or cand).request, "offset", None)

    def verdict(status: ComparisonStatus, **kw) -> ExchangeComparison:
        return ExchangeComparison(ref.id, ref.session, ref.number, status, ref.request, base, cand, **kw)

    def not_comparable(problem: ReplayProblem, on_baseline: bool = False) -> ExchangeComparison:
        return verdict(ComparisonStatus.NOT_COMPARABLE, cause=NotComparable.of(problem, config.redaction, on_baseline))

    base_problem = covering(baseline_problems, offset)
    if base_problem is not None and (base is None or base.malformed):
        return not_comparable(base_problem, on_baseline=True)
    if base is not None and base.malformed:
        return not_comparable(ReplayProblem(Cause.BASELINE_UNCLEAN, base.malformed))
    if with_secondary:
        split = classify(base, second, cand, config, usage)
    else:
        split = Verdict(diff_exchange(base, cand, config, usage), None)
    if split.real is None:
        return verdict(ComparisonStatus.SAME, noise=split.noise)
    if base_problem is not None:
        return not_comparable(base_problem, on_baseline=True)
    cand_problem = covering(candidate_problems, offset)
    if cand_problem is not None:
        return not_comparable(cand_problem)
    return verdict(ComparisonStatus.DIFFERENT, diff=split.real, noise=split.noise)


def covering(problems: Sequence[ReplayProblem], offset: int | None) -> ReplayProblem | None:
    """The problem nearest before the exchange at ``offset`` (the one that hit its own request,
    or the last one before it; of equals, the first); a problem of the whole session only when
    no other hits it."""
    hit = [p for p in problems if p.covers(offset)]
    if not hit:
        return None
    return max(hit, key=lambda p: -1 if p.request_offset is None else p.request_offset)
