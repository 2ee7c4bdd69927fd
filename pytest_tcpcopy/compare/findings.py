"""Findings: verdicts grouped the way a reader wants them, at any scale, in bounded memory.

A finding is one kind of difference on one kind of request: endpoint template (``endpoints``) x
path template (``body.items[*].id``, ``headers.content-type``, ``status``, ``exchange``) x kind
of change (changed, added, removed), for ``DIFFERENT`` verdicts; endpoint template x cause for
``NOT_COMPARABLE`` ones. An exchange with several changes joins several findings, each once.

``FindingsAccumulator`` takes comparisons one by one (``add``) as they are judged and keeps, per
finding, the count of exchanges, the ``max_examples`` comparisons first in the capture (by session
and exchange number, whatever order they are judged in; stripped of their exchanges: ids, diff
and cause only), at most ``max_values`` distinct value pairs with their
counts (values as short text), and a suggested ignore path when every pair seen looks volatile.
Memory grows with the number of findings, never with the number of exchanges; past
``max_findings`` distinct findings, further ones are only counted (``overflow``).
"""

from __future__ import annotations

from bisect import insort
from collections import Counter
from dataclasses import dataclass, field, replace

from .diff import Change, ChangeKind
from .endpoints import endpoint_template
from .redact import Redaction
from .verdict import Cause, ComparisonStatus, ExchangeComparison
from .volatile import IgnoreSuggestion, suggest_ignore
from .window import SHORT, window

MAX_EXAMPLES = 3
MAX_VALUES = 5
MAX_FINDINGS = 10_000
_REDACTED_PAIR = ("(redacted)", "(redacted)")


@dataclass(frozen=True, slots=True)
class FindingKey:
    """What a finding groups: the verdict, the endpoint, the path (None when not comparable)
    and the change (a ``ChangeKind`` value, or a ``Cause`` value when not comparable)."""

    status: ComparisonStatus
    endpoint: str
    path: str | None
    change: str

    def render(self) -> str:
        """``GET /api/users/{id} body.plan changed`` / ``GET /x not comparable (SUT too slow)``."""
        if self.path is None:
            return f"{self.endpoint} not comparable ({Cause(self.change).title})"
        return f"{self.endpoint} {self.path} {self.change}"


@dataclass(slots=True)
class Finding:
    """One finding and what is kept of it (see the module comment)."""

    key: FindingKey
    count: int = 0
    examples: list[ExchangeComparison] = field(default_factory=list)
    values: Counter = field(default_factory=Counter)  # (old text, new text) -> exchanges
    values_omitted: int = 0  # exchanges whose value pair is not among ``values``
    message: str | None = None  # the first cause message (not comparable)
    suggestion: IgnoreSuggestion | None = None
    _volatile: bool = True  # every pair so far looked volatile

    @property
    def endpoint(self) -> str:
        return self.key.endpoint

    @property
    def path(self) -> str | None:
        return self.key.path

    @property
    def change(self) -> str:
        return self.key.change

    def to_json(self) -> dict:
        return {
            "status": self.key.status.value,
            "endpoint": self.key.endpoint,
            "path": self.key.path,
            "change": self.key.change,
            "count": self.count,
            "examples": [{"exchange": c.exchange_id, "session": c.session, "number": c.number} for c in self.examples],
            "values": [{"old": old, "new": new, "count": n} for (old, new), n in self.values.most_common()],
            "values_omitted": self.values_omitted,
            "message": self.message,
            "suggested_ignore": self.suggestion.to_json() if self.suggestion else None,
        }


class FindingsAccumulator:
    """Verdict counts and findings of a stream of comparisons; see the module comment."""

    def __init__(
        self,
        redaction: Redaction | None = None,
        *,
        max_examples: int = MAX_EXAMPLES,
        max_values: int = MAX_VALUES,
        max_findings: int = MAX_FINDINGS,
    ) -> None:
        self.redaction = redaction or Redaction()
        self.max_examples = max_examples
        self.max_values = max_values
        self.max_findings = max_findings
        self.counts: Counter = Counter({s: 0 for s in ComparisonStatus})
        self.causes: Counter = Counter()  # cause value -> not comparable exchanges
        self.noisy = 0  # exchanges with noise set apart
        self.overflow = 0  # exchange-finding memberships past max_findings
        self._findings: dict[FindingKey, Finding] = {}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, comparison: ExchangeComparison) -> tuple[FindingKey, ...]:
        """Count ``comparison`` and add it to its findings; return their keys (none for ``SAME``)."""
        self.counts[comparison.status] += 1
        self.noisy += comparison.noise is not None
        keys = self._keys(comparison)
        if not keys:
            return ()
        if comparison.cause is not None:
            self.causes[comparison.cause.cause.value] += 1
        for key, change in keys.items():
            finding = self._finding(key)
            if finding is None:
                continue
            self._count(finding, comparison)
            if change is not None:
                self._value(finding, change)
            elif comparison.cause is not None and finding.message is None:
                finding.message = comparison.cause.message
        return tuple(keys)

    def keys_of(self, comparison: ExchangeComparison) -> tuple[FindingKey, ...]:
        """The keys of the findings ``comparison`` belongs to, without adding it."""
        return tuple(self._keys(comparison))

    def _keys(self, comparison: ExchangeComparison) -> dict[FindingKey, Change | None]:
        """Each finding key of ``comparison`` with the first change that puts it there."""
        if comparison.status is ComparisonStatus.SAME:
            return {}
        endpoint = endpoint_template(comparison.request, _codec(comparison), self.redaction)
        if comparison.cause is not None:
            return {FindingKey(comparison.status, endpoint, None, comparison.cause.cause.value): None}
        assert comparison.diff is not None
        keys: dict[FindingKey, Change | None] = {}
        for change in comparison.diff.changes:
            keys.setdefault(FindingKey(comparison.status, endpoint, change.template, change.kind.value), change)
        return keys

    def findings(self) -> list[Finding]:
        """Every finding: differences first, then by count (most first), endpoint and path."""
        order = {ComparisonStatus.DIFFERENT: 0, ComparisonStatus.NOT_COMPARABLE: 1}
        return sorted(
            self._findings.values(),
            key=lambda f: (order[f.key.status], -f.count, f.key.endpoint, f.key.path or "", f.key.change),
        )

    def finding(self, key: FindingKey) -> Finding | None:
        return self._findings.get(key)

    def _finding(self, key: FindingKey) -> Finding | None:
        finding = self._findings.get(key)
        if finding is None:
            if len(self._findings) >= self.max_findings:
                self.overflow += 1
                return None
            finding = self._findings[key] = Finding(key)
        return finding

    def _count(self, finding: Finding, comparison: ExchangeComparison) -> None:
        finding.count += 1
        examples = finding.examples
        place = (comparison.session, comparison.number)
        if len(examples) < self.max_examples or place < _place(examples[-1]):
            insort(examples, replace(comparison, request=None, baseline=None, candidate=None), key=_place)
            del examples[self.max_examples:]

    def _value(self, finding: Finding, change: Change) -> None:
        pair = _REDACTED_PAIR if change.redacted else _pair_text(change)
        if pair in finding.values or len(finding.values) < self.max_values:
            finding.values[pair] += 1
        else:
            finding.values_omitted += 1
        if finding._volatile:
            suggestion = suggest_ignore(change)
            finding._volatile = suggestion is not None
            finding.suggestion = suggestion


def _codec(comparison: ExchangeComparison) -> str:
    side = comparison.baseline or comparison.candidate
    return side.codec if side is not None else ""


def _pair_text(change: Change) -> tuple[str | None, str | None]:
    """The change's values as short text: whole when short, else around their first difference."""
    old = None if change.kind is ChangeKind.ADDED else repr(change.old)
    new = None if change.kind is ChangeKind.REMOVED else repr(change.new)
    if old is not None and new is not None and (len(old) > SHORT or len(new) > SHORT):
        w = window(old, new)
        return f"[{w.old_start}:{w.old_end}] {w.old}", f"[{w.new_start}:{w.new_end}] {w.new}"
    return _cut(old), _cut(new)


def _cut(text: str | None) -> str | None:
    return text if text is None or len(text) <= SHORT else f"{text[: SHORT - 1]}… ({len(text)} characters)"


def _place(comparison: ExchangeComparison) -> tuple[int, int]:
    """Where an example sits in the capture: examples are the first ones there, whatever order
    the sessions were judged in."""
    return comparison.session, comparison.number
