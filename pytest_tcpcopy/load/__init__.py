"""Load figures of a replay (amplified or not): rates, latency percentiles, errors, and SLOs.

``LoadReport.from_run(run)`` (or ``LoadReport.build(result, exchanges, capture, amplify=,
speed=)``) reads the copier's per-request timings; ``report.assert_slo(p99_ms=..., error_rate=...)`` raises
``SloViolation`` with a verdict table. Pure: no I/O, no pytest.
"""

from .figures import LoadReport, Rates
from .latency import EndpointLoad, Latency, nearest_rank
from .samples import RAW_ENDPOINT, LoadSamples, RequestMap, RequestSample, SessionSamples, endpoint_of, session_samples
from .slo import LatencyKind, SloCheck, SloRow, SloViolation, Verdict, check_slo

__all__ = [
    "RAW_ENDPOINT",
    "EndpointLoad",
    "Latency",
    "LatencyKind",
    "LoadReport",
    "LoadSamples",
    "Rates",
    "RequestMap",
    "RequestSample",
    "SessionSamples",
    "SloCheck",
    "SloRow",
    "SloViolation",
    "Verdict",
    "check_slo",
    "endpoint_of",
    "nearest_rank",
    "session_samples",
]
