"""The HTTP/1.x framer of the request gate: where responses end, fed whole and byte by byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_tcpcopy.tcp.http_framing import (
    MAX_HEAD,
    Framing,
    HttpRequestScanner,
    HttpResponseFramer,
    looks_like_http_request,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n"
    b"0\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n"
)


def framed(methods, data, *, step=None):
    """The framer after ``expect``-ing ``methods`` and feeding ``data`` (in pieces of ``step``)."""
    framer = HttpResponseFramer()
    for method in methods:
        framer.expect(method)
    step = step or max(len(data), 1)
    for i in range(0, len(data), step):
        framer.feed(data[i : i + step])
    return framer


def first_complete(methods, data):
    """Feeding byte by byte: the number of bytes fed when the framer first said COMPLETE."""
    framer = HttpResponseFramer()
    for method in methods:
        framer.expect(method)
    for i in range(len(data)):
        framer.feed(data[i : i + 1])
        if framer.status is Framing.COMPLETE:
            return i + 1
    return None


@pytest.mark.parametrize("response", [
    OK,
    CHUNKED,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",  # no trailers
    b"HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n",  # 204: no body whatever it says
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK,  # interim first
    b"\r\n" + OK,  # an empty line before the status line
    b"HTTP/1.0 200 OK\nContent-Length: 2\n\nhi",  # bare LF line ends
    b"HTTP/1.0.8 200 OK\r\nContent-Length: 2\r\n\r\nhi",  # a version of any digits
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Folded: a\r\n b\r\n\r\nabc",  # obsolete folding
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
], ids=["length", "chunked-trailers", "chunked-empty", "204", "304", "interim", "leading-crlf", "lf",
        "odd-version", "folding", "empty"])
def test_a_response_is_complete_exactly_at_its_last_byte_whole_or_byte_by_byte(response):
    whole = framed([b"GET"], response)
    assert whole.status is Framing.COMPLETE and whole.end == len(response)
    assert first_complete([b"GET"], response) == len(response)


def test_a_response_to_head_has_no_body_whatever_its_length_says():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    assert first_complete([b"HEAD"], head) == len(head)
    assert framed([b"GET"], head).status is Framing.NEED_MORE


def test_the_head_says_where_a_content_length_response_will_end():
    framer = framed([b"GET"], OK[:-2])
    assert framer.status is Framing.NEED_MORE and framer.length == len(OK)
    framer.feed(OK[-2:])
    assert framer.status is Framing.COMPLETE and framer.length is None


def test_a_chunked_body_is_complete_only_after_its_trailers():
    for cut in range(len(CHUNKED)):
        framer = framed([b"GET"], CHUNKED[:cut])
        assert framer.status is Framing.NEED_MORE, cut
        assert framer.length is None  # a chunked body announces no length


def test_keep_alive_responses_in_order_each_request_adds_one():
    two = OK + CHUNKED
    framer = framed([b"GET"], two)
    assert framer.status is Framing.COMPLETE and framer.end == len(OK)  # the second is not due yet
    framer.expect(b"GET")
    assert framer.status is Framing.COMPLETE and framer.end == len(two)  # already here
    assert first_complete([b"GET", b"POST"], two) == len(two)


def test_pipelined_requests_need_every_response():
    three = OK + b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" + OK
    assert first_complete([b"GET", b"HEAD", b"GET"], three) == len(three)


@pytest.mark.parametrize("response", [
    b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nthe body runs to the close",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nbytes",
])
def test_a_body_without_length_ends_with_the_close(response):
    framer = framed([b"GET"], response, step=3)
    assert framer.status is Framing.CLOSE_DELIMITED
    framer.feed(b"more and more")
    assert framer.status is Framing.CLOSE_DELIMITED


@pytest.mark.parametrize("data", [
    b"SSH-2.0-OpenSSH_9.2\r\n",  # not HTTP at all
    b"+OK\r\n",
    b"HTTP/1.1 20 OK\r\n\r\n",  # a two-digit status code
    b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello",  # conflicting lengths
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # a chunk size that is not hex
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",  # no line end after data
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",  # leaves HTTP
    b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * (MAX_HEAD // 6 + 1),  # a header block without end
])
def test_what_is_not_http_framing_is_unknown_for_good(data):
    framer = framed([b"GET"], data)
    assert framer.status is Framing.UNKNOWN
    framer.feed(OK)
    framer.expect(b"GET")
    assert framer.status is Framing.UNKNOWN


def test_a_tunnel_after_connect_is_unknown():
    assert framed([b"CONNECT"], b"HTTP/1.1 200 Connection established\r\n\r\n").status is Framing.UNKNOWN


def test_missing_bytes_make_the_framing_unknown():
    framer = framed([b"GET"], OK[:10])
    framer.give_up()
    framer.feed(OK[10:])
    assert framer.status is Framing.UNKNOWN


def test_bytes_before_any_request_wait_for_it():
    framer = HttpResponseFramer()
    assert framer.status is Framing.COMPLETE and framer.end == 0
    framer.feed(OK)
    assert framer.status is Framing.COMPLETE and framer.end == 0
    framer.expect(b"GET")
    assert framer.status is Framing.COMPLETE and framer.end == len(OK)


def test_a_long_body_is_counted_not_kept():
    framer = framed([b"GET"], b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
    for _ in range(999):
        framer.feed(b"x" * 10000)
    assert framer.status is Framing.NEED_MORE and not framer._buf
    framer.feed(b"x" * 10000)
    assert framer.status is Framing.COMPLETE


REQUESTS = (
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    b"POST /b HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"
    b"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    b"HEAD /d HTTP/1.0\r\n\r\n"
)


@pytest.mark.parametrize("step", [1, 7, len(REQUESTS)])
def test_the_request_scanner_finds_every_method_in_order(step):
    scanner = HttpRequestScanner()
    for i in range(0, len(REQUESTS), step):
        scanner.feed(REQUESTS[i : i + step])
    assert list(scanner.methods) == [b"GET", b"POST", b"PUT", b"HEAD"]
    assert not scanner.stopped


def test_the_request_scanner_stops_at_garbage():
    scanner = HttpRequestScanner()
    scanner.feed(b"GET / HTTP/1.1\r\n\r\n\x16\x03\x01 not a request\r\n\r\n")
    assert list(scanner.methods) == [b"GET"] and scanner.stopped


@pytest.mark.parametrize("data,expected", [
    (b"GET / HTTP/1.1\r\n", True),
    (b"\r\nPOST /x?y=1 HTTP/1.0\n", True),
    (b"GET / HTTP/1.0.8\r\n", True),
    (b"PRI * HTTP/2.0\r\n", True),  # a request line: the response framer decides on its answer
    (b"GET / HTTP/1.1", False),  # the line has not ended
    (b"*1\r\n$4\r\nPING\r\n", False),
    (b"\x16\x03\x01\x02\x00", False),
])
def test_http_requests_are_recognised_as_wireshark_does(data, expected):
    assert looks_like_http_request(data) is expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(1, 40), max_size=10))
def test_any_bytes_in_any_pieces_leave_a_framing_answer(data, cuts):
    """Fuzz invariant: the framer never raises, and COMPLETE never points past the bytes fed."""
    framer = HttpResponseFramer()
    framer.expect(b"GET")
    pos = 0
    for cut in [*cuts, len(data)]:
        framer.feed(data[pos : pos + cut])
        pos += cut
        assert isinstance(framer.status, Framing)
        assert framer.end <= framer.fed
    scanner = HttpRequestScanner()
    scanner.feed(data)
