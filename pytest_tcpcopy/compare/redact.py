"""Secrets never leave in a report: which values are secret, and how they are printed.

The diff compares real values; only what is rendered or serialised goes through a ``Redaction``.
A value is secret when it sits under a secret header (Authorization, Cookie, ...), under a JSON
key named like a secret (password, token, ...), or when a secret pattern matches it or its
``"key": value`` fragment. A secret change prints as "value differs (redacted)"; secret parts of
other values print as ``[redacted]``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..errors import UsageError

REDACTED = "[redacted]"

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
    }
)
SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "client_secret",
        "private_key",
    }
)
# key=value pairs as in form bodies, query strings and log-like text.
SECRET_PATTERNS = (
    r"(?i)\b(?:password|passwd|secret|token|access_token|refresh_token|api_?key|client_secret)=[^&\s;]*",
)


@dataclass(frozen=True, slots=True)
class Redaction:
    """What counts as secret: header names, JSON keys (both case-insensitive), regexes on text."""

    headers: frozenset[str] = SECRET_HEADERS
    keys: frozenset[str] = SECRET_KEYS
    patterns: tuple[str, ...] = SECRET_PATTERNS

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", frozenset(h.lower() for h in self.headers))
        object.__setattr__(self, "keys", frozenset(k.lower() for k in self.keys))
        object.__setattr__(self, "patterns", tuple(self.patterns))
        for pattern in self.patterns:
            _compile(pattern, "redaction pattern")

    def secret_path(self, path: tuple) -> bool:
        """True when the value at ``path`` of a normalised message is secret as a whole."""
        if len(path) >= 2 and path[0] in ("headers", "trailers") and str(path[1]) in self.headers:
            return True
        return any(isinstance(p, str) and p.lower() in self.keys for p in path[1:])

    def secret_value(self, path: tuple, value: object) -> bool:
        """True when a pattern matches a scalar ``value`` as a JSON ``"key": value`` fragment."""
        return bool(path) and isinstance(path[-1], str) and self._secret_entry(path[-1], value)

    def scrub(self, value: object) -> object:
        """A copy of a JSON-able ``value`` with its secret entries and pattern matches replaced."""
        if isinstance(value, str):
            for pattern in self.patterns:
                value = _compile(pattern).sub(REDACTED, value)
            return value
        if isinstance(value, dict):
            return {
                k: REDACTED if self._secret_key(k) or self._secret_entry(k, v) else self.scrub(v)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.scrub(v) for v in value]
        return value

    def _secret_key(self, key: object) -> bool:
        name = str(key).lower()
        return name in self.keys or name in self.headers

    def _secret_entry(self, key: object, value: object) -> bool:
        if not self.patterns or isinstance(value, (dict, list, tuple)):
            return False
        fragment = json.dumps({str(key): value}, ensure_ascii=False, default=str)[1:-1]
        return any(_compile(p).search(fragment) for p in self.patterns)


def _compile(pattern: str, what: str = "pattern") -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"invalid {what} {pattern!r}: {exc}") from None
