"""The values the codecs produce: parsed messages, request/response exchanges, and their input.

A codec reads a ``Conversation`` (both directions of one TCP session as whole byte strings, with
the turn boundaries known for it) and returns ``Exchange`` values. Nothing here parses; the codecs
in ``codecs/`` do. Problems found in production traffic are recorded on the exchange
(``malformed``), never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

Headers = tuple[tuple[str, str], ...]  # (name as received, value), in wire order, repeats kept


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP/1.x request; ``body`` is de-chunked, ``offset`` its first byte in the stream."""

    method: str
    target: str
    version: str
    headers: Headers
    body: bytes
    trailers: Headers = ()
    offset: int = 0

    @property
    def path(self) -> str:
        """The request target without its query string."""
        return self.target.split("?", 1)[0]


@dataclass(frozen=True, slots=True)
class InterimResponse:
    """A 1xx response (100 Continue, 103 Early Hints) that preceded the final one."""

    status: int
    reason: str
    headers: Headers


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """One final HTTP/1.x response; ``interim`` holds the 1xx responses skipped before it."""

    version: str
    status: int
    reason: str
    headers: Headers
    body: bytes
    trailers: Headers = ()
    interim: tuple[InterimResponse, ...] = ()
    offset: int = 0


@dataclass(frozen=True, slots=True)
class RawMessage:
    """Bytes of one direction of one turn, with no structure known (or none could be parsed)."""

    data: bytes
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and the response to it, as found in one direction pair of a session.

    ``session`` is the captured session's index, ``number`` the exchange's position in it (from
    0). ``response`` is None when no response bytes belong to the request. ``malformed`` says why
    this is not a clean request/response pair (a parse problem, a capture gap, a missing response),
    or is None. ``codec`` names the codec that split it.
    """

    session: int
    number: int
    request: object
    response: object | None
    codec: str
    malformed: str | None = None

    @property
    def id(self) -> str:
        """A short, stable label: ``s0042-GET /api/users`` for HTTP, ``s0042-x003`` otherwise."""
        request = self.request
        if isinstance(request, HttpRequest):
            return f"s{self.session:04d}-{request.method} {request.path}"
        return f"s{self.session:04d}-x{self.number:03d}"


class Turn(NamedTuple):
    """Byte ranges of one turn: client bytes [client_start, client_end), then the server's
    bytes [server_start, server_end) sent before the client spoke again."""

    client_start: int
    client_end: int
    server_start: int
    server_end: int


@dataclass(frozen=True, slots=True)
class Conversation:
    """What a codec reads: one session's two directions as whole bytes.

    ``client`` and ``server`` are the known bytes from offset 0 up to the first gap;
    ``client_cut``/``server_cut`` are True when the stream went on past a gap (bytes missing).
    ``turns`` partitions both byte strings into turns (used by codecs without framing; empty
    for a codec with ``uses_turns = False``).
    ``server_note`` explains why server bytes are absent or incomplete (a replay outcome), so a
    missing response can say why.
    """

    session: int
    client: bytes
    server: bytes
    client_cut: bool = False
    server_cut: bool = False
    turns: tuple[Turn, ...] = ()
    server_note: str | None = None
