"""From sessions to compared exchanges: the baseline from a capture, the candidate from a replay.

``exchanges_from_capture`` splits what production answered (the capture's server stream);
``exchanges_from_replay`` splits what the SUT answered to the same client bytes (the copier's
``SessionResult``). Both use the codec the client bytes select, so both sides split alike.
``compare_sessions`` matches exchanges by position and judges each pair; a baseline exchange the
capture could not parse cleanly is skipped with its reason, never diffed.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UsageError
from ..flows.session import CapturedSession
from ..flows.stream import ByteStream
from ..replay.results import ExchangeTiming, Outcome, SessionResult
from .codecs import Codec, default_registry
from .config import DiffConfig
from .diff import ExchangeDiff, diff_exchange
from .exchange import Conversation, Exchange, Turn
from .noise import Verdict, classify

_DEFAULT = DiffConfig()


def exchanges_from_capture(session: CapturedSession, codec: Codec | None = None) -> list[Exchange]:
    """The exchanges of a captured session, production's own responses included."""
    client, client_cut = _known(session.client_stream)
    server, server_cut = _known(session.server_stream)
    conversation = Conversation(session.index, client, server, client_cut, server_cut, capture_turns(session))
    return (codec or default_registry.detect(client)).split(conversation)


def exchanges_from_replay(
    session: CapturedSession, result: SessionResult, codec: Codec | None = None
) -> list[Exchange]:
    """The exchanges of one replay of ``session``: its captured requests, the SUT's responses.

    ``result`` is the copier's result of a response-capture replay of that session.
    """
    if result.session != session.index:
        raise UsageError(f"replay result of session {result.session} paired with captured session {session.index}")
    client, client_cut = _known(session.client_stream)
    server, server_cut, note = _replayed_response(result)
    turns = replay_turns(capture_turns(session), result.exchanges, len(server))
    conversation = Conversation(session.index, client, server, client_cut, server_cut, turns, note)
    return (codec or default_registry.detect(client)).split(conversation)


def capture_turns(session: CapturedSession) -> tuple[Turn, ...]:
    """The session's turns, from the capture times of the bytes of both directions.

    Client bytes seen before server bytes (ties go to the client) open a turn; the server bytes
    up to the client's next bytes close it. Server bytes before any client byte (a greeting) make a
    first turn with an empty request. Ranges cover gaps too: a turn whose range reaches past the
    first gap of its stream lost bytes.
    """
    client = session.client_stream.chunks
    server = session.server_stream.chunks
    turns = []
    i = j = 0
    c_start = c_end = s_start = s_end = 0
    while i < len(client) or j < len(server):
        if j >= len(server) or (i < len(client) and client[i].ts <= server[j].ts):
            if s_end > s_start:
                turns.append(Turn(c_start, c_end, s_start, s_end))
                c_start, s_start = c_end, s_end
            c_end = client[i].offset + len(client[i].data)
            i += 1
        else:
            s_end = server[j].offset + len(server[j].data)
            j += 1
    if c_end > c_start or s_end > s_start:
        turns.append(Turn(c_start, c_end, s_start, s_end))
    return tuple(turns)


def replay_turns(captured: tuple[Turn, ...], timings: Sequence[ExchangeTiming], response_size: int) -> tuple[Turn, ...]:
    """The captured turns with their server ranges taken from a replay's exchange timings.

    Each timing's response bytes go to the captured turn holding its first request byte; bytes no
    timing claims (sent before the first request) go to the first turn. Without timings, or when
    they do not add up, the whole response is one turn with the whole request.
    """
    client_size = captured[-1].client_end if captured else 0
    if not captured or not timings:
        return (Turn(0, client_size, 0, response_size),) if client_size or response_size else ()
    ends = [t.client_end for t in captured]
    sizes = [0] * len(captured)
    for timing in timings:
        k = min(bisect_right(ends, timing.request_offset), len(captured) - 1)
        sizes[k] += timing.response_bytes
    unclaimed = response_size - sum(sizes)
    if unclaimed < 0:
        return (Turn(0, client_size, 0, response_size),)
    sizes[0] += unclaimed
    turns, pos = [], 0
    for turn, size in zip(captured, sizes):
        turns.append(Turn(turn.client_start, turn.client_end, pos, pos + size))
        pos += size
    return tuple(turns)


def _replayed_response(result: SessionResult) -> tuple[bytes, bool, str | None]:
    """The SUT's response bytes, whether they are incomplete, and a note on the outcome."""
    outcome = result.outcome
    note = None if outcome is Outcome.COMPLETE else f"replay {outcome.value}: {result.reason or '-'}"
    if result.response_error is not None:
        return b"", True, f"response capture incomplete: {result.response_error}"
    if result.response_chunks:
        try:
            return result.response_data(), False, note
        except ValueError as exc:
            return b"", True, f"response capture incomplete: {exc}"
    if result.response_bytes:
        raise UsageError(
            f"replay result of session {result.session} has no response "
            "bytes: replay with response capture on to compare responses"
        )
    return b"", False, note


def _known(stream: ByteStream) -> tuple[bytes, bool]:
    data = stream.data()
    return data, len(data) < stream.end


class ComparisonStatus(enum.Enum):
    SAME = "same"  # no difference (noise aside)
    DIFFERENT = "different"  # the candidate's response differs
    MISSING = "missing"  # the candidate lacks this exchange
    EXTRA = "extra"  # only the candidate has this exchange
    SKIPPED = "skipped"  # the baseline exchange is not clean (capture gap, bad traffic)


@dataclass(frozen=True, slots=True)
class ExchangeComparison:
    """The judgement of one exchange position of a session."""

    baseline: Exchange | None
    candidate: Exchange | None
    status: ComparisonStatus
    diff: ExchangeDiff | None = None  # real differences
    noise: ExchangeDiff | None = None  # differences the secondary baseline shows too
    reason: str | None = None  # why it was skipped

    @property
    def id(self) -> str:
        return (self.baseline or self.candidate).id

    def __repr__(self) -> str:
        # Never the exchanges themselves: their bytes may hold secrets (pytest prints reprs).
        return f"<ExchangeComparison {self.id} {self.status.value}>"

    @property
    def failed(self) -> bool:
        return self.status in (ComparisonStatus.DIFFERENT, ComparisonStatus.MISSING, ComparisonStatus.EXTRA)

    def render(self) -> str:
        if self.status is ComparisonStatus.SKIPPED:
            return f"{self.id}: skipped ({self.reason})"
        lines = [self.diff.render()] if self.diff else [f"{self.id}: {self.status.value}"]
        if self.noise:
            lines += ["  noise (the baseline differs from itself here too):"]
            lines += ["    " + change.render() for change in self.noise.changes]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "exchange": self.id,
            "status": self.status.value,
            "reason": self.reason,
            "changes": [c.to_json() for c in self.diff.changes] if self.diff else [],
            "noise": [c.to_json() for c in self.noise.changes] if self.noise else [],
        }


def compare_sessions(
    baseline: list[Exchange],
    candidate: list[Exchange],
    config: DiffConfig = _DEFAULT,
    secondary: list[Exchange] | None = None,
) -> list[ExchangeComparison]:
    """Judge the candidate's exchanges against the baseline's, position by position.

    With ``secondary`` (the same session from a second baseline instance), differences the two
    baselines also show are set apart as noise (``noise.classify``).
    """
    out = []
    for i in range(max(len(baseline), len(candidate))):
        base = baseline[i] if i < len(baseline) else None
        cand = candidate[i] if i < len(candidate) else None
        if base is not None and base.malformed:
            out.append(ExchangeComparison(base, cand, ComparisonStatus.SKIPPED, reason=base.malformed))
            continue
        if secondary is None:
            verdict = Verdict(diff_exchange(base, cand, config), None)
        else:
            second = secondary[i] if i < len(secondary) else None
            verdict = classify(base, second, cand, config)
        if verdict.real is None:
            status = ComparisonStatus.SAME
        elif cand is None:
            status = ComparisonStatus.MISSING
        elif base is None:
            status = ComparisonStatus.EXTRA
        else:
            status = ComparisonStatus.DIFFERENT
        out.append(ExchangeComparison(base, cand, status, verdict.real, verdict.noise))
    return out
