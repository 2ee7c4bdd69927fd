"""A response as a plain, JSON-able tree: the thing the diff compares.

HTTP responses become ``{"version", "status", ["reason"], "headers", ["interim"], ["trailers"],
"body"}``. Header names are lower-cased; a header sent once maps to its value, a repeated one to
the list of its values in order; ignored (volatile) headers are left out. Bodies, after undoing a
gzip or deflate Content-Encoding:

- JSON (by Content-Type, or any body that parses as a JSON object or array) -> the parsed value;
- text (a text-like Content-Type, or UTF-8 without control characters) -> the list of its lines;
- anything else -> ``"<N bytes, sha256 0123456789abcdef>"``;
- empty -> ``""``.

Raw messages become ``{"body": ...}`` by the same body rules. When that body is text (a text
protocol the raw codec split, an HTTP-like protocol no codec claims), its header-like lines
(``Name: value``) are normalised as HTTP headers are: a volatile header's line
(``DiffConfig.ignore_headers``: Date, Expires, Last-Modified, request ids...) becomes
``date: …`` and a Set-Cookie line keeps its cookie's shape only (``set-cookie: sid=…; Path=/``),
names lower-cased; other lines stay as they are. Messages of user codecs provide
``normalized() -> dict`` themselves.

``same_normal_form`` tells, without parsing bodies, when two responses normalise to the same tree
byte for byte: the diff's fast path.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib

from ..errors import UsageError
from .config import DiffConfig
from .exchange import Headers, HttpResponse, RawMessage

_MAX_JSON_DEPTH = 100  # deeper documents are compared as text (bounded recursion in the diff)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TEXT_TYPES = ("text/", "application/xml", "application/javascript", "application/x-www-form-urlencoded")
_COOKIE_TIME_ATTRS = ("expires", "max-age")
_HEADER_LINE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(:[ \t]*)(.*)", re.DOTALL)
MASKED = "…"


def normalize_response(message: object, config: DiffConfig) -> dict:
    """The comparable tree of one response message; see the module comment."""
    if isinstance(message, HttpResponse):
        return _http(message, config)
    if isinstance(message, RawMessage):
        body = normalize_body(message.data, None)
        if isinstance(body, list):
            body = [_text_line(line, config) for line in body]
        return {"body": body}
    normalized = getattr(message, "normalized", None)
    if normalized is None:
        raise UsageError(
            f"cannot compare a {type(message).__name__}: a codec's message types "
            "must be RawMessage, HttpResponse, or provide normalized() -> dict"
        )
    return normalized()


def same_normal_form(a: object, b: object, config: DiffConfig) -> bool:
    """True when ``a`` and ``b`` certainly normalise to equal trees, found without parsing a
    body: equal raw messages, or HTTP responses alike in version, status (reason when compared),
    interim statuses, compared headers and trailers, content type and coding, and body bytes."""
    if isinstance(a, RawMessage) and isinstance(b, RawMessage):
        return a.data == b.data
    if not (isinstance(a, HttpResponse) and isinstance(b, HttpResponse)):
        return False
    return (
        a.body == b.body
        and a.status == b.status
        and a.version == b.version
        and (not config.compare_reason or a.reason == b.reason)
        and [r.status for r in a.interim] == [r.status for r in b.interim]
        and _header_form(a.headers, config) == _header_form(b.headers, config)
        and normalize_headers(a.trailers, config) == normalize_headers(b.trailers, config)
    )


# The compared form of header blocks already seen, by block: the codecs share one tuple per
# distinct block, and a capture and its replay repeat a few blocks.
_HEADER_FORMS: dict[Headers, tuple[DiffConfig, tuple]] = {}
_MAX_HEADER_FORMS = 4096


def _header_form(headers: Headers, config: DiffConfig) -> tuple:
    """What ``same_normal_form`` compares of a header block: content type, content coding and
    the normalised headers."""
    known = _HEADER_FORMS.get(headers)
    if known is not None and known[0] is config:
        return known[1]
    form = (header_value(headers, "content-type"), header_value(headers, "content-encoding"),
            normalize_headers(headers, config))  # fmt: skip
    if len(_HEADER_FORMS) >= _MAX_HEADER_FORMS:
        _HEADER_FORMS.clear()
    _HEADER_FORMS[headers] = (config, form)
    return form


def header_names(message: object) -> list[str]:
    """The header and trailer names of an HTTP response as sent; none for other messages."""
    if isinstance(message, HttpResponse):
        return [name for name, _ in message.headers] + [name for name, _ in message.trailers]
    return []


def _text_line(line: str, config: DiffConfig) -> str:
    """A text line; a header-like line of a volatile header masked, a Set-Cookie line shaped."""
    match = _HEADER_LINE.fullmatch(line)
    if match is None:
        return line
    name, _, value = match.groups()
    lower = name.lower()
    if lower in config.ignore_headers:
        return f"{lower}: {MASKED}"
    if lower == "set-cookie" and not config.compare_cookie_values:
        return f"{lower}: {_cookie_shape(value)}"
    return line


def _http(message: HttpResponse, config: DiffConfig) -> dict:
    tree: dict = {"version": message.version, "status": message.status}
    if config.compare_reason:
        tree["reason"] = message.reason
    tree["headers"] = normalize_headers(message.headers, config)
    if message.interim:
        tree["interim"] = [r.status for r in message.interim]
    if message.trailers:
        tree["trailers"] = normalize_headers(message.trailers, config)
    content_type = header_value(message.headers, "content-type")
    body, problem = _decode_content(message.body, header_value(message.headers, "content-encoding"))
    tree["body"] = problem or normalize_body(body, content_type)
    return tree


def header_value(headers: Headers, name: str) -> str | None:
    """The values of header ``name`` joined by ", ", or None when absent."""
    values = [v for n, v in headers if n.lower() == name]
    return ", ".join(values) if values else None


def normalize_headers(headers: Headers, config: DiffConfig) -> dict:
    out: dict[str, object] = {}
    for name, value in headers:
        name = name.lower()
        if name in config.ignore_headers:
            continue
        if name == "set-cookie" and not config.compare_cookie_values:
            value = _cookie_shape(value)
        if name in out:
            previous = out[name]
            out[name] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            out[name] = value
    return out


def _cookie_shape(value: str) -> str:
    """A Set-Cookie value without the cookie's value and expiry: ``sid=…; Path=/; HttpOnly``."""
    first, *attributes = [part.strip() for part in value.split(";")]
    shape = [first.split("=", 1)[0] + "=…"]
    for attribute in attributes:
        key = attribute.split("=", 1)[0]
        shape.append(f"{key}=…" if key.lower() in _COOKIE_TIME_ATTRS else attribute)
    return "; ".join(shape)


def _decode_content(body: bytes, encoding: str | None) -> tuple[bytes, str | None]:
    """The body with gzip/deflate undone, or the body and a note when it cannot be undone."""
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):
        if coding not in UNDONE_CODINGS:
            return body, f"<{coding}-encoded {_digest(body)}>"
        try:
            body = undo_coding(body, coding)
        except (OSError, EOFError, zlib.error) as exc:
            return body, f"<undecodable {coding} body ({exc}), {_digest(body)}>"
    return body, None


UNDONE_CODINGS = frozenset({"gzip", "x-gzip", "deflate", "identity"})  # content codings ``undo_coding`` undoes


def undo_coding(body: bytes, coding: str) -> bytes:
    """``body`` with one content coding of ``UNDONE_CODINGS`` undone (deflate with or without its
    zlib wrapper); OSError, EOFError or zlib.error when the bytes are not in that coding."""
    if coding in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    if coding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)
    return body


def normalize_body(body: bytes, content_type: str | None) -> object:
    """JSON value, list of text lines, or a size-and-digest string; see the module comment."""
    if not body:
        return ""
    media, charset = media_type(content_type)
    is_json = media == "application/json" or media.endswith("+json")
    if is_json or body.lstrip()[:1] in (b"{", b"["):
        value = _json(body, charset)
        if value is not None:
            return value[0]
    text = decode_text(body, charset)
    is_text = media.startswith(_TEXT_TYPES) or media.endswith("+xml") or is_json
    if text is not None and (is_text or not _CONTROL.search(text)):
        return text.splitlines()
    return _digest(body)


def media_type(content_type: str | None) -> tuple[str, str]:
    """The media type (lower case) and charset (default utf-8) of a Content-Type value."""
    if not content_type:
        return "", "utf-8"
    media, *params = content_type.split(";")
    charset = "utf-8"
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    return media.strip().lower(), charset


def _json(body: bytes, charset: str) -> tuple[object] | None:
    text = decode_text(body, charset)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if _depth(value) > _MAX_JSON_DEPTH:
        return None
    return (value,)


def decode_text(body: bytes, charset: str, errors: str = "strict") -> str | None:
    """``body`` as text in ``charset``, or None when it is not (or the charset is unknown)."""
    try:
        return body.decode(charset, errors)
    except (UnicodeDecodeError, LookupError):
        return None


def _depth(value: object) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        nested = []
        for item in level:
            if isinstance(item, dict):
                nested.extend(item.values())
            elif isinstance(item, list):
                nested.extend(item)
        level = nested
        if depth > _MAX_JSON_DEPTH:
            break
    return depth


def _digest(body: bytes) -> str:
    return f"<{len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()[:16]}>"
