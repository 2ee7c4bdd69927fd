"""RequestGate: whether the response to the latest request is over, so that the next request, or
the end of the session, may go.

The rules, in order; the first that decides, decides:

1. The SUT closed (FIN) or reset its side of the connection: over (CLOSE).
2. SUT bytes wait beyond a hole: not over (the SUT will fill it).
3. In response-capture mode, for a session whose first request is HTTP/1.x, the framing decides
   (http_framing.py, fed the SUT's bytes and the methods of the requests sent): every response
   ended, over (FRAMING); one still needs bytes, or ends with the close, not over. Where the
   framing is unknown (not HTTP, a truncated report, a tunnel), or the request itself is only
   partly sent (a client that waited for "100 Continue" before its body), the next rules decide.
4. The captured length (what the real client had received before its next request, or in all
   for the last response): reached, over (LENGTH); not one byte yet, not over.
5. The last resort, for a response of unknown length or one that stopped short of the captured
   length: over (QUIET) once the SUT has been silent for the quiet period, which scales with
   what the SUT has shown on this connection: ``QUIET_FACTOR`` times the largest gap seen (from
   a request to its first response byte, or between two segments), at least ``quiet_floor``.

Time runs for a response only once the SUT has acknowledged every byte of its request: while
our bytes are in flight, loss recovery and the idle timeout are in charge, and rule 5 waits.
A response that is not over is cut when it makes no progress for ``response_timeout`` (counted
from when its request was sent and acknowledged, or from its own latest byte, whichever is
later): `cut` gives the reason, "SUT too slow: N of M bytes after T s", and the translator
ends the session.

Every verdict on a response is reported once, as a ResponseEnded event.
"""

from __future__ import annotations

from pytest_tcpcopy.tcp._state import SessionStateMachine
from pytest_tcpcopy.tcp.events import ResponseEnd, ResponseEnded
from pytest_tcpcopy.tcp.http_framing import (
    Framing,
    HttpRequestScanner,
    HttpResponseFramer,
    looks_like_http_request,
)
from pytest_tcpcopy.tcp.output import SessionOutput

QUIET_FACTOR = 4.0


class RequestGate:
    __slots__ = (
        "_connections", "_framer", "_framer_base", "_http", "_out", "_payload", "_pipeline", "_quiet_floor",
        "_requests",
        "_scanner", "_sm", "_timeout", "acked_at", "ended_by", "expected", "got", "last_data", "max_gap",
        "sent_at",
    )  # fmt: skip

    def __init__(
        self, sm: SessionStateMachine, out: SessionOutput, *, pipeline: bool, capture_payload: bool,
        response_timeout: float, quiet_floor: float,
    ) -> None:
        """Settings as in TranslatorConfig."""
        self._sm = sm
        self._out = out
        self._pipeline = pipeline
        self._payload = capture_payload
        self._timeout = response_timeout
        self._quiet_floor = quiet_floor
        self._http: bool | None = None  # response-capture mode: the first request decides
        self._framer: HttpResponseFramer | None = None
        self._scanner: HttpRequestScanner | None = None
        self._framer_base = 0  # framer bytes before the response being read
        self._requests = 0  # requests started on this connection
        self._connections = 0
        self.got = 0  # bytes of the response being read (pipelining: of all, on this connection)
        self.expected: int | None = None  # the captured length the latest verdict was asked with
        self.ended_by: ResponseEnd | None = None  # the verdict on the response being read, once over
        self.sent_at = 0.0  # when the latest request byte went out (or the connection opened)
        self.acked_at = 0.0  # when the SUT last acknowledged every byte sent
        self.last_data = 0.0  # when the latest SUT byte came
        self.max_gap = 0.0  # the largest gap the SUT has shown on this connection

    # -- inputs --------------------------------------------------------------------------------

    def connect(self, now: float) -> None:
        """A new connection: no response, no gaps yet; whatever comes first (a greeting) is
        the response the first request waits for."""
        self.got = self._framer_base = self._requests = 0
        self._connections += 1
        self.ended_by = None
        self.sent_at = now
        self.last_data = self.max_gap = self.acked_at = 0.0
        if self._http:
            self._framer, self._scanner = HttpResponseFramer(), HttpRequestScanner()

    def on_request(self, data: bytes, now: float, new: bool) -> None:
        """Client bytes went out; ``new`` when they start a request (the response before it is
        over), else they continue one."""
        if new and not (self._pipeline and self._requests):
            self.got = 0
            self.ended_by = None
            if self._framer is not None:
                self._framer_base = self._framer.fed
        if new:
            self._requests += 1
        self.sent_at = now
        if not self._payload:
            return
        if self._http is None:
            self._http = looks_like_http_request(data)
            if self._http:
                self._framer, self._scanner = HttpResponseFramer(), HttpRequestScanner()
        scanner = self._scanner
        if scanner is not None and not scanner.stopped:
            framer = self._framer
            scanner.feed(data)
            while scanner.methods:
                framer.expect(scanner.methods.popleft())  # type: ignore[union-attr]
            if scanner.stopped:  # the requests can no longer be counted
                framer.give_up()  # type: ignore[union-attr]

    def on_acked(self, now: float) -> None:
        """The SUT has acknowledged every byte sent: its answer is up to it from ``now``."""
        self.acked_at = now

    def on_data(self, n: int, data: bytes | None, now: float) -> None:
        """``n`` new in-order SUT bytes (``data``: what of them the intercept reported)."""
        self.max_gap = max(self.max_gap, now - max(self.last_data, self.sent_at))
        self.last_data = now
        self.got += n
        framer = self._framer
        if framer is not None:
            if data is None or len(data) < n:
                framer.give_up()  # bytes the framing would need were not reported
            else:
                framer.feed(data)

    # -- verdicts ------------------------------------------------------------------------------

    def expected_of(self, delta: int | None, until: int | None) -> int | None:
        """The captured length to judge a response by, given the capture's ``delta`` for it and
        the running total ``until`` (cursor.py): pipelined, responses overlap and only the
        total counts (unknown once a reconnect restarted the count)."""
        if not self._pipeline:
            return delta
        return until if self._connections < 2 else None

    def over(self, expected: int | None, now: float, hole: bool, in_flight: bool) -> bool:
        """Whether the response being read is over (see the module comment), ``expected``
        being its captured length (None: unknown), ``hole`` whether SUT bytes wait beyond a
        hole, ``in_flight`` whether the SUT has yet to acknowledge some of our bytes. Reports
        the verdict the first time."""
        if self.ended_by is not None:
            return True
        self.expected = expected
        sm = self._sm
        if sm.sut_closed or sm.sut_reset:
            return self._end(ResponseEnd.CLOSE)
        if hole:
            return False
        if self._framed():
            return self._end(ResponseEnd.FRAMING) if self._framer.status is Framing.COMPLETE else False  # type: ignore[union-attr]
        got = self.got
        if expected is not None and expected > 0:
            if got >= expected:
                return self._end(ResponseEnd.LENGTH)
            if not got:
                return False
        if not in_flight and now >= self.quiet_until():
            return self._end(ResponseEnd.QUIET)
        return False

    def quiet_until(self) -> float:
        return self._since() + max(QUIET_FACTOR * self.max_gap, self._quiet_floor)

    def timeout_at(self) -> float:
        return self._since() + self._timeout

    def _since(self) -> float:
        """The latest of: request sent, request acknowledged, response byte received."""
        return max(self.last_data, self.sent_at, self.acked_at)

    def deadline(self, hole: bool) -> float:
        """The next moment the verdict on the awaited response can change by time alone: the
        end of the quiet period where rule 5 applies, else the response timeout."""
        due = self.timeout_at()
        if not hole and not self._framed():
            expected = self.expected
            if expected is None or expected <= 0 or 0 < self.got < expected:
                due = min(due, self.quiet_until())
        return due

    def cut(self, now: float) -> str:
        """The awaited response is cut by the response timeout: reports it; the reason."""
        expected = self._length()
        waited = now - self.sent_at
        self._end(ResponseEnd.TIMEOUT)
        if expected is None:
            return f"SUT too slow: {self.got} bytes of unknown length after {waited:.1f} s"
        return f"SUT too slow: {self.got} of {expected} bytes after {waited:.1f} s"

    def _framed(self) -> bool:
        """Whether the framing judges the response being read (rule 3)."""
        framer = self._framer
        return (
            framer is not None and framer.status is not Framing.UNKNOWN
            and self._scanner.between_requests()  # type: ignore[union-attr]
        )

    def _end(self, by: ResponseEnd) -> bool:
        self.ended_by = by
        self._out.events.append(ResponseEnded(by, self.got, self._length()))
        return True

    def _length(self) -> int | None:
        """The length of the response being read as the framing gives it where it judges (None
        until a header block tells it), else as captured (None when unknown)."""
        framer = self._framer
        if self._framed():
            if framer.status is Framing.COMPLETE:  # type: ignore[union-attr]
                return framer.end - self._framer_base  # type: ignore[union-attr]
            length = framer.length  # type: ignore[union-attr]
            return None if length is None else length - self._framer_base
        expected = self.expected
        return expected if expected is not None and expected > 0 else None
