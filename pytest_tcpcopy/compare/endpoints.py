"""Endpoint templates: the key that groups exchanges of one kind of request into findings.

HTTP: the method and the request target's path with volatile segments templated, then the query
keys in order with their values templated: ``GET /api/users/{id}?page={n}&sort=asc``. A path
segment or query value becomes ``{id}`` (digits; digits with an extension keep it:
``{id}.json``), or the kind of volatile value it looks like (``{uuid}``, ``{timestamp}``,
``{date}``, ``{hash}``, ``{token}``, see ``volatile``); a query value also becomes ``{n}`` for a
number, ``{secret}`` under a secret key, and ``{value}`` unless it is a short word (a word such as
``asc`` or ``json`` is kept: it usually selects behaviour). An absolute target
(``http://host/path``) uses its path. Templates are cut at ``MAX_CHARS``.

Other codecs: the codec name and the request's command word when one reads as such, upper-cased:
``raw GET`` for Redis (inline or RESP), ``raw EHLO`` for SMTP, ``raw LOGIN`` for an IMAP command
after its tag; ``raw (no request)`` for a server greeting, ``raw (binary)`` otherwise.
"""

from __future__ import annotations

import re

from .exchange import HttpRequest, RawMessage
from .redact import Redaction
from .volatile import volatile_kind

MAX_CHARS = 200
_DIGITS = re.compile(r"\d+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_ID_WITH_EXTENSION = re.compile(r"\d+(\.[A-Za-z0-9]{1,8})")
_WORD = re.compile(r"[A-Za-z][A-Za-z_\-]{0,23}")
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")
_RESP_COMMAND = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z][A-Za-z0-9_\-]{0,31})\r\n")
_TEXT_COMMAND = re.compile(rb"(?:[A-Za-z]*\d[A-Za-z0-9.]*[ \t]+)?([A-Za-z][A-Za-z0-9_\-]{0,31})(?:[ \t\r\n]|$)")
_DEFAULT_REDACTION = Redaction()


def endpoint_template(request: object, codec: str = "", redaction: Redaction = _DEFAULT_REDACTION) -> str:
    """The endpoint key of ``request`` (see the module comment); ``codec`` names its codec."""
    if isinstance(request, HttpRequest):
        return _http(request, redaction)[:MAX_CHARS]
    name = codec or ("raw" if isinstance(request, RawMessage) or request is None else type(request).__name__)
    if isinstance(request, RawMessage):
        return f"{name} {_command_word(request.data)}"
    return name


def template_segment(segment: str) -> str:
    """A path segment as templated: ``{id}``, ``{uuid}``... or the segment itself."""
    if _DIGITS.fullmatch(segment):
        return "{id}"
    match = _ID_WITH_EXTENSION.fullmatch(segment)
    if match:
        return "{id}" + match.group(1)
    kind = volatile_kind(segment)
    return f"{{{kind.value}}}" if kind else segment


def _http(request: HttpRequest, redaction: Redaction) -> str:
    target = request.target
    absolute = _ABSOLUTE.match(target)
    if absolute:
        target = target[absolute.end() :] or "/"
    path, _, query = target.partition("?")
    path = "/".join(template_segment(s) for s in path.split("/"))
    if not query:
        return f"{request.method} {path}"
    params = []
    for item in query.split("&"):
        key, eq, value = item.partition("=")
        params.append(f"{key}{eq}{_query_value(key, value, redaction)}" if eq else key)
    return f"{request.method} {path}?{'&'.join(params)}"


def _query_value(key: str, value: str, redaction: Redaction) -> str:
    if not value:
        return ""
    if redaction.secret_name(key):
        return "{secret}"
    kind = volatile_kind(value)
    if kind is not None:
        return f"{{{kind.value}}}"
    if _NUMBER.fullmatch(value):
        return "{n}"
    return value if _WORD.fullmatch(value) else "{value}"


def _command_word(data: bytes) -> str:
    if not data:
        return "(no request)"
    match = _RESP_COMMAND.match(data) or _TEXT_COMMAND.match(data)
    return match.group(1).decode("ascii").upper() if match else "(binary)"
