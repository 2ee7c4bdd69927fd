"""The load figures of one replay: offered and achieved rates, latency percentiles, errors.

``LoadReport`` is built from the request samples a judged replay gathered (``LoadSamples``, in
``ReplayRun.load``) and the indexed capture, or from a copier result that holds its sessions and
the captured exchanges. Definitions:

- **offered rate**: what the capture's schedule asks of the SUT. The selected sessions span
  ``window`` seconds of capture time (first packet of the earliest to last packet of the latest);
  at speed ``x`` they are replayed in ``window / x`` seconds, each ``amplify`` times, so the
  offered rate is ``amplify * count * x / window`` for requests and for sessions. At speed
  ``max`` nothing is scheduled: the copier goes as fast as possible and only the achieved rate
  means anything.
- **achieved rate**: requests answered and session copies completed per second of the replay's
  elapsed time (from its first captured packet fed to its end).
- **latency**: per request (see ``samples``), time to first byte (``ttfb``: first response byte
  minus the request's first byte sent) and response time (last response byte minus the same).
  Both are *service* times: they start when the copier sent the request. A paced replay also
  records when the capture's schedule wanted each request sent; then **corrected** latency (last
  response byte minus the scheduled time) is free of coordinated omission, and **schedule lag**
  (sent minus scheduled) shows how far the copier fell behind the schedule.
- **delayed starts**: sessions that waited for a slot under the bound on active sessions; they
  started behind the schedule, so the offered rate was not met.
- **percentiles**: nearest rank. The p-th percentile of n values is the value of rank
  ``ceil(p * n / 100)`` in ascending order (rank 1 for p = 0): the smallest measured value that at
  least p % of the values do not exceed. It is always a measured value, never interpolated; p100
  is the maximum.
- **errors**: session copies that did not end ``complete`` (reset by the SUT, timed out, never
  established, aborted, unfinished), plus copies the copier never started (``not_started``:
  the replay stopped first). ``error_rate`` is errors over the session copies asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..compare.exchange import Exchange
from ..errors import UsageError
from ..model import CaptureIndex, ReplayRun
from ..replay.results import ReplayResult
from .latency import EndpointLoad
from .samples import LoadSamples, RequestSample
from .slo import SloCheck, check_slo
from .table import format_table, ms, percent

NOT_STARTED = "not_started"
ERROR_ORDER = ("sut_reset", "timeout", "not_established", "aborted", "unfinished", NOT_STARTED)  # for display


@dataclass(frozen=True, slots=True)
class Rates:
    """Per second: requests and session copies."""

    requests: float
    sessions: float

    def to_json(self) -> dict:
        return {"requests_per_s": round(self.requests, 3), "sessions_per_s": round(self.sessions, 3)}


@dataclass(frozen=True, slots=True)
class LoadReport:
    capture: str
    sessions: int  # captured sessions replayed
    amplify: int
    speed: float | None  # None: as fast as possible
    window: float  # seconds of capture time the replayed sessions span
    scheduled: int  # captured requests in the replayed sessions (per copy)
    elapsed: float  # seconds the replay took
    outcomes: Mapping[str, int]  # session copies per outcome (``not_started`` included)
    resends: int  # requests sent again after a reconnect
    overall: EndpointLoad
    endpoints: tuple[EndpointLoad, ...]  # by endpoint name
    delayed_starts: int = 0  # sessions that waited for a slot: the schedule was not kept

    @classmethod
    def from_run(cls, run: ReplayRun) -> LoadReport:
        """The figures of ``run``, from the samples its judge gathered (``run.load``)."""
        if not isinstance(run.load, LoadSamples):
            raise UsageError(f"the replay of {run.capture.path.name} gathered no load figures: replay it with "
                             "load figures on (the tcpcopy fixture's runner, or amplify > 1)")  # fmt: skip
        return cls.of(run.load, run.capture, amplify=run.settings.amplify, speed=run.settings.speed,
                      elapsed=run.candidate.elapsed, delayed_starts=run.candidate.delayed_starts)  # fmt: skip

    @classmethod
    def build(cls, result: ReplayResult, exchanges: Mapping[int, list[Exchange]], capture: CaptureIndex, *,
              amplify: int, speed: float | None) -> LoadReport:  # fmt: skip
        """The figures of ``result`` (the copier's, every session held) replaying ``capture``'s
        selected sessions, whose captured exchanges ``exchanges`` holds, ``amplify`` times at
        ``speed`` (None: max)."""
        samples = LoadSamples()
        for session in result.sessions:
            if session.session not in exchanges:
                raise UsageError(f"replay result of session {session.session}, which {capture.path.name} does not hold")
            samples.add(session, exchanges[session.session])
        return cls.of(samples, capture, amplify=amplify, speed=speed, elapsed=result.elapsed,
                      delayed_starts=result.delayed_starts)  # fmt: skip

    @classmethod
    def of(cls, samples: LoadSamples, capture: CaptureIndex, *, amplify: int, speed: float | None, elapsed: float,
           delayed_starts: int = 0) -> LoadReport:  # fmt: skip
        """The figures of the gathered ``samples`` of a replay of ``capture``'s selected sessions."""
        outcomes = dict(samples.outcomes)
        missing = len(capture.selected) * amplify - samples.copies
        if missing > 0:
            outcomes[NOT_STARTED] = missing
        window = capture.window[1] - capture.window[0] if capture.window else 0.0
        by_endpoint: dict[str, list[RequestSample]] = {endpoint: [] for endpoint in samples.sent}
        for sample in samples.samples:
            by_endpoint[sample.endpoint].append(sample)
        sent = samples.sent
        return cls(
            capture=capture.path.name,
            sessions=len(capture.selected),
            amplify=amplify,
            speed=speed,
            window=window,
            scheduled=capture.requests,
            elapsed=elapsed,
            outcomes=outcomes,
            resends=samples.resends,
            overall=EndpointLoad.of("all", sum(sent.values()), samples.samples),
            endpoints=tuple(EndpointLoad.of(e, sent[e], by_endpoint[e]) for e in sorted(sent)),
            delayed_starts=delayed_starts,
        )

    # -- counts ---------------------------------------------------------------------------------

    @property
    def copies(self) -> int:
        """Session copies asked for: sessions x amplify."""
        return self.sessions * self.amplify

    @property
    def completed(self) -> int:
        return self.outcomes.get("complete", 0)

    @property
    def errors(self) -> int:
        return sum(count for outcome, count in self.outcomes.items() if outcome != "complete")

    @property
    def resets(self) -> int:
        return self.outcomes.get("sut_reset", 0)

    @property
    def timeouts(self) -> int:
        return self.outcomes.get("timeout", 0)

    @property
    def not_established(self) -> int:
        return self.outcomes.get("not_established", 0)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.copies if self.copies else None

    def endpoint(self, name: str) -> EndpointLoad:
        for figures in self.endpoints:
            if figures.endpoint == name:
                return figures
        raise KeyError(
            f"no endpoint {name!r} in this replay; endpoints: {', '.join(e.endpoint for e in self.endpoints)}"
        )

    # -- rates ----------------------------------------------------------------------------------

    @property
    def offered(self) -> Rates | None:
        """What the capture's schedule asks for; None at speed max (or a capture spanning no time)."""
        if self.speed is None or self.window <= 0:
            return None
        seconds = self.window / self.speed
        return Rates(self.amplify * self.scheduled / seconds, self.copies / seconds)

    @property
    def achieved(self) -> Rates | None:
        """Requests answered and session copies completed per second; None if no time elapsed."""
        if self.elapsed <= 0:
            return None
        return Rates(self.overall.answered / self.elapsed, self.completed / self.elapsed)

    # -- service level objectives ---------------------------------------------------------------

    def check_slo(self, *, p99_ms: float | None = None, p90_ms: float | None = None, p50_ms: float | None = None,
                  max_ms: float | None = None, error_rate: float | None = None, per_endpoint: bool = False,
                  latency: str = "response") -> SloCheck:  # fmt: skip
        """Judge the figures against the limits given (see ``slo.check_slo``)."""
        limits = {"p50": p50_ms, "p90": p90_ms, "p99": p99_ms, "max": max_ms}
        return check_slo(self, limits, error_rate, per_endpoint=per_endpoint, latency=latency)

    def assert_slo(self, *, p99_ms: float | None = None, p90_ms: float | None = None, p50_ms: float | None = None,
                   max_ms: float | None = None, error_rate: float | None = None, per_endpoint: bool = False,
                   latency: str = "response") -> None:  # fmt: skip
        """Raise ``SloViolation`` (an AssertionError) with the table of limits when one is broken."""
        self.check_slo(p99_ms=p99_ms, p90_ms=p90_ms, p50_ms=p50_ms, max_ms=max_ms, error_rate=error_rate,
                       per_endpoint=per_endpoint, latency=latency).raise_if_broken()  # fmt: skip

    # -- output ---------------------------------------------------------------------------------

    def render(self) -> str:
        """A compact table: rates, errors, then latency percentiles (ms) overall and per endpoint."""
        speed = "max" if self.speed is None else f"x{self.speed:g}"
        sessions = f"{self.sessions} session" + ("" if self.sessions == 1 else "s")
        head = f"load: {self.capture}, {sessions} x{self.amplify} = {self.copies} copies"
        lines = [f"{head}, speed {speed}, {self.elapsed:.3f} s"]
        offered, achieved = self.offered, self.achieved
        rates = [["", "offered", "achieved"]]
        for name in ("requests", "sessions"):
            if self.speed is None:
                wanted = "as fast as possible"
            else:
                wanted = "-" if offered is None else f"{getattr(offered, name):.1f}/s"
            rates.append([name, wanted, "-" if achieved is None else f"{getattr(achieved, name):.1f}/s"])
        lines += format_table(rates[0], rates[1:], "  ")
        lines.append(f"  {self.overall.requests} requests sent, {self.overall.answered} answered, "
                     f"{self.resends} resent; {self.completed} of {self.copies} copies complete")  # fmt: skip
        failed = sorted((k for k in self.outcomes if k != "complete"), key=_error_order)
        kinds = [f"{self.outcomes[k]} {k.replace('_', ' ')}" for k in failed]
        lines.append(f"  errors: {self.errors} of {self.copies} copies ({percent(self.error_rate)})"
                     + (": " + ", ".join(kinds) if kinds else ""))  # fmt: skip
        if self.delayed_starts:
            lines.append(f"  offered load not met: {self.delayed_starts} sessions waited for a free slot "
                         "(bound on active sessions) and started behind the schedule")  # fmt: skip
        header = ["latency ms", "n", "ttfb p50", "p90", "p99", "max", "response p50", "p90", "p99", "max"]
        rows = [_latency_row(self.overall)] + [_latency_row(e) for e in self.endpoints]
        lines += format_table(header, rows, "  ")
        if self.overall.lag.count:
            header = ["from schedule ms", "n", "corrected p50", "p90", "p99", "max", "lag p50", "p99", "max"]
            rows = [_schedule_row(self.overall)] + [_schedule_row(e) for e in self.endpoints]
            lines += format_table(header, rows, "  ")
        return "\n".join(lines)

    def to_json(self) -> dict:
        offered, achieved = self.offered, self.achieved
        return {
            "capture": self.capture,
            "sessions": self.sessions,
            "amplify": self.amplify,
            "speed": "max" if self.speed is None else self.speed,
            "copies": self.copies,
            "scheduled_requests": self.scheduled * self.amplify,
            "window": round(self.window, 6),
            "elapsed": round(self.elapsed, 6),
            "offered": None if offered is None else offered.to_json(),
            "achieved": None if achieved is None else achieved.to_json(),
            "outcomes": dict(sorted(self.outcomes.items())),
            "errors": self.errors,
            "error_rate": self.error_rate,
            "resends": self.resends,
            "delayed_starts": self.delayed_starts,
            "overall": self.overall.to_json(),
            "endpoints": [e.to_json() for e in self.endpoints],
        }

    def __str__(self) -> str:
        return self.render()


def _error_order(outcome: str) -> tuple[int, str]:
    return (ERROR_ORDER.index(outcome) if outcome in ERROR_ORDER else len(ERROR_ORDER), outcome)


def _latency_row(figures: EndpointLoad) -> list[str]:
    t, r = figures.ttfb, figures.response
    return [figures.endpoint, str(figures.answered), ms(t.p50), ms(t.p90), ms(t.p99), ms(t.max),
            ms(r.p50), ms(r.p90), ms(r.p99), ms(r.max)]  # fmt: skip


def _schedule_row(figures: EndpointLoad) -> list[str]:
    c, lag = figures.corrected, figures.lag
    return [figures.endpoint, str(c.count), ms(c.p50), ms(c.p90), ms(c.p99), ms(c.max),
            ms(lag.p50), ms(lag.p99), ms(lag.max)]  # fmt: skip
