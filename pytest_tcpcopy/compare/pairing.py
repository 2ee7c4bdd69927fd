"""From sessions to compared exchanges: the baseline from a capture, the candidate from a replay.

``exchanges_from_capture`` splits what production answered (the capture's server stream);
``exchanges_from_replay`` splits what the SUT answered to the same client bytes (the copier's
``SessionResult``). Both use the codec the client bytes select, so both sides split alike.
``judge.compare_sessions`` then judges them position by position.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from ..errors import UsageError
from ..flows.session import CapturedSession
from ..flows.stream import ByteStream
from ..replay.results import ExchangeTiming, Outcome, SessionResult
from .codecs import Codec, default_registry
from .exchange import Conversation, Exchange, Turn


def exchanges_from_capture(session: CapturedSession, codec: Codec | None = None) -> list[Exchange]:
    """The exchanges of a captured session, production's own responses included."""
    client, client_cut = _known(session.client_stream)
    server, server_cut = _known(session.server_stream)
    codec = codec or default_registry.detect(client)
    turns = capture_turns(session) if _uses_turns(codec) else ()
    return codec.split(Conversation(session.index, client, server, client_cut, server_cut, turns))


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
    codec = codec or default_registry.detect(client)
    turns = replay_turns(capture_turns(session), result.exchanges, len(server)) if _uses_turns(codec) else ()
    return codec.split(Conversation(session.index, client, server, client_cut, server_cut, turns, note))


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


def _uses_turns(codec: Codec) -> bool:
    return getattr(codec, "uses_turns", True)


def _known(stream: ByteStream) -> tuple[bytes, bool]:
    data = stream.data()
    return data, len(data) < stream.end
