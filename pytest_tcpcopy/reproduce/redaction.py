"""What of a captured request may be written into a reproducer's text files, and whether a
session's raw bytes hold a secret the redaction recognises.

A reproducer's text files (the curl command, the request body and bytes, the README) never hold a
secret the ``Redaction`` recognises: the request is redacted here first.

- HTTP headers named like a secret, or whose value a secret pattern matches, are *placeholders*:
  the command sends the value of an environment variable (``TCPCOPY_AUTHORIZATION``) when set,
  else ``[redacted]``. Their values are never written.
- The target's secret query values and the body's secret parts are replaced by ``[redacted]``
  (``Redaction.scrub_text``; a JSON body through ``Redaction.scrub``, re-serialised only when
  something was replaced; a ``multipart/form-data`` part named like a secret loses its content).
- A body with a Content-Encoding other than identity cannot be searched: it is withheld.
- Raw bytes (other protocols) go through ``scrub_text`` as text (UTF-8, any byte kept), which
  knows the AUTH, LOGIN and PASS commands of text protocols and fixes RESP lengths.

Bodies are decoded as UTF-8 with ``surrogateescape``, so bytes that are not UTF-8 survive the
round trip unchanged and never count as separators.

``scan_session`` tells whether a session's bytes hold a recognisable secret anywhere (both
directions, every message, bodies with gzip or deflate undone, bounded), or cannot be checked: a
reproducer writes the session's capture file by default only when neither.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass

from ..compare import REDACTED, Exchange, HttpRequest, HttpResponse, RawMessage, Redaction
from ..compare.normalize import header_value, media_type
from ..flows import CapturedSession

MAX_INFLATED = 16 << 20  # bytes a compressed body may inflate to while it is searched
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_PART_NAME = re.compile(rb"""(?i)content-disposition:[^\r\n]*?\bname="?([^";\r\n]*)""")
_BOUNDARY = re.compile(r"""(?i);\s*boundary="?([^";]+)"?""")


@dataclass(frozen=True, slots=True)
class RedactedHeader:
    """A request header as written: ``secret`` ones keep their name only."""

    name: str
    value: str | None  # None when secret


@dataclass(frozen=True, slots=True)
class RedactedRequest:
    """An HTTP request as a reproducer may write it; ``body`` None when withheld; ``notes`` say
    what was redacted or withheld (never a value)."""

    method: str
    target: str
    version: str
    headers: tuple[RedactedHeader, ...]
    body: bytes | None
    notes: tuple[str, ...]


def redact_request(request: HttpRequest, redaction: Redaction) -> RedactedRequest:
    """``request`` with its secrets taken out (see the module comment)."""
    notes = []
    headers = []
    for name, value in request.headers:
        secret = redaction.secret_name(name) or redaction.scrub_text(value) != value
        headers.append(RedactedHeader(name, None if secret else value))
    hidden = sorted({h.name for h in headers if h.value is None}, key=str.lower)
    if hidden:
        notes.append(f"header values left out: {', '.join(hidden)}")
    target = redaction.scrub_text(request.target)
    if target != request.target:
        notes.append("secret values of the request target replaced by [redacted]")
    body, note = redact_body(request.body, request.headers, redaction)
    if note:
        notes.append(note)
    if request.trailers:
        notes.append(f"{len(request.trailers)} chunked trailer field(s) not sent")
    return RedactedRequest(request.method, target, request.version, tuple(headers), body, tuple(notes))


def redact_body(
    body: bytes, headers: tuple[tuple[str, str], ...], redaction: Redaction
) -> tuple[bytes | None, str | None]:
    """The body with its secret parts replaced (None: withheld), and a note on what was done."""
    if not body:
        return body, None
    encoding = _codings(header_value(headers, "content-encoding"))
    if encoding:
        return (
            None,
            f"{', '.join(encoding)}-encoded body ({len(body)} bytes) withheld: it cannot be searched for secrets",
        )
    content_type = header_value(headers, "content-type")
    media, _ = media_type(content_type)
    redacted = None
    if media == "multipart/form-data":
        redacted = _multipart(body, content_type or "", redaction)
    if redacted is None:
        redacted = _json_body(body, redaction)
    if redacted is None:
        redacted = redact_bytes(body, redaction)
    if redacted == body:
        return body, None
    return redacted, "secret parts of the body replaced by [redacted]"


def redact_bytes(data: bytes, redaction: Redaction) -> bytes:
    """``data`` read as text (UTF-8, any byte kept) with its secret parts replaced."""
    text = data.decode("utf-8", "surrogateescape")
    scrubbed = redaction.scrub_text(text)
    return data if scrubbed == text else scrubbed.encode("utf-8", "surrogateescape")


def _json_body(body: bytes, redaction: Redaction) -> bytes | None:
    if body.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        value = json.loads(body)
        scrubbed = redaction.scrub(value)
    except (ValueError, RecursionError):
        return None
    return body if scrubbed == value else json.dumps(scrubbed, ensure_ascii=False).encode()


def _multipart(body: bytes, content_type: str, redaction: Redaction) -> bytes | None:
    """A form-data body with every part named like a secret emptied to ``[redacted]`` and the
    others scrubbed as text; None when it has no boundary to split by."""
    match = _BOUNDARY.search(content_type)
    if match is None:
        return None
    delimiter = b"--" + match.group(1).encode("latin-1")
    parts = body.split(delimiter)
    out = [redact_bytes(parts[0], redaction)]
    for part in parts[1:]:
        head, sep, content = part.partition(b"\r\n\r\n")
        name = _PART_NAME.search(head)
        if sep and name and redaction.secret_name(name.group(1).decode("latin-1")):
            ending = b"\r\n" if content.endswith(b"\r\n") else b""
            content = REDACTED.encode() + ending
        else:
            content = redact_bytes(content, redaction)
        out.append(redact_bytes(head, redaction) + sep + content)
    return delimiter.join(out)


@dataclass(frozen=True, slots=True)
class SecretScan:
    """What ``scan_session`` found: ``secret`` when a recognised secret is in the session's
    bytes, ``unchecked`` why some of them could not be searched (else None)."""

    secret: bool
    unchecked: str | None

    @property
    def clean(self) -> bool:
        return not self.secret and self.unchecked is None


def scan_session(session: CapturedSession, exchanges: list[Exchange], redaction: Redaction) -> SecretScan:
    """Search both directions of ``session`` and each message of ``exchanges`` for a secret."""
    streams = (session.client_stream.data(), session.server_stream.data())
    if any(redact_bytes(data, redaction) != data for data in streams):
        return SecretScan(True, None)
    unchecked = None
    for exchange in exchanges:
        for message in (exchange.request, exchange.response):
            secret, reason = _message_secret(message, redaction)
            if secret:
                return SecretScan(True, None)
            unchecked = unchecked or reason
    return SecretScan(False, unchecked)


def _message_secret(message: object, redaction: Redaction) -> tuple[bool, str | None]:
    """Whether a parsed message holds a secret the byte scan may miss (a JSON value under a
    secret key, a compressed body), and why it could not be searched."""
    if isinstance(message, RawMessage) or message is None:
        return False, None
    if not isinstance(message, (HttpRequest, HttpResponse)):
        return False, f"a {type(message).__name__} message cannot be searched"
    if any(redaction.secret_name(name) for name, _ in message.headers + message.trailers):
        return True, None
    body, reason = _inflated(message.body, header_value(message.headers, "content-encoding"))
    if body is None:
        return False, reason
    if redact_bytes(body, redaction) != body or _json_body(body, redaction) not in (None, body):
        return True, None
    return False, reason


def _inflated(body: bytes, encoding: str | None) -> tuple[bytes | None, str | None]:
    codings = _codings(encoding)
    for coding in reversed(codings):
        if coding not in _WBITS:
            return None, f"a {coding}-encoded body cannot be searched"
        inflater = zlib.decompressobj(_WBITS[coding])
        try:
            body = inflater.decompress(body, MAX_INFLATED + 1)
        except zlib.error:
            return None, f"an undecodable {coding} body cannot be searched"
        if len(body) > MAX_INFLATED:
            return None, f"a {coding}-encoded body inflates past {MAX_INFLATED >> 20} MiB"
    return body, None


def _codings(encoding: str | None) -> list[str]:
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    return [c for c in codings if c != "identity"]
