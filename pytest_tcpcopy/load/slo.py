"""Service level objectives over a ``LoadReport``: limits in, a verdict table out.

Latency limits (milliseconds, on nearest-rank percentiles) apply to every answered request
together; with ``per_endpoint`` to each endpoint as well. ``error_rate`` (a fraction, 0..1) applies
to session copies overall; errors are session outcomes, which no single endpoint owns. A figure
that cannot be measured (no answered request) breaks its limit: an SLO is never met by absence.
When an overall latency limit is broken and endpoints are not judged, the endpoints above it are
listed anyway (verdict ``over``), to show where the time goes.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import UsageError
from .latency import EndpointLoad, Latency
from .table import format_table, percent

ERROR_RATE = "error_rate"


class LatencyKind(enum.Enum):
    """Which latency the limits are on."""

    RESPONSE = "response"  # request's first byte sent -> last response byte
    TTFB = "ttfb"  # request's first byte sent -> first response byte
    CORRECTED = "corrected"  # request's scheduled time -> last response byte (paced replays)

    def of(self, figures: EndpointLoad) -> Latency:
        if self is LatencyKind.RESPONSE:
            return figures.response
        return figures.ttfb if self is LatencyKind.TTFB else figures.corrected

    @property
    def basis(self) -> str:
        if self is LatencyKind.CORRECTED:
            return "request's scheduled time to last response byte"
        what = "first response byte" if self is LatencyKind.TTFB else "last response byte"
        return f"request's first byte sent to {what}"


class Verdict(enum.Enum):
    OK = "ok"
    FAIL = "FAIL"
    OVER = "over"  # an endpoint above a broken overall limit, shown but not judged


@dataclass(frozen=True, slots=True)
class SloRow:
    """One limit against one measured figure; ``scope`` is ``"all"`` or an endpoint."""

    scope: str
    metric: str  # p50, p90, p99, max (milliseconds) or error_rate (fraction)
    limit: float
    measured: float | None
    judged: bool = True

    @property
    def within(self) -> bool:
        return self.measured is not None and self.measured <= self.limit

    @property
    def verdict(self) -> Verdict:
        if self.within:
            return Verdict.OK
        return Verdict.FAIL if self.judged else Verdict.OVER

    def cells(self) -> list[str]:
        if self.metric == ERROR_RATE:
            return [self.scope, "error rate", percent(self.limit), percent(self.measured), self.verdict.value]
        measured = "n/a" if self.measured is None else f"{self.measured:.3f}"
        return [self.scope, f"{self.metric} ms", f"{self.limit:g}", measured, self.verdict.value]


class SloViolation(AssertionError):
    """A replay broke its service level objectives; ``check`` holds every row."""

    def __init__(self, check: SloCheck) -> None:
        self.check = check
        super().__init__(check.render())


@dataclass(frozen=True, slots=True)
class SloCheck:
    latency: LatencyKind
    samples: int  # answered requests the overall percentiles are over
    rows: tuple[SloRow, ...]

    @property
    def broken(self) -> tuple[SloRow, ...]:
        return tuple(r for r in self.rows if r.verdict is Verdict.FAIL)

    @property
    def passed(self) -> bool:
        return not self.broken

    def raise_if_broken(self) -> None:
        if not self.passed:
            raise SloViolation(self)

    def render(self) -> str:
        judged = [r for r in self.rows if r.judged]
        title = "SLO met" if self.passed else f"SLO not met: {len(self.broken)} of {len(judged)} limits broken"
        basis = f"latency: {self.latency.basis}, nearest-rank percentiles"
        lines = [f"{title} ({basis} over {self.samples} answered requests)"]
        header = ["scope", "metric", "limit", "measured", "verdict"]
        lines += format_table(header, [r.cells() for r in self.rows], align="llrrl")
        if any(r.verdict is Verdict.OVER for r in self.rows):
            lines.append("over: an endpoint above a broken overall limit (judged only with per_endpoint=True)")
        return "\n".join(lines)


class Measured(Protocol):
    """What a check reads of the figures (``figures.LoadReport`` has it)."""

    @property
    def speed(self) -> float | None: ...

    @property
    def overall(self) -> EndpointLoad: ...

    @property
    def endpoints(self) -> Sequence[EndpointLoad]: ...

    @property
    def error_rate(self) -> float: ...


def check_slo(report: Measured, latency_limits: dict[str, float | None], error_rate: float | None, *,
              per_endpoint: bool = False, latency: str | LatencyKind = LatencyKind.RESPONSE) -> SloCheck:  # fmt: skip
    """Judge ``report`` against the limits: ``latency_limits`` maps p50/p90/p99/max to milliseconds
    (None: no limit), ``error_rate`` is a fraction of session copies."""
    try:
        kind = LatencyKind(latency)
    except ValueError:
        raise UsageError(f"latency={latency!r}: expected 'response', 'ttfb' or 'corrected'") from None
    if kind is LatencyKind.CORRECTED and report.speed is None:
        raise UsageError("latency='corrected' needs a paced replay (a speed): at speed max nothing is scheduled")
    limits = {m: v for m, v in latency_limits.items() if v is not None}
    for metric, value in limits.items():
        if not value >= 0:
            raise UsageError(f"{metric}_ms={value!r}: expected milliseconds >= 0")
    if error_rate is not None and not 0 <= error_rate <= 1:
        raise UsageError(f"error_rate={error_rate!r}: expected a fraction from 0 to 1")
    if not limits and error_rate is None:
        raise UsageError("assert_slo() without limits: give p50_ms, p90_ms, p99_ms, max_ms or error_rate")
    rows = [SloRow("all", m, v, _ms(kind.of(report.overall), m)) for m, v in limits.items()]
    if error_rate is not None:
        rows.append(SloRow("all", ERROR_RATE, error_rate, report.error_rate))
    broken_overall = {r.metric for r in rows if not r.within}
    for figures in report.endpoints:
        for metric, value in limits.items():
            row = SloRow(figures.endpoint, metric, value, _ms(kind.of(figures), metric), judged=per_endpoint)
            if per_endpoint or (metric in broken_overall and row.measured is not None and not row.within):
                rows.append(row)
    return SloCheck(kind, report.overall.answered, tuple(rows))


def _ms(latency: Latency, metric: str) -> float | None:
    seconds = getattr(latency, metric)
    return None if seconds is None else seconds * 1000
