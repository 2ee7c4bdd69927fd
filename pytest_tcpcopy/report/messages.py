"""Requests and responses as report values: redacted, bounded, JSON-able, never bytes.

Traffic is untrusted and may carry secrets, so everything passes through a ``Redaction`` here,
before any report sees it: headers named like a secret print as ``[redacted]``, JSON bodies lose
their secret keys' values, text its secret parts (``password=...``, ``<token>...</token>``, a
Redis ``AUTH``; see ``compare.redact``). Bodies are shown as a reader needs them: JSON
pretty-printed, text as is, anything else as size and SHA-256. Sizes are bounded: a body's text is
cut at ``MAX_BODY_CHARS`` with a note; a body too large to parse and redact safely is withheld;
Content-Encoding is undone with a bounded output, so a compression bomb costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib

from ..compare import REDACTED, HttpRequest, HttpResponse, RawMessage, Redaction
from ..compare.normalize import decode_text, header_value, media_type

MAX_BODY_CHARS = 64 * 1024  # characters of body text shown
MAX_PARSE_BYTES = 8 * 1024 * 1024  # bodies (decoded) larger than this are not parsed
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TEXT_TYPES = ("text/", "application/xml", "application/javascript", "application/x-www-form-urlencoded")
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def message_model(message: object | None, redaction: Redaction) -> dict:
    """One request or response: kind, start line, headers, body (see ``body_model``)."""
    if message is None:
        return {"kind": "none", "start_line": None, "interim": [], "headers": [], "body": None, "trailers": []}
    if isinstance(message, HttpRequest):
        start = f"{message.method} {redaction.scrub(message.target)} {message.version}"
        return _http(start, [], message.headers, message.body, message.trailers, redaction)
    if isinstance(message, HttpResponse):
        start = f"{message.version} {message.status} {message.reason}".rstrip()
        interim = [f"{message.version} {r.status} {r.reason}".rstrip() for r in message.interim]
        return _http(start, interim, message.headers, message.body, message.trailers, redaction)
    if isinstance(message, RawMessage):
        body = body_model(message.data, None, None, redaction)
        return {"kind": "raw", "start_line": None, "interim": [], "headers": [], "body": body, "trailers": []}
    return {
        "kind": type(message).__name__,
        "start_line": None,
        "interim": [],
        "headers": [],
        "body": _structured_body(message, redaction),
        "trailers": [],
    }


def _http(start: str, interim: list, headers, body: bytes, trailers, redaction: Redaction) -> dict:
    return {
        "kind": "http",
        "start_line": start,
        "interim": interim,
        "headers": headers_model(headers, redaction),
        "body": body_model(
            body, header_value(headers, "content-type"), header_value(headers, "content-encoding"), redaction
        ),
        "trailers": headers_model(trailers, redaction),
    }


def headers_model(headers, redaction: Redaction) -> list[list[str]]:
    """``[name, value]`` pairs in wire order; secret values replaced, patterns scrubbed."""
    out = []
    for name, value in headers:
        lower = name.lower()
        if redaction.secret_name(lower) or redaction.secret_value(("headers", lower), value):
            out.append([name, REDACTED])
        else:
            out.append([name, redaction.scrub(value)])
    return out


def body_model(body: bytes, content_type: str | None, encoding: str | None, redaction: Redaction) -> dict:
    """``{"kind": json|text|binary|empty|withheld, "size", "text", "sha256", "truncated", "note"}``.

    ``size`` counts the decoded body's bytes; ``sha256`` is given for binary and withheld bodies.
    """
    decoded, note = _decode(body, encoding)
    if decoded is None:
        return _opaque("binary", body, note)
    if not decoded:
        return {"kind": "empty", "size": 0, "text": None, "sha256": None, "truncated": False, "note": note}
    media, charset = media_type(content_type)
    is_json = media == "application/json" or media.endswith("+json")
    if len(decoded) > MAX_PARSE_BYTES:
        return _large(decoded, media, charset, is_json, note, redaction)
    if is_json or decoded.lstrip()[:1] in (b"{", b"["):
        pretty = _pretty_json(decoded, charset, redaction)
        if pretty is not None:
            return _shown("json", decoded, pretty, note)
    text = decode_text(decoded, charset)
    is_text = media.startswith(_TEXT_TYPES) or media.endswith("+xml") or is_json
    if text is not None and (is_text or not _CONTROL.search(text)):
        return _shown("text", decoded, redaction.scrub(text), note)
    return _opaque("binary", decoded, note)


def _large(body: bytes, media: str, charset: str, is_json: bool, note: str | None, redaction: Redaction) -> dict:
    """A body over ``MAX_PARSE_BYTES``: JSON is withheld (its secret keys cannot be found without
    parsing it), text shows its scrubbed head, anything else its digest."""
    if is_json or body.lstrip()[:1] in (b"{", b"["):
        return _opaque("withheld", body, _join(note, f"over {MAX_PARSE_BYTES} bytes: too large to redact, not shown"))
    head = body[: MAX_BODY_CHARS * 4]
    text = decode_text(head, charset, errors="replace") or head.decode("utf-8", "replace")
    if not (media.startswith(_TEXT_TYPES) or media.endswith("+xml")) and _CONTROL.search(text):
        return _opaque("binary", body, note)
    note = _join(note, f"truncated: first {MAX_BODY_CHARS} characters of a body over {MAX_PARSE_BYTES} bytes shown")
    text = redaction.scrub(text[:MAX_BODY_CHARS])
    return {"kind": "text", "size": len(body), "text": text, "sha256": None, "truncated": True, "note": note}


def _structured_body(message: object, redaction: Redaction) -> dict:
    """The body of a user codec's message: its ``normalized()`` tree, redacted, as JSON text."""
    normalized = getattr(message, "normalized", None)
    if normalized is None:
        return {"kind": "withheld", "size": 0, "text": None, "sha256": None, "truncated": False,
                "note": f"a {type(message).__name__} cannot be shown"}  # fmt: skip
    try:
        text = json.dumps(redaction.scrub(normalized()), indent=2, ensure_ascii=False, default=str)
    except (RecursionError, ValueError):
        return {"kind": "withheld", "size": 0, "text": None, "sha256": None, "truncated": False,
                "note": "too deeply nested to redact, not shown"}  # fmt: skip
    return _shown("json", text.encode(), text, None)


def _pretty_json(body: bytes, charset: str, redaction: Redaction) -> str | None:
    text = decode_text(body, charset)
    if text is None:
        return None
    try:
        return json.dumps(redaction.scrub(json.loads(text)), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return None


def _shown(kind: str, body: bytes, text: str, note: str | None) -> dict:
    truncated = len(text) > MAX_BODY_CHARS
    if truncated:
        note = _join(note, f"truncated: first {MAX_BODY_CHARS} of {len(text)} characters shown")
        text = text[:MAX_BODY_CHARS]
    return {"kind": kind, "size": len(body), "text": text, "sha256": None, "truncated": truncated, "note": note}


def _opaque(kind: str, body: bytes, note: str | None) -> dict:
    digest = hashlib.sha256(body).hexdigest()
    return {"kind": kind, "size": len(body), "text": None, "sha256": digest, "truncated": False, "note": note}


def _decode(body: bytes, encoding: str | None) -> tuple[bytes | None, str | None]:
    """The body with gzip/deflate undone (bounded), and a note; None when it cannot be undone."""
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings or not body:
        return body, None
    for coding in reversed(codings):
        if coding not in _WBITS:
            return None, f"{coding}-encoded, not decoded"
        try:
            body = _inflate(body, _WBITS[coding])
        except zlib.error as exc:
            if coding != "deflate":
                return None, f"undecodable {coding} body ({exc})"
            try:
                body = _inflate(body, -zlib.MAX_WBITS)  # raw deflate, as some servers send it
            except zlib.error as exc:
                return None, f"undecodable {coding} body ({exc})"
    note = f"{', '.join(codings)}-decoded"
    if len(body) > MAX_PARSE_BYTES:
        note += f", decoding stopped after {MAX_PARSE_BYTES} bytes"
    return body, note


def _inflate(data: bytes, wbits: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    return inflater.decompress(data, MAX_PARSE_BYTES + 1)


def _join(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second
