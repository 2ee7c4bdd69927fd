"""What a replay produced: one SessionResult per session copy, and the totals.

Built from the translators' typed events by ``ReplayEngine``; serialised by ``to_json`` for the
copier's output, and decoded once on the host by ``from_json`` (``replay.contract`` reads the
stream). Every session of the capture (of the selection, if one was given) appears, once per
copy: those the replay never got to as ``not_replayed``, with the reason.

The document (``ReplayResult.to_json``): ``sessions`` (each with its ``outcome``, ``reason`` and
``exchanges``), ``totals`` (``completed``, ``not_replayed``, ``aborted``: counts by "outcome:
reason" of every session not complete, ...), ``notes``, and ``stopped``: null, or
``{"reason": ..., "failure": bool}`` when the replay ended before its sessions did (its time
limit; a failure such as a lost intercept).

Per exchange, ``complete`` says whether its response was read to its end (see tcp/gate.py);
when not, ``cut`` says why: "SUT too slow: 120 of 1220 bytes after 5.0 s" (the response
timeout), or the reason the session ended while the response was awaited. ``response_end`` says
by which rule the response was judged over: ``framing`` (HTTP/1.x framing), ``captured_length``
(as many bytes as the captured client had received), ``sut_close`` (the SUT closed or reset),
``quiet`` (the last resort: no length known, or short of the captured one, and the SUT fell
silent) or ``timeout`` (cut); null when it was not judged on its own (pipelined requests, or the
session ended otherwise). ``expected_response_bytes`` is the length the framing or the capture
gave, null when neither knew.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass, field, fields, replace

from ..endpoint import Endpoint


class Outcome(enum.Enum):
    """How one replayed session ended, from the SUT's point of view."""

    COMPLETE = "complete"  # every captured request sent and answered; connection closed or released
    SUT_RESET = "sut_reset"  # the SUT reset the connection with requests still pending
    NOT_ESTABLISHED = "not_established"  # no SYN-ACK: not listening, refused, or no answer in time
    TIMEOUT = "timeout"  # the SUT stopped answering mid-session
    ABORTED = "aborted"  # given up for another reason (see ``reason``)
    UNFINISHED = "unfinished"  # the replay stopped (time limit, lost intercept) before the session ended
    NOT_REPLAYED = "not_replayed"  # never started (see ``reason``: the replay stopped first, or nothing to replay)


@dataclass(slots=True)
class ExchangeTiming:
    """One request as sent, and when its response started and ended (seconds from replay start).

    ``scheduled_at`` is when the capture's schedule wanted it sent: the capture time of the
    captured segment holding its first byte, at the replay's speed (None when unpaced).
    """

    request_offset: int
    request_bytes: int
    sent_at: float
    first_response_at: float | None = None
    last_response_at: float | None = None
    response_bytes: int = 0
    scheduled_at: float | None = None
    response_end: str | None = None  # by which rule the response was judged over (module comment)
    expected_response_bytes: int | None = None  # the length the framing or the capture gave
    cut: str | None = None  # why the response was not read to its end; None: it was

    @property
    def complete(self) -> bool:
        return self.cut is None

    def to_json(self) -> dict:
        return {
            "request_offset": self.request_offset,
            "request_bytes": self.request_bytes,
            "scheduled_at": _r(self.scheduled_at),
            "sent_at": _r(self.sent_at),
            "first_response_at": _r(self.first_response_at),
            "last_response_at": _r(self.last_response_at),
            "response_bytes": self.response_bytes,
            "complete": self.cut is None,
            "response_end": self.response_end,
            "expected_response_bytes": self.expected_response_bytes,
            "cut": self.cut,
        }

    @classmethod
    def from_json(cls, doc: dict) -> ExchangeTiming:
        return cls(**{f.name: doc[f.name] for f in fields(cls) if f.name in doc})


@dataclass(slots=True)
class SessionResult:
    """The replay of one captured session (one copy of it, when amplified)."""

    session: int  # index of the captured session
    copy: int  # 0 for the original, 1.. for amplify copies
    # Endpoints (or their text), serialised as text: the engine hands in Endpoints, since
    # formatting two of them per session cost the replay loop 2-3 % of its time.
    captured_client: Endpoint | str
    client: Endpoint | str  # the remapped client endpoint the SUT saw
    target: Endpoint | str
    outcome: Outcome = Outcome.UNFINISHED
    reason: str = ""
    request_bytes: int = 0  # client payload bytes sent (each byte once)
    requests_sent: int = 0
    response_bytes: int = 0  # SUT payload bytes received (each byte once)
    reconnects: int = 0
    retransmits: int = 0
    started_at: float | None = None
    established_at: float | None = None
    finished_at: float | None = None
    exchanges: list[ExchangeTiming] = field(default_factory=list)
    # Response payload by stream offset (continuing across reconnects); response-capture mode only.
    response_chunks: dict[int, bytes] = field(default_factory=dict)
    # Why the response bytes are incomplete, as decoded from a result document (see response_data).
    response_error: str | None = None

    @property
    def established(self) -> bool:
        return self.established_at is not None

    def response_data(self) -> bytes:
        """The SUT's response bytes in order; raises ValueError if a byte is missing."""
        if self.response_error is not None:
            raise ValueError(self.response_error)
        chunks = self.response_chunks
        if len(chunks) == 1 and 0 in chunks:
            return bytes(chunks[0])  # one piece (a result read back from its document): no copy
        out = bytearray()
        for offset in sorted(self.response_chunks):
            data = self.response_chunks[offset]
            if offset > len(out):
                raise ValueError(f"response gap of {offset - len(out)} bytes at offset {len(out)}")
            out += data[len(out) - offset:]
        return bytes(out)

    def to_json(self) -> dict:
        doc = self._summary_json()
        if self.response_chunks or self.response_error is not None:
            try:
                doc["response"] = base64.b64encode(self.response_data()).decode()
            except ValueError as exc:
                doc["response_error"] = str(exc)
        return doc

    def _summary_json(self) -> dict:
        return {
            "session": self.session,
            "copy": self.copy,
            "captured_client": str(self.captured_client),
            "client": str(self.client),
            "target": str(self.target),
            "outcome": self.outcome.value,
            "reason": self.reason,
            "requests_sent": self.requests_sent,
            "request_bytes": self.request_bytes,
            "response_bytes": self.response_bytes,
            "reconnects": self.reconnects,
            "retransmits": self.retransmits,
            "started_at": _r(self.started_at),
            "established_at": _r(self.established_at),
            "finished_at": _r(self.finished_at),
            "exchanges": [e.to_json() for e in self.exchanges],
        }

    @classmethod
    def from_json(cls, doc: dict) -> SessionResult:
        """The result ``to_json`` wrote (endpoints stay text; response bytes become one chunk)."""
        special = {"outcome", "exchanges", "response_chunks", "response_error"}
        values = {"captured_client": "", "client": "", "target": ""}  # text; absent from partial documents
        values.update((f.name, doc[f.name]) for f in fields(cls) if f.name in doc and f.name not in special)
        result = cls(**values)
        result.outcome = Outcome(doc.get("outcome", Outcome.UNFINISHED.value))
        result.exchanges = [ExchangeTiming.from_json(e) for e in doc.get("exchanges") or ()]
        if "response" in doc:
            data = base64.b64decode(doc["response"], validate=True)
            result.response_chunks = {0: data} if data else {}
        result.response_error = doc.get("response_error")
        return result


@dataclass(slots=True)
class SessionCounts:
    """The counts ``ReplayResult.totals()`` reports, kept as session copies go by: a copier that
    writes each session as it ends, and a host that judges each as it arrives, keep these
    instead of the sessions."""

    sessions: int = 0
    established: int = 0
    completed: int = 0
    not_replayed: int = 0
    requests_sent: int = 0
    request_bytes: int = 0
    response_bytes: int = 0
    aborted: dict[str, int] = field(default_factory=dict)  # "outcome: reason" -> copies not complete

    def add(self, s: SessionResult) -> None:
        self.sessions += 1
        self.established += s.established_at is not None
        self.requests_sent += s.requests_sent
        self.request_bytes += s.request_bytes
        self.response_bytes += s.response_bytes
        if s.outcome is Outcome.COMPLETE:
            self.completed += 1
            return
        self.not_replayed += s.outcome is Outcome.NOT_REPLAYED
        key = s.outcome.value + (f": {s.reason}" if s.reason else "")
        self.aborted[key] = self.aborted.get(key, 0) + 1

    @classmethod
    def of(cls, sessions: list[SessionResult], earlier: SessionCounts | None = None) -> SessionCounts:
        """The counts of ``sessions``, added to ``earlier``'s."""
        counts = cls() if earlier is None else replace(earlier, aborted=dict(earlier.aborted))
        for s in sessions:
            counts.add(s)
        return counts

    @classmethod
    def from_json(cls, totals: dict) -> SessionCounts:
        """The counts of a ``totals()`` document."""
        return cls(**{f.name: totals[f.name] for f in fields(cls) if f.name in totals})


@dataclass(slots=True)
class ReplayResult:
    """``sessions`` holds the session copies still held; ``reported`` counts those that were
    handed on as they ended and are held no more (None: every copy is in ``sessions``)."""

    sessions: list[SessionResult]
    elapsed: float
    notes: list[str] = field(default_factory=list)
    delayed_starts: int = 0  # sessions that waited for a slot: started behind the capture's schedule
    # The copier's own CPU seconds (user, system) during the replay, start-up and output excluded.
    cpu: tuple[float, float] | None = None
    stopped: str | None = None  # why the replay ended before every session did; None: it did not
    stopped_by_failure: bool = False  # the stop was a failure (a lost intercept), not the time limit
    reported: SessionCounts | None = None

    def totals(self) -> dict:
        counts = SessionCounts.of(self.sessions, self.reported)
        return {
            "sessions": counts.sessions,
            "established": counts.established,
            "completed": counts.completed,
            "not_replayed": counts.not_replayed,
            "requests_sent": counts.requests_sent,
            "request_bytes": counts.request_bytes,
            "response_bytes": counts.response_bytes,
            "aborted": counts.aborted,
            "delayed_starts": self.delayed_starts,
            "elapsed": round(self.elapsed, 3),
            "cpu_user": None if self.cpu is None else round(self.cpu[0], 3),
            "cpu_system": None if self.cpu is None else round(self.cpu[1], 3),
        }

    @classmethod
    def from_json(cls, doc: dict, sessions: list[SessionResult] | None = None, *,
                  reported: SessionCounts | None = None) -> ReplayResult:  # fmt: skip
        """The result ``to_json`` wrote; ``sessions`` when they were decoded already (a stream),
        ``reported`` the counts of those handed on and not held."""
        totals = doc.get("totals", {})
        cpu_user, cpu_system = totals.get("cpu_user"), totals.get("cpu_system")
        stopped = doc.get("stopped") or {}
        return cls(
            sessions=[SessionResult.from_json(s) for s in doc.get("sessions", ())] if sessions is None else sessions,
            elapsed=float(totals.get("elapsed", 0.0)),
            notes=list(doc.get("notes", ())),
            delayed_starts=int(totals.get("delayed_starts", 0)),
            cpu=None if cpu_user is None or cpu_system is None else (cpu_user, cpu_system),
            stopped=stopped.get("reason"),
            stopped_by_failure=bool(stopped.get("failure", False)),
            reported=reported,
        )

    def to_json(self) -> dict:
        return {
            "sessions": [s.to_json() for s in sorted(self.sessions, key=lambda s: (s.session, s.copy))],
            "totals": self.totals(),
            "notes": self.notes,
            "stopped": None if self.stopped is None else {"reason": self.stopped, "failure": self.stopped_by_failure},
        }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
