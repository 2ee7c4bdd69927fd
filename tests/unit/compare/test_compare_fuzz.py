"""Fuzz: arbitrary or mangled bytes into the codecs and the diff give recorded problems, never errors."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_tcpcopy.compare import (
    Conversation,
    DiffConfig,
    Exchange,
    HttpCodec,
    RawCodec,
    Turn,
    diff_exchange,
    normalize_response,
)

VALID_CLIENT = (
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n"
    b"HEAD /c HTTP/1.0\r\n\r\n"
)
VALID_SERVER = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{"a": 1}'
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
)
REFERENCE = HttpCodec().split(Conversation(0, VALID_CLIENT, VALID_SERVER))


def mangle(data: bytes, edits: list[tuple[int, bytes, int]]) -> bytes:
    for pos, insert, cut in edits:
        pos %= len(data) + 1
        data = data[:pos] + insert + data[pos + cut :]
    return data


edits = st.lists(st.tuples(st.integers(0, 400), st.binary(max_size=8), st.integers(0, 8)), max_size=6)


def check(exchanges: list[Exchange], conversation: Conversation) -> None:
    assert all(isinstance(e, Exchange) and e.request is not None for e in exchanges)
    assert [e.number for e in exchanges] == list(range(len(exchanges)))
    for e in exchanges:
        if e.response is not None:
            normalize_response(e.response, DiffConfig())
        for reference in REFERENCE:
            diff_exchange(reference, e)
            diff_exchange(e, reference)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    client=st.binary(max_size=300), server=st.binary(max_size=300), client_cut=st.booleans(), server_cut=st.booleans()
)
def test_arbitrary_bytes(client, server, client_cut, server_cut):
    conversation = Conversation(1, client, server, client_cut, server_cut)
    for codec in (HttpCodec(), RawCodec()):
        check(codec.split(conversation), conversation)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(client_edits=edits, server_edits=edits, client_cut=st.booleans(), server_cut=st.booleans())
def test_mangled_http(client_edits, server_edits, client_cut, server_cut):
    conversation = Conversation(
        2,
        mangle(VALID_CLIENT, client_edits),
        mangle(VALID_SERVER, server_edits),
        client_cut,
        server_cut,
        server_note="replay timeout: -",
    )
    check(HttpCodec().split(conversation), conversation)


@settings(max_examples=200, deadline=None)
@given(
    client=st.binary(max_size=60),
    server=st.binary(max_size=60),
    cuts=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 80)), max_size=5),
    client_cut=st.booleans(),
    server_cut=st.booleans(),
)
def test_raw_codec_with_arbitrary_turns(client, server, cuts, client_cut, server_cut):
    turns, c, s = [], 0, 0
    for dc, ds in cuts:
        turns.append(Turn(c, c + dc, s, s + ds))
        c, s = c + dc, s + ds
    conversation = Conversation(3, client, server, client_cut, server_cut, tuple(turns))
    exchanges = RawCodec().split(conversation)
    check(exchanges, conversation)
    assert len(exchanges) == (len(turns) or int(bool(client or server)))  # no turns: one blob
