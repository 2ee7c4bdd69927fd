"""Sessions to exchanges (capture and replay sides), raw turn-taking, codec registry, comparison."""

from __future__ import annotations

import pytest
from comparekit import C, S, captured, replay_result

from pytest_tcpcopy.compare import (
    Cause,
    CodecRegistry,
    ComparisonStatus,
    Conversation,
    DiffConfig,
    Exchange,
    RawCodec,
    RawMessage,
    Turn,
    capture_turns,
    compare_sessions,
    default_registry,
    exchanges_from_capture,
    exchanges_from_replay,
    register_codec,
    replay_turns,
)
from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.replay.results import ExchangeTiming

GET = b"GET /api/users/7 HTTP/1.1\r\nHost: sut\r\n\r\n"


def json_response(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Thu, 26 Nov 2026 17:00:00 GMT\r\n"
        + extra
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


V1 = json_response(b'{"id": 7, "email": "a@x"}')


def test_capture_turns_alternate_and_merge_segments():
    session = captured([(C, b"he"), (C, b"llo"), (S, b"hi"), (S, b"!"), (C, b"bye"), (S, b"ok")])
    assert capture_turns(session) == (Turn(0, 5, 0, 3), Turn(5, 8, 3, 5))


def test_server_greeting_makes_a_first_turn_with_empty_request():
    session = captured([(S, b"220 ready\r\n"), (C, b"QUIT\r\n"), (S, b"221 bye\r\n")])
    exchanges = exchanges_from_capture(session)
    assert [e.codec for e in exchanges] == ["raw", "raw"]
    assert exchanges[0].request.data == b"" and exchanges[0].response.data == b"220 ready\r\n"
    assert exchanges[1].request.data == b"QUIT\r\n" and exchanges[1].id == "s0000-x001"


def test_raw_capture_with_a_lost_server_segment_marks_the_cut_turn():
    session = captured(
        [
            (C, b"*1\r\n$4\r\nPING\r\n"),
            (S, b"+PONG\r\n"),
            (C, b"*1\r\n$4\r\nINFO\r\n"),
            (S, b"$100\r\n", "lost"),
            (S, b"rest"),
        ]
    )
    first, second = exchanges_from_capture(session)
    assert first.malformed is None and first.response.data == b"+PONG\r\n"
    assert "gap" in second.malformed


def test_raw_replay_splits_responses_by_the_exchange_timings():
    session = captured([(C, b"A?"), (S, b"a1"), (C, b"B?"), (S, b"b1")])
    result = replay_result(session, [b"a-new", b"b"])
    exchanges = exchanges_from_replay(session, result)
    assert [(e.request.data, e.response.data) for e in exchanges] == [(b"A?", b"a-new"), (b"B?", b"b")]


def test_raw_replay_without_timings_is_one_blob():
    session = captured([(C, b"A?"), (S, b"a1"), (C, b"B?"), (S, b"b1")])
    result = replay_result(session, [b"a1", b"b1"], timings=False)
    [blob] = exchanges_from_replay(session, result)
    assert blob.request.data == b"A?B?" and blob.response.data == b"a1b1"


def test_replay_turns_give_unclaimed_leading_bytes_to_the_first_turn():
    captured_turns = (Turn(0, 0, 0, 5), Turn(0, 4, 5, 9))
    timings = [ExchangeTiming(0, 4, 0.0, response_bytes=3)]
    assert replay_turns(captured_turns, timings, 10) == (Turn(0, 0, 0, 7), Turn(0, 4, 7, 10))


def test_http_capture_and_identical_replay_compare_same():
    session = captured([(C, GET), (S, V1[:30]), (S, V1[30:])])
    baseline = exchanges_from_capture(session)
    candidate = exchanges_from_replay(session, replay_result(session, [V1]))
    [comparison] = compare_sessions(baseline, candidate)
    assert comparison.status is ComparisonStatus.SAME and not comparison.failed
    assert comparison.id == "s0000-GET /api/users/7"


def test_ci_example_new_header_is_fine_but_a_wrong_field_fails():
    session = captured([(C, GET), (S, V1), (C, GET), (S, V1)])
    baseline = exchanges_from_capture(session)
    v2_good = json_response(b'{"id": 7, "email": "a@x"}', b"X-Api-Version: 2\r\n")
    v2_bad = json_response(b'{"id": 7, "email": "b@x"}', b"X-Api-Version: 2\r\n")
    candidate = exchanges_from_replay(session, replay_result(session, [v2_good, v2_bad]))
    good, bad = compare_sessions(baseline, candidate)
    assert good.status is ComparisonStatus.SAME
    assert bad.status is ComparisonStatus.DIFFERENT
    assert bad.render().splitlines()[1:] == ["  body.email: 'a@x' -> 'b@x'"]
    assert bad.to_json()["changes"] == [{"path": "body.email", "kind": "changed", "old": "a@x", "new": "b@x"}]


def test_missing_and_extra_exchanges_of_a_clean_candidate_are_differences():
    session = captured([(C, GET), (S, V1), (C, GET), (S, V1)])
    baseline = exchanges_from_capture(session)
    short = exchanges_from_replay(session, replay_result(session, [V1]))
    comparisons = compare_sessions(baseline, short)
    assert [c.status for c in comparisons] == [ComparisonStatus.SAME, ComparisonStatus.DIFFERENT]
    missing = compare_sessions(baseline, short[:1])
    assert missing[1].status is ComparisonStatus.DIFFERENT and missing[1].failed
    assert "exchange: removed" in missing[1].render()
    extra = compare_sessions(baseline[:1], baseline)
    assert extra[1].status is ComparisonStatus.DIFFERENT and "exchange: added" in extra[1].render()
    assert extra[1].id == "s0000-GET /api/users/7" and extra[1].number == 1


def test_baseline_gap_skips_instead_of_diffing():
    session = captured([(C, GET), (S, V1), (C, GET), (S, V1[:20], "lost"), (S, V1[20:])])
    baseline = exchanges_from_capture(session)
    candidate = exchanges_from_replay(session, replay_result(session, [V1, V1]))
    first, second = compare_sessions(baseline, candidate)
    assert first.status is ComparisonStatus.SAME
    assert second.status is ComparisonStatus.NOT_COMPARABLE and "gap" in second.reason
    assert second.cause.cause is Cause.BASELINE_UNCLEAN and not second.failed
    assert second.render().startswith("s0000-GET /api/users/7: not comparable: baseline exchange not clean: ")


def test_secondary_baseline_sets_noise_apart():
    session = captured([(C, GET), (S, V1)])
    baseline = exchanges_from_capture(session)

    def replay(body: bytes):
        return exchanges_from_replay(session, replay_result(session, [json_response(body)]))

    secondary = replay(b'{"id": 7, "email": "a@x", "nonce": 2}')
    primary = replay(b'{"id": 7, "email": "a@x", "nonce": 1}')
    candidate = replay(b'{"id": 8, "email": "a@x", "nonce": 3}')
    [comparison] = compare_sessions(primary, candidate, secondary=secondary)
    assert comparison.status is ComparisonStatus.DIFFERENT
    assert [c.where for c in comparison.diff.changes] == ["body.id"]
    assert [c.where for c in comparison.noise.changes] == ["body.nonce"]
    assert "noise" in comparison.render()
    assert compare_sessions(baseline, baseline)[0].status is ComparisonStatus.SAME


def test_result_without_response_bytes_is_a_usage_error():
    session = captured([(C, GET), (S, V1)])
    result = replay_result(session, [V1])
    result.response_chunks.clear()
    with pytest.raises(UsageError, match="response capture"):
        exchanges_from_replay(session, result)
    result.session = 3
    with pytest.raises(UsageError, match="paired with"):
        exchanges_from_replay(session, result)


class LineCodec:
    """A user codec for a newline-delimited protocol: one exchange per request line."""

    name = "lines"

    def detect(self, client: bytes) -> bool:
        return client.startswith(b"HELLO ")

    def split(self, conversation: Conversation) -> list[Exchange]:
        requests = conversation.client.splitlines(keepends=True)
        responses = conversation.server.splitlines(keepends=True)
        return [
            Exchange(
                conversation.session,
                i,
                RawMessage(r),
                RawMessage(responses[i]) if i < len(responses) else None,
                self.name,
            )
            for i, r in enumerate(requests)
        ]


def test_registered_codec_is_asked_first():
    registry = CodecRegistry()
    assert isinstance(registry.detect(b"HELLO x\n"), RawCodec)
    registry.register(LineCodec())
    assert registry.detect(b"HELLO x\n").name == "lines"
    assert registry.detect(GET).name == "http"
    registry.unregister("lines")
    assert isinstance(registry.detect(b"HELLO x\n"), RawCodec)


def test_register_codec_reaches_the_pairing_helpers():
    session = captured([(C, b"HELLO a\nHELLO b\n"), (S, b"hi a\nhi b\n")])
    register_codec(LineCodec())
    try:
        exchanges = exchanges_from_capture(session)
    finally:
        default_registry.unregister("lines")
    assert [(e.codec, e.response.data) for e in exchanges] == [("lines", b"hi a\n"), ("lines", b"hi b\n")]
    assert len(exchanges_from_capture(session)) == 1  # raw again: one turn


def test_compare_uses_config():
    session = captured([(C, GET), (S, V1)])
    other = json_response(b'{"id": 7, "email": "zzz"}')
    candidate = exchanges_from_replay(session, replay_result(session, [other]))
    config = DiffConfig(ignore_paths=["body.email"])
    assert compare_sessions(exchanges_from_capture(session), candidate, config)[0].status is ComparisonStatus.SAME


def test_comparison_reports_redact_secrets():
    session = captured([(C, GET), (S, V1)])
    leaky = json_response(b'{"id": 7, "email": "a@x", "token": "s3cret"}', b"Set-Cookie: sid=abc123\r\n")
    candidate = exchanges_from_replay(session, replay_result(session, [leaky]))
    [comparison] = compare_sessions(exchanges_from_capture(session), candidate, DiffConfig(ignore_added_headers=False))
    text = comparison.render() + repr(comparison.to_json()) + repr(comparison.diff) + repr(comparison)
    assert "s3cret" not in text and "abc123" not in text
    assert "body.token: added (redacted)" in text and "headers.set-cookie: added (redacted)" in text
