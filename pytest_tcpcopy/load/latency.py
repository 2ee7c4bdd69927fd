"""Latency figures: nearest-rank percentiles of a set of latencies, overall and per endpoint.

Percentiles are nearest rank: the p-th percentile of n values is the value of rank
``ceil(p * n / 100)`` in ascending order (rank 1 for p = 0), always a measured value (see
``figures`` for what each latency measures).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from ..errors import UsageError
from .samples import RequestSample

PERCENTILES = (50, 90, 99)


def nearest_rank(ordered: list[float], percentile: float) -> float | None:
    """The ``percentile``-th nearest-rank percentile of ``ordered`` (ascending); None if empty."""
    if not 0 <= percentile <= 100:
        raise UsageError(f"percentile {percentile}: expected 0..100")
    if not ordered:
        return None
    rank = math.ceil(Fraction(str(percentile)) * len(ordered) / 100)
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True, slots=True)
class Latency:
    """Nearest-rank percentiles of a set of latencies, in seconds (None when there are none)."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, values: Iterable[float]) -> Latency:
        ordered = sorted(values)
        p50, p90, p99 = (nearest_rank(ordered, p) for p in PERCENTILES)
        return cls(len(ordered), p50, p90, p99, ordered[-1] if ordered else None)

    def to_json(self) -> dict:
        def millis(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 3)

        return {"count": self.count, "p50_ms": millis(self.p50), "p90_ms": millis(self.p90),
                "p99_ms": millis(self.p99), "max_ms": millis(self.max)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class EndpointLoad:
    """The figures of one endpoint (``"all"`` for every request together)."""

    endpoint: str
    requests: int  # captured requests sent, over every session copy
    answered: int  # of them, those that got at least one response byte
    ttfb: Latency
    response: Latency
    corrected: Latency  # scheduled time -> last response byte (paced replays only)
    lag: Latency  # scheduled time -> request's first byte sent, over every request sent

    @classmethod
    def of(cls, endpoint: str, requests: int, samples: list[RequestSample]) -> EndpointLoad:
        answered = [s for s in samples if s.answered]
        return cls(
            endpoint,
            requests,
            sum(s.requests for s in answered),
            Latency.of(s.ttfb for s in answered),
            Latency.of(s.response_time for s in answered if s.response_time is not None),
            Latency.of(s.corrected_time for s in answered if s.corrected_time is not None),
            Latency.of(s.schedule_lag for s in samples if s.schedule_lag is not None),
        )

    def to_json(self) -> dict:
        return {"endpoint": self.endpoint, "requests": self.requests, "answered": self.answered,
                "ttfb": self.ttfb.to_json(), "response": self.response.to_json(),
                "corrected": self.corrected.to_json(), "schedule_lag": self.lag.to_json()}  # fmt: skip
