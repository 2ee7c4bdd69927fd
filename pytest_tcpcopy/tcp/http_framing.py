"""Where HTTP/1.x messages end, for the request gate: bytes in, "complete at byte N", "need more",
"ends with the close" or "unknown framing" out. Sans-IO, fed any amount at a time.

The rules (RFC 9112 section 6.3), in the order a response is framed:

1. Empty lines before a start line are skipped; a status line is ``HTTP/`` + a version of any
   digits + a three-digit code. Anything else is not HTTP framing: UNKNOWN, for good.
2. A 1xx response other than 101 is interim: it has no body, and the final response follows.
3. A 101 Switching Protocols, or a 2xx answer to CONNECT, leaves HTTP: UNKNOWN from there on.
4. A response to HEAD, and a 204 or 304, has no body whatever its header fields say.
5. A Transfer-Encoding ending in ``chunked``: chunks up to the zero-size chunk, then trailer
   fields up to an empty line. A Transfer-Encoding ending otherwise: the body ends with the close.
6. A valid Content-Length: that many bytes. An invalid or conflicting one: UNKNOWN.
7. None of these: the body ends when the server closes (CLOSE_DELIMITED).

Requests frame the same way, except that a request has a body only by Transfer-Encoding
(chunked) or Content-Length; ``HttpRequestScanner`` reads the client's bytes to learn the
method of each request, which the response framer needs for rule 4 and rule 3.

Header blocks and chunk-size lines are buffered (at most ``MAX_HEAD`` bytes: more is not HTTP);
body bytes are counted, never kept.
"""

from __future__ import annotations

import enum
import re
from collections import deque


class Framing(enum.Enum):
    __hash__ = object.__hash__  # identity hash: members are compared by identity (see _state.py)

    NEED_MORE = "need more"  # a response the framing expects has not ended yet
    COMPLETE = "complete"  # every expected response ended, at byte ``end``
    CLOSE_DELIMITED = "ends with the close"  # the last response ends when the server closes
    UNKNOWN = "unknown framing"  # not HTTP/1.x framing (or it left HTTP): ask someone else


MAX_HEAD = 65536  # a header block (or a chunk-size line) longer than this is not HTTP framing

_NEED_MORE, _COMPLETE, _CLOSE_DELIMITED, _UNKNOWN = (
    Framing.NEED_MORE, Framing.COMPLETE, Framing.CLOSE_DELIMITED, Framing.UNKNOWN,
)  # fmt: skip
_STATUS_LINE = re.compile(rb"HTTP/[0-9]+(?:\.[0-9]+)* ([0-9]{3})(?:[ \t].*)?")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) \S+ HTTP/[0-9]+(?:\.[0-9]+)*")
_REQUEST_START = re.compile(rb"(?:\r?\n)*[!#$%&'*+\-.^_`|~0-9A-Za-z]+ \S+ HTTP/[0-9]+(?:\.[0-9]+)*\r?\n")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_BLOCK_END = re.compile(rb"\r?\n\r?\n")

# Where a message reader is: in a header block, a fixed body, or the parts of a chunked body.
_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _TO_CLOSE, _STOPPED = range(8)


def looks_like_http_request(data: bytes) -> bool:
    """Whether ``data`` starts with an HTTP/1.x request line (a method token, a target, ``HTTP/``
    and a version of any digits, as Wireshark decodes it)."""
    return _REQUEST_START.match(data) is not None


class _MessageReader:
    """One direction's HTTP/1.x messages, message after message; subclasses say where the body
    of a message whose header block was just read ends (``_start_body``)."""

    __slots__ = ("_buf", "_left", "_step", "fed", "stopped")

    def __init__(self) -> None:
        self._buf = bytearray()  # unread bytes (header blocks, chunk lines, unframed body bytes)
        self._step = _HEAD
        self._left = 0  # body or chunk bytes still to count
        self.fed = 0  # bytes fed so far
        self.stopped = False  # not HTTP framing (any more): nothing further is read

    def _read(self) -> None:
        """Advance over whatever the buffer holds; ``_message_done`` at each message's end."""
        buf = self._buf
        pos = 0
        while not self.stopped:
            step = self._step
            if step == _BODY or step == _CHUNK_DATA:
                take = min(self._left, len(buf) - pos)
                pos += take
                self._left -= take
                if self._left:
                    break
                if step == _BODY:
                    self._step = _HEAD
                    self._message_done(self.fed - (len(buf) - pos))
                else:
                    self._step = _CHUNK_END
                continue
            if step == _TO_CLOSE or step == _STOPPED:
                pos = len(buf)
                break
            if step == _HEAD or step == _TRAILERS:
                if step == _HEAD:
                    while buf.startswith(b"\r\n", pos) or buf.startswith(b"\n", pos):
                        pos += 2 if buf[pos] == 13 else 1  # empty lines between messages
                    if pos == len(buf) or not self._wants_message() or buf[pos:] == b"\r":
                        break  # (a CR whose LF has not come yet)
                    if self._start_line_bad(buf, pos):
                        self._stop()
                        break
                    end = _block_end(buf, pos)
                else:
                    end = _trailers_end(buf, pos)
                if end < 0:
                    if len(buf) - pos > MAX_HEAD:
                        self._stop()
                    break
                block = bytes(buf[pos:end])
                pos = end
                if step == _TRAILERS:
                    self._step = _HEAD
                    self._message_done(self.fed - (len(buf) - pos))
                else:
                    self._start_body(block, self.fed - (len(buf) - pos))
                continue
            eol = buf.find(b"\n", pos)  # a chunk-size line, or the line end after chunk data
            if eol < 0:
                if len(buf) - pos > MAX_HEAD:
                    self._stop()
                break
            line = bytes(buf[pos:eol]).rstrip(b"\r")
            pos = eol + 1
            if step == _CHUNK_END:
                if line:
                    self._stop()  # chunk data not followed by a line end
                else:
                    self._step = _CHUNK_SIZE
                continue
            size = line.split(b";", 1)[0].strip(b" \t")
            if _HEX.fullmatch(size) is None:
                self._stop()
                continue
            self._left = int(size, 16)
            self._step = _CHUNK_DATA if self._left else _TRAILERS
        del buf[:pos]

    def _feed(self, data: bytes) -> None:
        self.fed += len(data)
        if self.stopped:
            return
        if self._step == _BODY and not self._buf and len(data) < self._left:
            self._left -= len(data)  # the common case of a long body: count, do not copy
            return
        self._buf += data
        self._read()

    def _stop(self) -> None:
        self.stopped = True
        self._step = _STOPPED
        self._buf.clear()

    def _body_by_headers(self, fields: list[tuple[bytes, bytes]]) -> bool:
        """Set up a body framed by Transfer-Encoding or Content-Length; False when neither is
        there. Stops on a length that cannot be trusted."""
        codings: list[bytes] = []
        lengths: set[int] = set()
        for name, value in fields:
            if name == b"transfer-encoding":
                codings += [c.strip().lower() for c in value.split(b",") if c.strip()]
            elif name == b"content-length":
                for part in value.split(b","):
                    part = part.strip()
                    if not part.isdigit() or len(part) > 18:
                        self._stop()
                        return True
                    lengths.add(int(part))
        if codings:
            if codings[-1] == b"chunked":
                self._step = _CHUNK_SIZE
            else:
                self._step = _TO_CLOSE
            return True
        if len(lengths) > 1:
            self._stop()
            return True
        if lengths:
            self._left = lengths.pop()
            self._step = _BODY
            return True
        return False

    # Subclass hooks.
    def _wants_message(self) -> bool:
        return True

    def _start_line_bad(self, buf: bytearray, pos: int) -> bool:
        """Whether the bytes at ``pos`` cannot start a message (known before the block ends)."""
        raise NotImplementedError

    def _start_body(self, block: bytes, at: int) -> None:
        raise NotImplementedError

    def _message_done(self, at: int) -> None:
        raise NotImplementedError


class HttpRequestScanner(_MessageReader):
    """The client's side: the method of every request, in order, as its header block is read."""

    __slots__ = ("methods",)

    def __init__(self) -> None:
        super().__init__()
        self.methods: deque[bytes] = deque()  # methods of requests read and not yet taken

    def feed(self, data: bytes) -> None:
        self._feed(data)

    def between_requests(self) -> bool:
        """Whether every byte fed so far belongs to whole requests (none is half read)."""
        return self._step == _HEAD and not self._buf and not self.stopped

    def _start_line_bad(self, buf: bytearray, pos: int) -> bool:
        eol = buf.find(b"\n", pos)
        return eol >= 0 and _REQUEST_LINE.fullmatch(bytes(buf[pos:eol]).rstrip(b"\r")) is None

    def _start_body(self, block: bytes, at: int) -> None:
        start_line, fields = _split_block(block)
        match = _REQUEST_LINE.fullmatch(start_line)
        if match is None or fields is None:
            self._stop()
            return
        self.methods.append(match.group(1))
        self._body_by_headers(fields)
        if self._step == _TO_CLOSE:
            self._stop()  # a request body ending with the close: no later request to read

    def _message_done(self, at: int) -> None:
        pass


class HttpResponseFramer(_MessageReader):
    """The server's side: whether the responses to the requests sent so far have all ended.

    ``expect(method)`` for each request sent, ``feed`` the server's bytes in order, then read
    ``status`` (a ``Framing``) and ``end`` (the byte offset, counted from the first byte fed,
    where the last expected response ended). ``length`` is where the response being read will
    end when its Content-Length said so, else None. ``give_up()`` when bytes are missing (a
    truncated report): the framing is UNKNOWN from then on.
    """

    __slots__ = ("_pending", "end", "length", "status")

    def __init__(self) -> None:
        super().__init__()
        self._pending: deque[bytes] = deque()  # methods of requests not answered yet
        self.status = _COMPLETE
        self.end = 0
        self.length: int | None = None

    def expect(self, method: bytes) -> None:
        """A request with this method went to the server: one more final response is due."""
        if self.stopped:
            return
        self._pending.append(method)
        if self.status is _COMPLETE:
            self.status = _NEED_MORE
            self._read()  # bytes already here may hold the answer

    def feed(self, data: bytes) -> None:
        self._feed(data)

    def give_up(self) -> None:
        self._stop()

    def _stop(self) -> None:
        _MessageReader._stop(self)
        self.status = _UNKNOWN
        self.length = None

    def _wants_message(self) -> bool:
        return bool(self._pending)

    def _start_line_bad(self, buf: bytearray, pos: int) -> bool:
        if not b"HTTP/".startswith(bytes(buf[pos : pos + 5])):
            return True
        eol = buf.find(b"\n", pos)
        return eol >= 0 and _STATUS_LINE.fullmatch(bytes(buf[pos:eol]).rstrip(b"\r")) is None

    def _start_body(self, block: bytes, at: int) -> None:
        start_line, fields = _split_block(block)
        match = _STATUS_LINE.fullmatch(start_line)
        if match is None or fields is None:
            self._stop()
            return
        code = int(match.group(1))
        method = self._pending[0]
        if code == 101 or (method == b"CONNECT" and 200 <= code < 300):
            self._stop()  # the connection leaves HTTP
            return
        if 100 <= code < 200:
            return  # interim: the final response follows, still in _HEAD
        if method == b"HEAD" or code in (204, 304):
            self._message_done(at)
            return
        if not self._body_by_headers(fields):
            self._step = _TO_CLOSE
        if self._step == _TO_CLOSE:
            self.status = _CLOSE_DELIMITED  # and every request behind it goes unanswered
        elif self._step == _BODY and len(self._pending) == 1:
            self.length = at + self._left

    def _message_done(self, at: int) -> None:
        self._pending.popleft()
        self.length = None
        if not self._pending:
            self.status = _COMPLETE
            self.end = at


def _block_end(buf: bytearray, pos: int) -> int:
    """The offset just past the empty line ending a header block at ``pos``, or -1."""
    match = _BLOCK_END.search(buf, pos)
    return -1 if match is None else match.end()


def _trailers_end(buf: bytearray, pos: int) -> int:
    """The offset just past the trailer section at ``pos`` (its fields, if any, and the empty
    line), or -1."""
    if buf.startswith(b"\n", pos):
        return pos + 1
    if buf.startswith(b"\r\n", pos):
        return pos + 2
    if len(buf) - pos < 2:
        return -1
    return _block_end(buf, pos)


def _split_block(block: bytes) -> tuple[bytes, list[tuple[bytes, bytes]] | None]:
    """The start line and the header fields (names lower-cased) of a header block; fields None
    when a line is not a header field."""
    lines = block.split(b"\n")
    start = lines[0].rstrip(b"\r")
    fields: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        line = line.rstrip(b"\r")
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if not fields:
                return start, None
            name, value = fields[-1]
            fields[-1] = (name, value + b" " + line.strip())  # obsolete line folding
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            return start, None
        fields.append((name.lower(), value.strip(b" \t")))
    return start, fields
