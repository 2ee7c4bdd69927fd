"""Values that look volatile: UUIDs, timestamps and dates, hex digests, random ids and tokens.

Two uses: endpoint templates put a placeholder for such a path segment or query value
(``/api/orders/{uuid}``), and a changed field whose old and new values both look volatile in the
same way gets a suggested ignore path (``IgnoreSuggestion``), the way a user would silence it.

Kinds, in the order they are tried on a string: ``uuid``; ``timestamp`` (ISO 8601 date and time,
HTTP date); ``date`` (``2024-01-31``, ``2024/01/31``); ``hash`` (16 or more hex digits in one
case, with a letter); ``token`` (16 or more of ``A-Za-z0-9_-`` with at least 3 letters and 3
digits: request ids, session-like ids). A number is a ``timestamp`` when it reads as Unix time in
seconds or milliseconds between 2001 and 2100.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from .diff import Change, ChangeKind

_UUID = re.compile(r"\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?")
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_HTTP_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2}[ -](?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[ -]\d{2,4} "
    r"\d{2}:\d{2}:\d{2} GMT"
)
_DATE = re.compile(r"\d{4}([-/])\d{2}\1\d{2}")
_HEX = re.compile(r"[0-9a-f]{16,}|[0-9A-F]{16,}")
_TOKEN = re.compile(r"[A-Za-z0-9_\-]{16,}")
_SECONDS = (978_307_200, 4_102_444_800)  # 2001-01-01 .. 2100-01-01


class VolatileKind(enum.Enum):
    UUID = "uuid"
    TIMESTAMP = "timestamp"
    DATE = "date"
    HASH = "hash"
    TOKEN = "token"

    @property
    def plural(self) -> str:
        return {"uuid": "UUIDs", "hash": "hex digests", "token": "random ids"}.get(self.value, self.value + "s")


def volatile_kind(value: object) -> VolatileKind | None:
    """The kind of volatile value ``value`` looks like, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > _SECONDS[1] else value
        return VolatileKind.TIMESTAMP if _SECONDS[0] <= seconds < _SECONDS[1] else None
    if not isinstance(value, str) or len(value) > 200:
        return None
    if _UUID.fullmatch(value):
        return VolatileKind.UUID
    if _ISO_TIME.fullmatch(value) or _HTTP_DATE.fullmatch(value):
        return VolatileKind.TIMESTAMP
    if _DATE.fullmatch(value):
        return VolatileKind.DATE
    if _HEX.fullmatch(value) and not value.isdigit():
        return VolatileKind.HASH
    if _TOKEN.fullmatch(value) and _mixed(value):
        return VolatileKind.TOKEN
    return None


def _mixed(value: str) -> bool:
    digits = sum(c.isdigit() for c in value)
    letters = sum(c.isalpha() for c in value)
    return digits >= 3 and letters >= 3


@dataclass(frozen=True, slots=True)
class IgnoreSuggestion:
    """An ignore path (dotted, list indices as ``[*]``) that would silence a volatile field."""

    path: str
    kind: VolatileKind

    def render(self) -> str:
        return f"values look like {self.kind.plural}: ignore path {self.path}"

    def to_json(self) -> dict:
        return {"path": self.path, "kind": self.kind.value}


def suggest_ignore(change: Change) -> IgnoreSuggestion | None:
    """The ignore path to suggest for ``change``: a changed value of a named field (a header, a
    JSON key; not a text line) whose old and new values look volatile of one kind."""
    if change.kind is not ChangeKind.CHANGED or change.redacted or len(change.path) < 2:
        return None
    if change.path[0] not in ("body", "headers", "trailers") or not any(isinstance(p, str) for p in change.path[1:]):
        return None
    old, new = volatile_kind(change.old), volatile_kind(change.new)
    if old is None or old is not new:
        return None
    return IgnoreSuggestion(change.template, old)
