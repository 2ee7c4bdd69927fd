"""Builds captured sessions from a script of segments, and replay result documents, for compare tests."""

from __future__ import annotations

from pytest_tcpcopy.capture.packet import ACK, FIN, PSH, SYN, Packet
from pytest_tcpcopy.compare import capture_turns
from pytest_tcpcopy.flows import assemble_sessions
from pytest_tcpcopy.flows.session import CapturedSession
from pytest_tcpcopy.replay.results import ExchangeTiming, Outcome, SessionResult

CLIENT = (bytes([198, 18, 0, 1]), 40000)
SERVER = (bytes([198, 18, 0, 2]), 80)
C, S = True, False  # who sends a scripted segment


def packets(script, *, client_isn: int = 1000, server_isn: int = 900_000) -> list[Packet]:
    """Handshake, then ``script`` items ``(from_client, data)`` or ``(from_client, data, "lost")``
    (sequence space used but never captured: a gap), then FIN both ways."""
    out: list[Packet] = []
    nxt = {C: client_isn + 1, S: server_isn + 1}

    def emit(from_client: bool, flags: int, payload: bytes = b"", seq: int | None = None) -> None:
        src, dst = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
        out.append(
            Packet(
                len(out),
                100.0 + len(out) * 0.001,
                src[0],
                dst[0],
                src[1],
                dst[1],
                nxt[from_client] if seq is None else seq,
                nxt[not from_client] if flags & ACK else 0,
                flags,
                65535,
                b"",
                payload,
                len(payload),
                0,
                64,
            )
        )

    emit(C, SYN, seq=client_isn)
    emit(S, SYN | ACK, seq=server_isn)
    emit(C, ACK)
    for item in script:
        from_client, data = item[0], item[1]
        if len(item) < 3:
            emit(from_client, ACK | PSH, data)
        nxt[from_client] += len(data)
    emit(C, FIN | ACK)
    nxt[C] += 1
    emit(S, FIN | ACK)
    nxt[S] += 1
    emit(C, ACK)
    return out


def captured(script, **kw) -> CapturedSession:
    [session] = list(assemble_sessions(packets(script, **kw)))
    return session


def replay_result(
    session: CapturedSession,
    responses: list[bytes],
    *,
    outcome: Outcome = Outcome.COMPLETE,
    reason: str = "",
    timings: bool = True,
) -> SessionResult:
    """The copier's result for a replay of ``session`` in which the SUT answered the
    i-th captured client turn with ``responses[i]`` (fewer responses: the SUT stopped)."""
    result = SessionResult(
        session.index, 0, "198.18.0.1:40000", "198.18.1.1:40000", "10.0.0.2:80", outcome=outcome, reason=reason
    )
    pos = 0
    for i, turn in enumerate(t for t in capture_turns(session) if t.client_end > t.client_start):
        response = responses[i] if i < len(responses) else b""
        if timings:
            result.exchanges.append(
                ExchangeTiming(
                    turn.client_start, turn.client_end - turn.client_start, float(i), response_bytes=len(response)
                )
            )
        if response:
            result.response_chunks[pos] = response
        result.response_bytes += len(response)
        pos += len(response)
    return result
