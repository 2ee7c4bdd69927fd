"""Secrets never leave in a report: which values are secret, and how they are printed.

The diff compares real values; only what is rendered or serialised goes through a ``Redaction``.

A *name* (header, JSON key, form or query key, XML element, HTML input) is secret when, lower-cased
and without separators (``_``, ``-``, ``.``, blanks), it contains one of the secret names
(``SECRET_NAMES``): ``user_password``, ``userPassword``, ``new_password``, ``pwd``,
``auth_token``, ``X-CSRF-Token``, ``Set-Cookie``, ``apiKey`` all are. ``auth`` does not match where
a name reads ``author`` (``author``, ``authority``), but does in ``authorization``.

Secret values are found:

- in structured values (JSON, normalised trees): the value under a secret key, as a whole;
- in text (query strings, form bodies, text bodies, header values, raw messages): the value of
  ``name=value`` pairs, ``"name": value`` JSON fragments, ``<name>value</name>`` XML elements,
  ``Name: value`` header-like lines, HTML inputs and meta tags named like a secret (their
  ``value``/``content``), and the credentials of text protocols' commands: ``AUTH`` (Redis, inline
  and as RESP; SMTP and IMAP with an initial response), IMAP ``LOGIN`` and ``AUTHENTICATE``, FTP
  and POP3 ``PASS``;
- by pattern (``patterns``, regexes replaced whole): by default bearer tokens, JWTs and PEM
  private keys wherever they appear.

The secret part prints as ``[redacted]``; a change of a secret value prints as "value differs
(redacted)". ``with_names`` and ``with_patterns`` add to what is secret.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import UsageError

REDACTED = "[redacted]"

SECRET_NAMES = (
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "apikey",
    "auth",
    "session",
    "csrf",
    "xsrf",
    "cookie",
    "credential",
    "privatekey",
)
SECRET_PATTERNS = (
    r"\bBearer\s+[A-Za-z0-9._~+/\-]{12,}=*",
    r"\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
)

_SEPARATORS = re.compile(r"[\s_.\-]+")
_MECHANISMS = (
    r"(?:PLAIN|LOGIN|XOAUTH2|OAUTHBEARER|CRAM-MD5|DIGEST-MD5|EXTERNAL|NTLM|GSSAPI|SCRAM-SHA-\d+(?:-PLUS)?)"
)
# name=value (query strings, form bodies, attributes, log lines)
_PAIR = re.compile(
    r"(?<![A-Za-z0-9_.\-\[\]%])(?P<key>[A-Za-z0-9_.\-\[\]%]+)=(?P<value>\"[^\"]*\"|'[^']*'|[^&\s;,\"'<>]+)"
)
# "name": value inside text that is not parsed as JSON
_JSON_FIELD = re.compile(
    r'"(?P<key>(?:[^"\\\n]|\\.){1,200})"(?P<sep>\s*:\s*)(?P<value>"(?:[^"\\\n]|\\.)*"|-?\d[\d.eE+\-]*|true|false)'
)
# <name attrs>value</name>
_ELEMENT = re.compile(r"<(?P<tag>[A-Za-z_][\w.:\-]*)(?P<attrs>\s[^<>]*)?>(?P<value>[^<]+)</(?P=tag)\s*>")
# <input name="csrf_token" value="..."> and <meta name="csrf-token" content="...">
_TAG = re.compile(r"<(?:input|meta)\b[^<>]*>", re.IGNORECASE)
_NAMING_ATTR = re.compile(r"""\b(?:name|id|property|type)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_VALUE_ATTR = re.compile(r"""\b(?P<attr>value|content)\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
# Name: value lines (raw text protocols, headers inside text, YAML-like text)
_HEADER_LINE = re.compile(r"(?m)^(?P<key>[!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?P<sep>:[ \t]*)(?P<value>[^\r\n]*[^\s])")
# AUTH / AUTHENTICATE / LOGIN / PASS command lines of text protocols
_COMMAND = re.compile(
    r"(?m)^(?P<head>(?:AUTH|auth|Auth|[A-Za-z0-9]+[ \t]+(?:AUTHENTICATE|LOGIN|AUTH))"
    rf"(?:[ \t]+{_MECHANISMS})?|PASS)"
    rf"(?P<sep>[ \t]+)(?![ \t]*{_MECHANISMS}[ \t]*\r?$)(?P<value>[^\r\n]*[^\s])"
)
# a RESP array's AUTH and its one or two arguments (Redis AUTH [user] password, HELLO ... AUTH)
_RESP_AUTH = re.compile(r"(?P<head>\$4\r\n(?i:auth)\r\n)(?P<args>(?:\$\d+\r\n[^\r\n]*\r\n){1,2})")
_RESP_ARG = re.compile(r"\$\d+\r\n[^\r\n]*\r\n")


@dataclass(frozen=True, slots=True)
class Redaction:
    """What counts as secret: ``names`` (matched in key names, see the module comment) and
    ``patterns`` (regexes whose matches in any text are secret)."""

    names: tuple[str, ...] = SECRET_NAMES
    patterns: tuple[str, ...] = SECRET_PATTERNS
    _name: re.Pattern = field(init=False, repr=False, compare=False)
    _patterns: tuple[re.Pattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.names, str) or isinstance(self.patterns, str):
            raise UsageError("Redaction names and patterns take a list of strings")
        names = tuple(_squash(n) for n in self.names)
        if not all(names):
            raise UsageError(f"Redaction: an empty secret name in {list(self.names)!r}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "patterns", tuple(self.patterns))
        alternatives = ["auth(?!or(?!iz))" if n == "auth" else re.escape(n) for n in names]
        object.__setattr__(self, "_name", re.compile("|".join(alternatives)) if names else re.compile(r"(?!)"))
        object.__setattr__(self, "_patterns", tuple(_compile(p, "redaction pattern") for p in self.patterns))

    def with_names(self, *names: str) -> Redaction:
        """This redaction with more secret names (matched as substrings of key names)."""
        return Redaction(self.names + tuple(names), self.patterns)

    def with_patterns(self, *patterns: str) -> Redaction:
        """This redaction with more regexes whose matches are secret wherever they appear."""
        return Redaction(self.names, self.patterns + tuple(patterns))

    def secret_name(self, name: object) -> bool:
        """True when a key, header or field ``name`` is named like a secret."""
        return self._name.search(_squash(str(name))) is not None

    def secret_path(self, path: tuple) -> bool:
        """True when the value at ``path`` of a normalised message is secret as a whole: some key
        on the path below its section (``headers``, ``body``...) is named like a secret."""
        return any(isinstance(p, str) and self.secret_name(p) for p in path[1:])

    def secret_value(self, path: tuple, value: object) -> bool:
        """True when a pattern matches a scalar ``value`` as a JSON ``"key": value`` fragment."""
        return bool(path) and isinstance(path[-1], str) and self._secret_entry(path[-1], value)

    def scrub(self, value: object) -> object:
        """A copy of a JSON-able ``value`` with its secret entries and secret text replaced."""
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {
                k: REDACTED if self.secret_name(k) or self._secret_entry(k, v) else self.scrub(v)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.scrub(v) for v in value]
        return value

    def scrub_text(self, text: str) -> str:
        """``text`` with every secret part found in it replaced by ``[redacted]``."""
        text = _RESP_AUTH.sub(_redact_resp_args, text)
        text = _COMMAND.sub(lambda m: f"{m['head']}{m['sep']}{REDACTED}", text)
        text = _TAG.sub(self._redact_tag, text)
        text = _ELEMENT.sub(self._redact_element, text)
        text = _JSON_FIELD.sub(self._redact_json_field, text)
        text = _HEADER_LINE.sub(self._redact_line, text)
        text = _PAIR.sub(self._redact_pair, text)
        for pattern in self._patterns:
            text = pattern.sub(REDACTED, text)
        return text

    def secret_lines(self, lines: Sequence[str]) -> frozenset[int]:
        """The indices of ``lines`` (a text split into lines) that hold part of a secret spanning
        several lines: the value of a secret XML element, a pattern's match (a PEM private key).
        A line alone cannot show it is secret, so a diff of lines asks this of the whole text."""
        text = "\n".join(lines)
        if "\n" not in text:
            return frozenset()
        spans = [m.span("value") for m in _ELEMENT.finditer(text) if "\n" in m["value"] and self._redacts_element(m)]
        spans += [m.span() for p in self._patterns for m in p.finditer(text) if "\n" in m[0]]
        starts = list(itertools.accumulate((len(line) + 1 for line in lines[:-1]), initial=0))
        hit: set[int] = set()
        for start, end in spans:
            hit.update(range(bisect.bisect_right(starts, start) - 1, bisect.bisect_right(starts, end - 1)))
        return frozenset(hit)

    def _secret_entry(self, key: object, value: object) -> bool:
        if not self._patterns or isinstance(value, (dict, list, tuple)):
            return False
        fragment = json.dumps({str(key): value}, ensure_ascii=False, default=str)[1:-1]
        return any(p.search(fragment) for p in self._patterns)

    def _redact_pair(self, m: re.Match) -> str:
        return f"{m['key']}={REDACTED}" if self.secret_name(m["key"]) else m[0]

    def _redact_json_field(self, m: re.Match) -> str:
        return f'"{m["key"]}"{m["sep"]}"{REDACTED}"' if self.secret_name(m["key"]) else m[0]

    def _redacts_element(self, m: re.Match) -> bool:
        return self.secret_name(m["tag"].rsplit(":", 1)[-1])

    def _redact_element(self, m: re.Match) -> str:
        if not self._redacts_element(m):
            return m[0]
        return f"<{m['tag']}{m['attrs'] or ''}>{REDACTED}</{m['tag']}>"

    def _redact_line(self, m: re.Match) -> str:
        return f"{m['key']}{m['sep']}{REDACTED}" if self.secret_name(m["key"]) else m[0]

    def _redact_tag(self, m: re.Match) -> str:
        named = [a or b or c for a, b, c in _NAMING_ATTR.findall(m[0])]
        if not any(self.secret_name(n) for n in named):
            return m[0]
        return _VALUE_ATTR.sub(lambda v: f'{v["attr"]}="{REDACTED}"', m[0])


def _redact_resp_args(m: re.Match) -> str:
    args = _RESP_ARG.findall(m["args"])
    return m["head"] + "".join(f"${len(REDACTED)}\r\n{REDACTED}\r\n" for _ in args)


def _squash(name: str) -> str:
    return _SEPARATORS.sub("", name.lower())


def _compile(pattern: str, what: str = "pattern") -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"invalid {what} {pattern!r}: {exc}") from None
