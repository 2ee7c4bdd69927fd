"""HTTP/1.x codec: framing of real-shaped streams, whole and split, and recorded problems."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_tcpcopy.compare import Conversation, HttpCodec, HttpRequest, HttpResponse, RawMessage
from pytest_tcpcopy.compare.codecs import http as http_codec

CODEC = HttpCodec()


def split(client: bytes, server: bytes, **kw):
    return CODEC.split(Conversation(42, client, server, **kw))


def get(path: str = "/", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: sut\r\n{extra}\r\n".encode()


def ok(body: bytes, extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def test_keep_alive_content_length_and_ids():
    exchanges = split(get("/api/users?page=2") + get("/b"), ok(b"[1]") + ok(b"hello"))
    assert [e.id for e in exchanges] == ["s0042-GET /api/users", "s0042-GET /b"]
    assert [e.response.body for e in exchanges] == [b"[1]", b"hello"]
    assert [e.malformed for e in exchanges] == [None, None]
    assert exchanges[0].request.target == "/api/users?page=2"
    assert exchanges[1].response.offset == len(ok(b"[1]"))


def test_pipelined_requests_pair_in_order():
    client = b"".join(get(f"/{i}") for i in range(5))
    server = b"".join(ok(str(i).encode()) for i in range(5))
    exchanges = split(client, server)
    assert [(e.request.path, e.response.body) for e in exchanges] == [(f"/{i}", str(i).encode()) for i in range(5)]


def test_chunked_response_decoded_with_trailers_and_extensions():
    server = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Checksum: abc\r\n\r\n"
    ) + ok(b"next")
    [first, second] = split(get() + get("/2"), server)
    assert first.response.body == b"hello, world"
    assert first.response.trailers == (("X-Checksum", "abc"),)
    assert second.response.body == b"next"


def test_chunked_request_body():
    client = (b"POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n") + get("/after")
    exchanges = split(client, ok(b"") + ok(b"x"))
    assert exchanges[0].request.body == b"abc"
    assert [e.request.path for e in exchanges] == ["/upload", "/after"]


def test_100_continue_is_skipped_and_attached():
    client = b"PUT /f HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\ndata"
    server = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok(b"done")
    [exchange] = split(client, server)
    assert exchange.response.status == 200
    assert [r.status for r in exchange.response.interim] == [100, 103]
    assert exchange.request.body == b"data"


def test_head_response_has_no_body_despite_content_length():
    client = b"HEAD /big HTTP/1.1\r\n\r\n" + get("/small")
    server = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + ok(b"s")
    [head, small] = split(client, server)
    assert head.response.body == b"" and small.response.body == b"s"


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status):
    server = f"HTTP/1.1 {status} X\r\nContent-Length: 3\r\n\r\n".encode() + ok(b"abc")
    first, second = split(get() + get(), server)
    assert first.response.status == status and first.response.body == b""
    assert second.response.body == b"abc"


def test_close_delimited_body_runs_to_end_of_stream():
    server = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall\r\nthe rest"
    [exchange] = split(b"GET / HTTP/1.0\r\n\r\n", server)
    assert exchange.response.body == b"all\r\nthe rest"
    assert exchange.malformed is None


def test_close_delimited_body_before_a_gap_is_not_trusted():
    server = b"HTTP/1.0 200 OK\r\n\r\npartial"
    [exchange] = split(b"GET / HTTP/1.0\r\n\r\n", server, server_cut=True)
    assert "gap" in exchange.malformed
    assert isinstance(exchange.response, RawMessage)


def test_bare_lf_folding_and_leading_empty_lines_are_tolerated():
    client = b"\r\nGET /x HTTP/1.1\nHost: a\nX-Long: one\n  two\n\n"
    [exchange] = split(client, b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi")
    assert exchange.malformed is None
    assert ("X-Long", "one two") in exchange.request.headers
    assert exchange.response.body == b"hi"


def test_upgrade_leaves_http_and_keeps_the_rest_raw():
    client = get("/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\n") + b"\x81\x85frame"
    server = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi"
    upgrade, tunnel = split(client, server)
    assert upgrade.response.status == 101
    assert tunnel.request == RawMessage(b"\x81\x85frame", len(client) - 7)
    assert tunnel.response.data == b"\x81\x02hi" and tunnel.malformed is None
    assert tunnel.id == "s0042-x001"


def test_missing_response_is_recorded_with_the_reason():
    exchanges = CODEC.split(Conversation(1, get("/a") + get("/b"), ok(b"A"), server_note="replay sut_reset: x"))
    assert exchanges[0].malformed is None
    assert exchanges[1].response is None
    assert "no response" in exchanges[1].malformed and "sut_reset" in exchanges[1].malformed


def test_trailing_server_bytes_without_request_are_recorded():
    exchanges = split(get(), ok(b"a") + b"garbage")
    assert exchanges[-1].response.data == b"garbage"
    assert "no request" in exchanges[-1].malformed


@pytest.mark.parametrize(
    "client, problem",
    [
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", "invalid header line"),
        (b"GET /\r\n\r\n", "invalid request line"),
        (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "invalid Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "conflicting"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "must end with chunked"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size"),
        (b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort", "cut by the end of the stream"),
    ],
)
def test_malformed_requests_are_recorded_not_raised(client, problem):
    [exchange] = split(get() + client, ok(b"1") + ok(b"2"))[1:]
    assert problem in exchange.malformed
    assert isinstance(exchange.request, RawMessage)
    assert exchange.response == RawMessage(ok(b"2"), len(ok(b"1")))


def test_malformed_response_stops_pairing_but_requests_still_parse():
    exchanges = split(get("/a") + get("/b") + get("/c"), ok(b"1") + b"HTTP/9 nonsense\r\n\r\n" + ok(b"3"))
    assert exchanges[0].malformed is None
    assert "malformed response" in exchanges[1].malformed
    assert exchanges[2].request.path == "/c" and exchanges[2].response is None
    assert "malformed" in exchanges[2].malformed


def test_server_gap_parses_before_and_records_after():
    exchanges = split(get("/a") + get("/b") + get("/c"), ok(b"1") + ok(b"22")[:10], server_cut=True)
    assert exchanges[0].response.body == b"1" and exchanges[0].malformed is None
    assert "gap" in exchanges[1].malformed
    assert exchanges[2].response is None and exchanges[2].malformed


def test_client_gap_parses_before_and_records_after():
    exchanges = split(get("/a") + get("/b")[:5], ok(b"1") + ok(b"2"), client_cut=True)
    assert exchanges[0].malformed is None
    assert "gap" in exchanges[1].malformed and exchanges[1].request.data == get("/b")[:5]


def test_client_gap_on_a_message_boundary_is_recorded():
    exchanges = split(get("/a"), ok(b"1") + ok(b"2"), client_cut=True)
    assert exchanges[0].malformed is None
    assert "gap at byte" in exchanges[1].malformed


@pytest.mark.parametrize(
    "client, expected",
    [
        (b"GET / HTTP/1.1\r\n", True),
        (b"\r\nPROPFIND /dav HTTP/1.1\r\nDepth: 1\r\n", True),
        (b"GET key\r\n", False),  # a Redis inline command
        (b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", False),
        (b"", False),
    ],
)
def test_detection(client, expected):
    assert CODEC.detect(client) is expected


def test_byte_by_byte_prefixes_never_raise_and_converge():
    client = get("/a") + b"POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
    server = ok(b"1") + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
    for n in range(len(server) + 1):
        exchanges = split(client, server[:n])
        assert all(isinstance(e.request, (HttpRequest, RawMessage)) for e in exchanges)
    final = split(client, server)
    assert [e.malformed for e in final] == [None, None]
    assert isinstance(final[1].response, HttpResponse) and final[1].response.body == b"x"


def test_problem_reports_do_not_quote_header_values():
    [exchange] = split(b"GET / HTTP/1.1\r\nAuthorization Bearer s3cret\r\n\r\n", b"")
    assert "invalid header line starting 'Authorization'" in exchange.malformed
    assert "s3cret" not in exchange.malformed


@pytest.mark.parametrize("order", ["head first", "get first"])
def test_an_invalid_length_in_a_repeated_head_is_malformed_only_where_it_frames_the_body(order):
    bad = b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"
    calls = [("HEAD", b"HEAD / HTTP/1.1\r\nHost: sut\r\n\r\n"), ("GET", get())]
    for method, request in calls if order == "head first" else calls[::-1]:
        [exchange] = split(request, bad)
        if method == "HEAD":
            assert exchange.malformed is None and exchange.response.body == b""
        else:
            assert "invalid Content-Length 'x'" in exchange.malformed


def test_consecutive_splits_of_the_same_client_bytes_share_their_requests():
    client = get("/a") + get("/b", "X-Id: 1\r\n")
    first = split(client, ok(b"1") + ok(b"2"))
    second = split(bytes(bytearray(client)), ok(b"x") + ok(b"y"))  # equal bytes, another object
    assert [e.request for e in second] == [e.request for e in first]
    assert [e.response.body for e in second] == [b"x", b"y"]
    [other] = split(get("/c"), ok(b"3"))
    assert other.request.target == "/c" and other.request.offset == 0


@given(
    data=st.lists(st.sampled_from([b"\r", b"\n", b"a"]), max_size=14).map(b"".join),
    pos=st.integers(0, 14),
)
def test_the_end_of_a_head_is_the_first_empty_line_of_crlf_or_lf_line_ends(data, pos):
    expected = re.compile(rb"\r?\n\r?\n").search(data, pos)
    try:
        found = http_codec._head_end(data, pos)
    except http_codec._Short:
        found = None
    assert found == (None if expected is None else expected.span())
