"""How a recorded baseline writes a response: decoded, readable, redacted; and how it reads it back.

An HTTP response becomes::

    {"status": "HTTP/1.1 200 OK",
     "headers": ["Content-Type: application/json", "Date: …", "Set-Cookie: sid=[redacted]; Path=/"],
     "body": {"json": {"id": 2, "plan": "premium"}}}

- ``headers`` in wire order, one ``Name: value`` each. Headers the comparison ignores
  (``DiffConfig.ignore_headers``: Date, Server, Content-Length ...) keep their name and lose their
  value (``…``), so a re-record that changes only them changes no byte.
- ``body`` with its Content-Encoding (gzip, deflate) undone: ``json`` (the value, keys sorted)
  when the comparison reads it as JSON; ``text`` (its lines, line ends kept) when it reads it as
  text; else ``base64`` (76-character lines) with ``media_type`` and ``bytes``. ``encoded: true``
  marks a body kept as sent (a coding that could not be undone). An empty body has no ``body``.
- ``interim`` (1xx responses) and ``trailers`` only when there are some.
- Secrets are redacted as in reports (``Redaction``): values under secret names in JSON, the
  secret parts of text, secret headers' values (a Set-Cookie keeps its cookie's name and
  attributes, which the comparison reads; its value never is).

A raw message (a protocol without a codec) is ``{"body": ...}`` by the same body rules; a user
codec's message is stored as its normalised tree (``{"normalized": ...}``).

Reading a document back gives a message that normalises as the original does after the same
redaction and masking. What a recording redacted it cannot compare, so the candidate's responses
are compared through the same round trip (``round_trip``): a recorded baseline never compares
secret values or ignored headers' values.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from dataclasses import dataclass

from .compare import DiffConfig, HttpResponse, InterimResponse, RawMessage, Redaction
from .compare.exchange import Headers
from .compare.normalize import (
    MASKED,
    UNDONE_CODINGS,
    decode_text,
    header_value,
    media_type,
    normalize_body,
    normalize_response,
    undo_coding,
)

BASE64_LINE = 76


@dataclass(frozen=True, slots=True)
class RecordedTree:
    """A user codec's response as recorded: its normalised tree."""

    tree: dict

    def normalized(self) -> dict:
        return self.tree


class ResponseFormat:
    """Writes and reads responses as documents, for comparisons made with ``config``: its
    ``redaction`` says what is secret, its ``ignore_headers`` whose values are not kept."""

    def __init__(self, config: DiffConfig) -> None:
        self.config = config
        self.redaction = config.redaction
        self.masked_headers = config.ignore_headers

    def document(self, message: object) -> dict:
        """``message`` as a document (see the module comment)."""
        if isinstance(message, HttpResponse):
            doc: dict = {"status": f"{message.version} {message.status} {message.reason}".rstrip(),
                         "headers": self._headers(message.headers)}  # fmt: skip
            if message.interim:
                doc["interim"] = [{"status": f"{r.status} {r.reason}".rstrip(), "headers": self._headers(r.headers)}
                                  for r in message.interim]  # fmt: skip
            body = self._body(message.body, message.headers)
            if body:
                doc["body"] = body
            if message.trailers:
                doc["trailers"] = self._headers(message.trailers)
            return doc
        if isinstance(message, RawMessage):
            body = self._body(message.data, ())
            return {"body": body} if body else {}
        tree = normalize_response(message, self.config)
        return {"normalized": _sorted(self.redaction.scrub(json.loads(json.dumps(tree, default=str))))}

    def message(self, doc: dict) -> object:
        """The message a document stands for."""
        if "normalized" in doc:
            return RecordedTree(doc["normalized"])
        if "status" not in doc:
            return RawMessage(_body_bytes(doc.get("body"), ()))
        version, status, reason = (doc["status"].split(" ", 2) + ["", ""])[:3]
        headers = _parse_headers(doc.get("headers", ()))
        interim = tuple(
            InterimResponse(int(r["status"].split(" ", 1)[0]), r["status"].partition(" ")[2],
                            _parse_headers(r.get("headers", ())))
            for r in doc.get("interim", ())
        )  # fmt: skip
        return HttpResponse(version, int(status), reason, headers, _body_bytes(doc.get("body"), headers),
                            _parse_headers(doc.get("trailers", ())), interim)  # fmt: skip

    def round_trip(self, message: object | None) -> object | None:
        """``message`` as a recording would give it back: what a recorded baseline compares."""
        if message is None:
            return None
        return self.message(json.loads(json.dumps(self.document(message), ensure_ascii=False)))

    def _headers(self, headers: Headers) -> list[str]:
        out = []
        for name, value in headers:
            lower = name.lower()
            if lower in self.masked_headers:
                value = MASKED
            elif lower == "set-cookie":
                value = _cookie(value, self.redaction)
            elif self.redaction.secret_name(name):
                value = "[redacted]"
            else:
                value = self.redaction.scrub_text(value)
            out.append(f"{name}: {value}")
        return out

    def _body(self, body: bytes, headers: Headers) -> dict:
        if not body:
            return {}
        content_type = header_value(headers, "content-type")
        decoded = _undo_codings(body, _codings(headers))
        if decoded is None:
            return {**_binary(body, content_type), "encoded": True}
        text = decode_text(decoded, media_type(content_type)[1])
        if text is not None:  # stored as the comparison reads it: lines of text, or a JSON value
            normal = normalize_body(decoded, content_type)
            if isinstance(normal, list) and normal == text.splitlines():
                return {"text": self.redaction.scrub_text(text).splitlines(keepends=True)}
            value = _json(text)
            if value is not _NOT_JSON and value == normal:
                return {"json": _sorted(self.redaction.scrub(value))}
        return _binary(decoded, content_type)


_NOT_JSON = object()


def _json(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _sorted(value: object) -> object:
    """``value`` with every object's keys sorted: a stable order to review, whatever the SUT's."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _binary(body: bytes, content_type: str | None) -> dict:
    text = base64.b64encode(body).decode()
    lines = [text[i : i + BASE64_LINE] for i in range(0, len(text), BASE64_LINE)]
    return {"base64": lines, "bytes": len(body), "media_type": media_type(content_type)[0] or None}


def _cookie(value: str, redaction: Redaction) -> str:
    """A Set-Cookie value with the cookie's value redacted, its name and attributes kept."""
    first, sep, attributes = value.partition(";")
    name = first.split("=", 1)[0].strip()
    return f"{name}=[redacted]{sep}{redaction.scrub_text(attributes) if sep else ''}"


def _codings(headers: Headers) -> list[str]:
    return [c.strip().lower() for c in (header_value(headers, "content-encoding") or "").split(",") if c.strip()]


def _undo_codings(body: bytes, codings: list[str]) -> bytes | None:
    """``body`` with its content codings undone, or None when one cannot be."""
    if any(c not in UNDONE_CODINGS for c in codings):
        return None
    try:
        for coding in reversed(codings):
            body = undo_coding(body, coding)
    except (OSError, EOFError, zlib.error):
        return None
    return body


def _apply_codings(body: bytes, codings: list[str]) -> bytes:
    for coding in codings:
        if coding in ("gzip", "x-gzip"):
            body = gzip.compress(body, mtime=0)
        elif coding == "deflate":
            body = zlib.compress(body)
    return body


def _body_bytes(doc: dict | None, headers: Headers) -> bytes:
    if not doc:
        return b""
    if "base64" in doc:
        raw = base64.b64decode("".join(doc["base64"]))
        return raw if doc.get("encoded") else _apply_codings(raw, _codings(headers))
    charset = media_type(header_value(headers, "content-type"))[1]
    if "json" in doc:
        text = json.dumps(doc["json"], ensure_ascii=True)
    else:
        text = "".join(doc["text"])
    try:
        data = text.encode(charset)
    except (LookupError, UnicodeEncodeError):
        data = text.encode()
    return _apply_codings(data, _codings(headers))


def _parse_headers(lines) -> Headers:
    out = []
    for line in lines:
        name, _, value = line.partition(":")
        out.append((name, value.removeprefix(" ")))
    return tuple(out)
