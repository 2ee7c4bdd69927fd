"""What a response diff compares and ignores: ``DiffConfig`` and its documented defaults.

Defaults, and why:

- ``VOLATILE_HEADERS`` are not compared. They change between any two responses of the same
  release (Date, Age, Expires, Last-Modified, request and trace ids, timings), restate the body
  (ETag, and Content-Length, which also changes with JSON formatting while the body is compared
  on its own), describe framing rather than content (Transfer-Encoding, Connection, Keep-Alive),
  or name the server build (Server).
- Headers the candidate adds are not reported (``ignore_added_headers``): a new header is additive
  and does not break a client. Removed headers and changed values are reported.
- The reason phrase is not compared (``compare_reason``): clients act on the status code.
- Set-Cookie values are not compared (``compare_cookie_values``), only cookie names and
  attributes; session ids differ on every response.
- JSON numbers compare by value (1 == 1.0) unless ``strict_number_types``; arrays in order unless
  ``ignore_order``; floats exactly unless ``float_tolerance``.

Paths name places in the normalised response (see ``normalize``): ``status``, ``version``,
``headers.<lower-case name>``, ``body`` (the JSON value, the list of text lines, or the binary
digest), e.g. ``body.user.email``, ``body.items[*].id``, ``headers.date``; deepdiff's own form
``root['body']['ts']`` is accepted too, and every rendering shows the dotted form. Besides paths,
``ignore_value_patterns`` ignores a changed value when both sides match one of its regexes whole.
``usage.IgnoreUsage`` tells which ignore paths matched nothing in a run.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from ..errors import UsageError
from .redact import Redaction

VOLATILE_HEADERS = frozenset(
    {
        "date",
        "age",
        "expires",
        "last-modified",
        "etag",
        "server",
        "x-request-id",
        "x-correlation-id",
        "x-trace-id",
        "traceparent",
        "tracestate",
        "x-runtime",
        "x-response-time",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
    }
)

_SEGMENT = re.compile(r"\.?(?:\[(\d+|\*)\]|\['([^']*)'\]|([^.\[\]]+))")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")


@dataclass(frozen=True, slots=True)
class DiffConfig:
    """How responses are compared; see the module comment for each default."""

    ignore_headers: frozenset[str] = VOLATILE_HEADERS
    ignore_added_headers: bool = True
    compare_reason: bool = False
    compare_cookie_values: bool = False
    ignore_paths: tuple[str, ...] = ()
    ignore_regex_paths: tuple[str, ...] = ()
    ignore_value_patterns: tuple[str, ...] = ()
    float_tolerance: float | None = None
    ignore_order: bool = False
    strict_number_types: bool = False
    redaction: Redaction = field(default_factory=Redaction)
    _excluded: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.ignore_paths, str) or isinstance(self.ignore_regex_paths, str):
            raise UsageError("DiffConfig ignore_paths/ignore_regex_paths take a list of paths")
        object.__setattr__(self, "ignore_headers", frozenset(h.lower() for h in self.ignore_headers))
        object.__setattr__(self, "ignore_paths", tuple(self.ignore_paths))
        object.__setattr__(self, "ignore_regex_paths", tuple(self.ignore_regex_paths))
        object.__setattr__(self, "ignore_value_patterns", tuple(self.ignore_value_patterns))
        for pattern in self.ignore_regex_paths + self.ignore_value_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise UsageError(f"DiffConfig: invalid regex {pattern!r}: {exc}") from None
        excluded = tuple(path_regex(p) for p in self.ignore_paths) + self.ignore_regex_paths
        object.__setattr__(self, "_excluded", excluded)
        if self.float_tolerance is not None and self.float_tolerance < 0:
            raise UsageError(f"DiffConfig: float_tolerance must be >= 0, not {self.float_tolerance}")

    def excluded_path_regexes(self) -> list[str]:
        """deepdiff ``exclude_regex_paths`` for every ignored path."""
        return list(self._excluded)


class Wildcard(enum.Enum):
    """A path segment matching any key (``*``) or any list index (``[*]``)."""

    KEY = "*"
    INDEX = "[*]"


Segment = str | int | Wildcard


def parse_path(path: str) -> tuple[Segment, ...]:
    """The segments of a dotted path (``body.items[*].id``, ``body['a b']``) or of deepdiff's
    form (``root['body']['items'][0]``); a UsageError names the character it cannot read."""
    text = path[4:] if path.startswith("root[") else path
    offset = len(path) - len(text)
    segments: list[Segment] = []
    pos = 0
    while pos < len(text):
        match = _SEGMENT.match(text, pos)
        if match is None or match.end() == pos:
            raise UsageError(f"DiffConfig: cannot read ignore path {path!r} at character {pos + offset}")
        index, quoted, key = match.groups()
        if index == "*":
            segments.append(Wildcard.INDEX)
        elif index is not None:
            segments.append(int(index))
        elif key == "*":
            segments.append(Wildcard.KEY)
        else:
            segments.append(quoted if quoted is not None else key)
        pos = match.end()
    if not segments:
        raise UsageError(f"DiffConfig: empty ignore path {path!r}")
    return tuple(segments)


def dotted(segments: tuple[Segment, ...]) -> str:
    """Segments as a dotted path: ``body.items[*].id``, ``headers.content-type``, ``body['a b']``."""
    out = []
    for part in segments:
        if isinstance(part, Wildcard):
            out.append(part.value if part is Wildcard.INDEX or not out else "." + part.value)
        elif isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.fullmatch(part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{part!r}]")
    return "".join(out)


def path_regex(path: str) -> str:
    """An anchored regex over deepdiff paths for a dotted or deepdiff-form path (``[*]`` and
    ``*`` are wildcards)."""
    parts = []
    for part in parse_path(path):
        if part is Wildcard.INDEX:
            parts.append(r"\[\d+\]")
        elif part is Wildcard.KEY:
            parts.append(r"\['[^']*'\]")
        elif isinstance(part, int):
            parts.append(rf"\[{part}\]")
        else:
            parts.append(r"\[" + re.escape(repr(part)) + r"\]")
    return "^root" + "".join(parts) + "$"
