"""From a replay's exchange timings to request samples: which captured request each timing sent,
and how long the SUT took to answer it.

The copier reports one timing per burst of client bytes it sent (``request_offset`` and
``request_bytes`` in the client stream) and charges the response bytes that arrive afterwards to
the latest burst. A burst is mapped to the captured request holding its first byte, exactly as
``compare.pairing.replay_turns`` charges response bytes. Then:

- a burst that starts a request opens that request's sample; the request was *sent*;
- a burst that continues a request already opened (a request written in several bursts: the
  capture's pace, a full window) adds its response times to that sample, so latency runs from the
  request's first byte;
- a burst that starts a request already sent (the copier reconnected and sent it again) replaces
  the sample: the latency is that of the attempt the SUT answered; it is counted as a resend;
- requests whose first byte travelled in a burst opened by an earlier request (pipelining) are
  sent, but share that burst's sample: their latencies cannot be told apart.

A timing's ``scheduled_at`` (when the capture's schedule wanted the burst sent; absent when the
replay was unpaced) goes with the sample its burst opens: latency measured from it is *corrected*
for coordinated omission (a request the copier sent late, because the SUT was slow with the
ones before it, is charged for the wait).

Endpoints are ``"METHOD /path"`` (no query string) for HTTP requests and ``"raw"`` otherwise.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from ..compare.exchange import Exchange, HttpRequest, RawMessage
from ..replay.results import ExchangeTiming, SessionResult

RAW_ENDPOINT = "raw"


@dataclass(frozen=True, slots=True)
class RequestSample:
    """One captured request (with any pipelined followers) as one session copy sent it.

    Times are seconds from the replay's start; ``requests`` counts the captured requests whose
    first byte went out in this sample's bursts (1, or more when pipelined); ``scheduled_at`` is
    when the capture's schedule wanted the request sent (None when unpaced).
    """

    session: int
    copy: int
    endpoint: str
    sent_at: float
    first_response_at: float | None
    last_response_at: float | None
    response_bytes: int
    requests: int = 1
    scheduled_at: float | None = None

    @property
    def answered(self) -> bool:
        return self.first_response_at is not None

    @property
    def ttfb(self) -> float | None:
        """Seconds from the request's first byte sent to the response's first byte."""
        return None if self.first_response_at is None else self.first_response_at - self.sent_at

    @property
    def response_time(self) -> float | None:
        """Seconds from the request's first byte sent to the last response byte."""
        return None if self.last_response_at is None else self.last_response_at - self.sent_at

    @property
    def corrected_time(self) -> float | None:
        """Seconds from the request's scheduled time to the last response byte (free of
        coordinated omission); None when unpaced or unanswered."""
        if self.last_response_at is None or self.scheduled_at is None:
            return None
        return self.last_response_at - self.scheduled_at

    @property
    def schedule_lag(self) -> float | None:
        """Seconds the request's first byte went out after its scheduled time; None when unpaced."""
        return None if self.scheduled_at is None else self.sent_at - self.scheduled_at


@dataclass(frozen=True, slots=True)
class SessionSamples:
    """What one session copy sent: its samples, and per endpoint the captured requests it sent."""

    samples: tuple[RequestSample, ...]
    sent: dict[str, int]  # endpoint -> captured requests sent (each once, resends aside)
    resends: int  # requests sent again on a new connection after the SUT closed or reset


def endpoint_of(exchange: Exchange) -> str:
    request = exchange.request
    if isinstance(request, HttpRequest):
        return f"{request.method} {request.path}"
    return RAW_ENDPOINT


class RequestMap:
    """The captured requests of one session, by the client-stream offset of their first byte."""

    def __init__(self, exchanges: list[Exchange]) -> None:
        located = sorted((e.request.offset, endpoint_of(e)) for e in exchanges if _has_bytes(e.request))
        self.starts = [offset for offset, _ in located]
        self.endpoints = [endpoint for _, endpoint in located]

    def __len__(self) -> int:
        return len(self.starts)

    def holding(self, offset: int) -> int:
        """Index of the request holding client byte ``offset`` (bytes before the first request,
        such as skipped blank lines, belong to the first)."""
        return max(bisect_right(self.starts, offset) - 1, 0)

    def starting_in(self, offset: int, length: int) -> range:
        """Indexes of the requests whose first byte lies in [offset, offset + length)."""
        return range(bisect_left(self.starts, offset), bisect_left(self.starts, offset + length))


def _has_bytes(request: object) -> bool:
    if isinstance(request, RawMessage):
        return bool(request.data)
    return request is not None


class _Open:
    """A sample being built from the bursts of one request."""

    __slots__ = ("first", "last", "nbytes", "scheduled_at", "sent_at")

    def __init__(self, sent_at: float, scheduled_at: float | None) -> None:
        self.sent_at = sent_at
        self.scheduled_at = scheduled_at
        self.first: float | None = None
        self.last: float | None = None
        self.nbytes = 0

    def add_response(self, timing: ExchangeTiming) -> None:
        first, last = timing.first_response_at, timing.last_response_at
        if first is not None and (self.first is None or first < self.first):
            self.first = first
        if last is not None and (self.last is None or last > self.last):
            self.last = last
        self.nbytes += timing.response_bytes


def session_samples(result: SessionResult, requests: RequestMap) -> SessionSamples:
    """The samples of one session copy: ``result`` is its copier result, ``requests`` the
    captured requests of its session."""
    opened: dict[int, _Open] = {}
    carrier: dict[int, int] = {}  # request sent -> the request whose sample its latest send is in
    resends = 0
    for timing in result.exchanges:
        if not len(requests):
            break
        offset, length = timing.request_offset, timing.request_bytes
        owner = requests.holding(offset)
        begins = offset <= requests.starts[owner]
        if begins or owner not in opened:
            if begins and owner in carrier:
                resends += 1
            opened[owner] = _Open(timing.sent_at, timing.scheduled_at)
            carrier[owner] = owner
        for k in requests.starting_in(offset, length):
            carrier[k] = owner
        opened[owner].add_response(timing)
    carried: dict[int, int] = {}
    per_endpoint: dict[str, int] = {}
    for k, owner in carrier.items():
        carried[owner] = carried.get(owner, 0) + 1
        per_endpoint[requests.endpoints[k]] = per_endpoint.get(requests.endpoints[k], 0) + 1
    session, copy = result.session, result.copy
    samples = tuple(
        RequestSample(
            session, copy, requests.endpoints[k], o.sent_at, o.first, o.last, o.nbytes, carried[k], o.scheduled_at
        )
        for k, o in sorted(opened.items())
        if k in carried  # else every request it carried was sent again in a later sample
    )
    return SessionSamples(samples, per_endpoint, resends)


class LoadSamples:
    """What the load figures are made of, gathered session copy by session copy (as a replay is
    judged): every request sample, the captured requests sent per endpoint, resends, and the
    session copies per outcome. Grows with the requests replayed."""

    def __init__(self) -> None:
        self.samples: list[RequestSample] = []
        self.sent: dict[str, int] = {}
        self.outcomes: dict[str, int] = {}
        self.resends = 0
        self.copies = 0

    def add(self, result: SessionResult, exchanges: list[Exchange]) -> None:
        """One session copy's result, with the captured exchanges of its session."""
        found = session_samples(result, RequestMap(exchanges))
        self.samples.extend(found.samples)
        self.resends += found.resends
        for endpoint, count in found.sent.items():
            self.sent[endpoint] = self.sent.get(endpoint, 0) + count
        self.outcomes[result.outcome.value] = self.outcomes.get(result.outcome.value, 0) + 1
        self.copies += 1
