"""HTTP/1.x: split a session into request/response exchanges by message framing (RFC 9112).

Message length follows RFC 9112 section 6.3: responses to HEAD and 1xx/204/304 responses have no
body; a chunked transfer coding is decoded (trailers kept); otherwise Content-Length; a response
with neither runs to the end of the stream (HTTP/1.0, ``Connection: close``). Requests may be
pipelined: the n-th final response answers the n-th request, and 1xx responses before it (100
Continue, 103 Early Hints) are kept on it as ``interim``. A 101 Switching Protocols, or a 2xx
answer to CONNECT, ends HTTP: what follows on both sides becomes one raw exchange.

Lenient where real servers and Wireshark are (bare LF line ends, obsolete line folding, empty
lines between messages, a version of any digits such as ``HTTP/1.0.8``), strict on framing: a bad start line, header line, length or chunk size stops parsing
that direction, and the problem is recorded on the exchange. Nothing here raises on bad traffic.
"""

from __future__ import annotations

import re

from ..exchange import (
    Conversation,
    Exchange,
    Headers,
    HttpRequest,
    HttpResponse,
    InterimResponse,
    RawMessage,
)

_BLANK_LINE = re.compile(rb"\n\r?\n")  # searched from the first line end: a literal start is fast
_VERSION = r"HTTP/\d+(?:\.\d+)*"  # as Wireshark reads it: any digits (HTTP/1.0.8 too)
_REQUEST_LINE = re.compile(rf"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) ({_VERSION})")
_STATUS_LINE = re.compile(rf"({_VERSION}) (\d{{3}})(?: (.*))?")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_DETECT = re.compile(rb"(?:\r?\n)*(?!PRI \* HTTP/2)[!#$%&'*+\-.^_`|~0-9A-Za-z]+ \S+ HTTP/\d+(?:\.\d+)*\r?\n")


class _Malformed(Exception):
    """The bytes at the current position cannot be an HTTP/1.x message."""


class _Short(Exception):
    """The bytes end inside a message."""


class HttpCodec:
    """HTTP/1.0 and HTTP/1.1 over one TCP connection; see the module comment."""

    name = "http"
    uses_turns = False  # message framing says where each exchange ends

    def detect(self, client: bytes) -> bool:
        """True when the client's first line is a request line: a method token, a target and
        ``HTTP/`` with a version of any digits, as Wireshark accepts it (``HTTP/1.0.8``). The
        HTTP/2 connection preface (``PRI * HTTP/2.0``) is not HTTP/1.x."""
        return _DETECT.match(client) is not None

    def split(self, conversation: Conversation) -> list[Exchange]:
        return _Splitter(conversation).run()


class _Splitter:
    """One pass over a conversation: requests in order, each followed by its response."""

    def __init__(self, conversation: Conversation) -> None:
        self.conv = conversation
        self.out: list[Exchange] = []
        self.spos = 0
        self.server_lost: str | None = None  # set once responses can no longer be located

    def run(self) -> list[Exchange]:
        client = self.conv.client
        cpos = 0
        while True:
            cpos = _skip_empty_lines(client, cpos)
            if cpos >= len(client):
                if self.conv.client_cut:
                    self._unparsed_request(cpos, f"the client stream has a gap at byte {cpos}")
                break
            try:
                request, cpos_next = _request_at(client, cpos)
            except _Short:
                where = "a gap" if self.conv.client_cut else "the end of the stream"
                self._unparsed_request(cpos, f"request cut by {where} at byte {len(client)}")
                return self.out
            except _Malformed as exc:
                self._unparsed_request(cpos, f"malformed request at byte {cpos}: {exc}")
                return self.out
            cpos = cpos_next
            if self._answer(request):
                self._tunnel(cpos)
                return self.out
        server = self.conv.server
        if self.server_lost is None and self.spos < len(server):
            self._add(
                RawMessage(b"", len(client)),
                RawMessage(server[self.spos :], self.spos),
                f"{len(server) - self.spos} server bytes after the last response, with no request",
            )
        return self.out

    def _answer(self, request: HttpRequest) -> bool:
        """Pair ``request`` with the next response; True when the connection leaves HTTP."""
        if self.server_lost is not None:
            self._add(request, None, self.server_lost)
            return False
        server, start = self.conv.server, self.spos
        try:
            response, end, tunnel = _parse_response(server, start, request.method, self.conv.server_cut)
        except _Short:
            if _skip_empty_lines(server, start) >= len(server):
                reason = self._why_no_response(start)
                self._add(request, None, reason)
                self.server_lost = reason
            else:
                where = "a gap" if self.conv.server_cut else "the end of the stream"
                self._add(request, RawMessage(server[start:], start), f"response cut by {where} at byte {len(server)}")
                self.server_lost = "response not located: an earlier response was incomplete"
            return False
        except _Malformed as exc:
            self._add(request, RawMessage(server[start:], start), f"malformed response at byte {start}: {exc}")
            self.server_lost = "response not located: an earlier response was malformed"
            return False
        self.spos = end
        self._add(request, response, None)
        return tunnel

    def _why_no_response(self, at: int) -> str:
        if self.conv.server_cut:
            return f"no response: the server stream has a gap at byte {at}"
        note = f" ({self.conv.server_note})" if self.conv.server_note else ""
        return f"no response: the server stream ended at byte {at}{note}"

    def _tunnel(self, cpos: int) -> None:
        client, server = self.conv.client, self.conv.server
        if cpos < len(client) or self.spos < len(server):
            self._add(RawMessage(client[cpos:], cpos), RawMessage(server[self.spos :], self.spos), None)

    def _unparsed_request(self, cpos: int, reason: str) -> None:
        server = self.conv.server
        rest = None
        if self.server_lost is None and self.spos < len(server):
            rest = RawMessage(server[self.spos :], self.spos)
        self._add(RawMessage(self.conv.client[cpos:], cpos), rest, reason)

    def _add(self, request: object, response: object | None, malformed: str | None) -> None:
        self.out.append(Exchange(self.conv.session, len(self.out), request, response, "http", malformed))


def _skip_empty_lines(data: bytes, pos: int) -> int:
    if data[pos : pos + 1] not in (b"\r", b"\n"):
        return pos  # the common case: no empty line
    while True:
        if data.startswith(b"\r\n", pos):
            pos += 2
        elif data.startswith(b"\n", pos):
            pos += 1
        else:
            return pos


# Header blocks already read, by their bytes, with what they say about the message's framing:
# the requests of one client and the responses of one server repeat theirs (a Date changes once a
# second), so most blocks are read once.
_BLOCKS: dict[bytes, tuple[Headers, tuple[str, ...], int | str | None] | str] = {}
_MAX_BLOCKS = 4096


def _read_head(data: bytes, pos: int) -> tuple[str, Headers, tuple[str, ...], int | str | None, int]:
    """The start line, the header fields, their transfer codings, their Content-Length (None when
    absent, why it is invalid when it is: an error only where it frames the body) and the offset
    just past the empty line."""
    end, body_pos = _head_end(data, pos)
    newline = data.find(b"\n", pos, end)
    if newline < 0:
        return data[pos:end].decode("latin-1").rstrip("\r"), (), (), None, body_pos
    block = data[newline + 1 : end]
    fields = _BLOCKS.get(block)
    if fields is None:
        fields = _read_fields(block)
        if len(_BLOCKS) >= _MAX_BLOCKS:
            _BLOCKS.clear()
        _BLOCKS[block] = fields
    if isinstance(fields, str):
        raise _Malformed(fields)
    headers, codings, length = fields
    return data[pos:newline].decode("latin-1").rstrip("\r"), headers, codings, length, body_pos


def _head_end(data: bytes, pos: int) -> tuple[int, int]:
    """Where the first empty line at or after ``pos`` starts and ends (two line ends in a row,
    each CR LF or a bare LF; the first one included); raises ``_Short`` when there is none."""
    match = _BLANK_LINE.search(data, pos)
    if match is None:
        raise _Short
    start = match.start()
    if start > pos and data[start - 1] == 13:  # "\r"
        start -= 1
    return start, match.end()


def _read_fields(block: bytes) -> tuple[Headers, tuple[str, ...], int | str | None] | str:
    """A header block's fields, transfer codings and Content-Length (see ``_read_head``), or why
    the block is malformed."""
    try:
        headers = _parse_fields(block.decode("latin-1").split("\n"))
    except _Malformed as exc:
        return str(exc)
    try:
        length: int | str | None = _content_length(headers)
    except _Malformed as exc:
        length = str(exc)
    return headers, tuple(_transfer_codings(headers)), length


def _parse_fields(lines: list[str]) -> Headers:
    fields: list[list[str]] = []
    for line in lines:
        line = line.rstrip("\r")
        if line[:1] in (" ", "\t"):
            if not fields:
                raise _Malformed("a folded header line with no header before it")
            fields[-1][1] = f"{fields[-1][1]} {line.strip()}".strip()
            continue
        name, colon, value = line.partition(":")
        if not colon or _TOKEN.fullmatch(name) is None:
            first_word = name.strip().split(" ", 1)[0][:24]  # never the value: it may be a secret
            raise _Malformed(f"invalid header line starting {first_word!r}")
        fields.append([name, value.strip(" \t")])
    return tuple((name, value) for name, value in fields)


# The requests parsed from the last client stream split, by offset: production's exchanges and
# each replay's split the same client bytes, one after the other. Swapped whole, never changed
# in place under a reader: (client bytes, {offset: (request, end)}).
_LAST_CLIENT: tuple[bytes, dict[int, tuple[HttpRequest, int]]] = (b"", {})


def _request_at(client: bytes, pos: int) -> tuple[HttpRequest, int]:
    """``_parse_request(client, pos)``, parsed once for consecutive splits of the same bytes."""
    global _LAST_CLIENT
    last = _LAST_CLIENT
    if last[0] is not client and last[0] != client:
        last = _LAST_CLIENT = (client, {})
    parsed = last[1].get(pos)
    if parsed is None:
        parsed = last[1][pos] = _parse_request(client, pos)
    return parsed


def _parse_request(data: bytes, pos: int) -> tuple[HttpRequest, int]:
    start_line, headers, codings, length, body_pos = _read_head(data, pos)
    match = _REQUEST_LINE.fullmatch(start_line)
    if match is None:
        raise _Malformed(f"invalid request line starting {start_line[:16]!r}")  # targets may hold tokens
    method, target, version = match.groups()
    if codings:
        if codings[-1] != "chunked":
            raise _Malformed("a request Transfer-Encoding must end with chunked")
        body, trailers, end = _read_chunked(data, body_pos)
    else:
        if isinstance(length, str):
            raise _Malformed(length)
        body, trailers, end = _read_fixed(data, body_pos, length or 0)
    return HttpRequest(method, target, version, headers, body, trailers, pos), end


def _parse_response(data: bytes, pos: int, method: str, cut: bool) -> tuple[HttpResponse, int, bool]:
    """The final response at ``pos``, its end, and whether the connection leaves HTTP after it."""
    interim: list[InterimResponse] = []
    start = pos
    while True:
        pos = _skip_empty_lines(data, pos)
        if pos >= len(data):
            raise _Short
        start_line, headers, codings, length, body_pos = _read_head(data, pos)
        match = _STATUS_LINE.fullmatch(start_line)
        if match is None:
            raise _Malformed(f"invalid status line {start_line[:60]!r}")
        version, code, reason = match.group(1), int(match.group(2)), match.group(3) or ""
        if 100 <= code < 200 and code != 101:
            interim.append(InterimResponse(code, reason, headers))
            pos = body_pos
            continue
        break
    tunnel = code == 101 or (method == "CONNECT" and 200 <= code < 300)
    if tunnel or method == "HEAD" or code in (204, 304):
        body, trailers, end = b"", (), body_pos
    elif codings and codings[-1] == "chunked":
        body, trailers, end = _read_chunked(data, body_pos)
    elif not codings and length is not None:
        if isinstance(length, str):
            raise _Malformed(length)
        body, trailers, end = _read_fixed(data, body_pos, length)
    else:
        if cut:
            raise _Short  # a body delimited by the close cannot end before a capture gap
        body, trailers, end = data[body_pos:], (), len(data)
    response = HttpResponse(version, code, reason, headers, body, trailers, tuple(interim), start)
    return response, end, tunnel


def _transfer_codings(headers: Headers) -> list[str]:
    codings = []
    for name, value in headers:
        if name.lower() == "transfer-encoding":
            codings += [c.strip().lower() for c in value.split(",") if c.strip()]
    return codings


def _content_length(headers: Headers) -> int | None:
    values = set()
    for name, value in headers:
        if name.lower() == "content-length":
            for part in value.split(","):
                part = part.strip()
                if not (part.isascii() and part.isdigit() and len(part) <= 18):
                    raise _Malformed(f"invalid Content-Length {value[:40]!r}")
                values.add(int(part))
    if len(values) > 1:
        raise _Malformed(f"conflicting Content-Length values {sorted(values)}")
    return values.pop() if values else None


def _read_fixed(data: bytes, pos: int, length: int) -> tuple[bytes, Headers, int]:
    end = pos + length
    if end > len(data):
        raise _Short
    return data[pos:end], (), end


def _read_chunked(data: bytes, pos: int) -> tuple[bytes, Headers, int]:
    parts = []
    while True:
        eol = data.find(b"\n", pos)
        if eol < 0:
            raise _Short
        size_field = data[pos:eol].rstrip(b"\r").split(b";", 1)[0].strip(b" \t")
        if _HEX.fullmatch(size_field) is None:
            raise _Malformed(f"invalid chunk size {size_field[:20]!r}")
        size = int(size_field, 16)
        pos = eol + 1
        if size == 0:
            break
        end = pos + size
        if end > len(data):
            raise _Short
        parts.append(data[pos:end])
        if data.startswith(b"\r\n", end):
            pos = end + 2
        elif data.startswith(b"\n", end):
            pos = end + 1
        elif len(data) - end < 2:
            raise _Short
        else:
            raise _Malformed("chunk data not followed by a line end")
    if data.startswith(b"\r\n", pos):
        return b"".join(parts), (), pos + 2
    if data.startswith(b"\n", pos):
        return b"".join(parts), (), pos + 1
    end, after = _head_end(data, pos)
    trailers = _parse_fields(data[pos:end].decode("latin-1").split("\n"))
    return b"".join(parts), trailers, after
