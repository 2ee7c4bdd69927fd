"""What a judged run keeps of its verdicts: bounded, whatever the number of exchanges.

``RunVerdicts.add`` takes each exchange's verdict as the judge makes it (one per exchange: of
several amplify copies, the one that represents it) and keeps:

- the counts of the three verdicts, and the findings (``compare.FindingsAccumulator``: per
  endpoint x path x change, or endpoint x cause, a count, value pairs and a few examples);
- the first comparisons whole (``kept``): every one while the run has judged at most
  ``KEEP_ALL`` exchanges, then only the notable ones (different, not comparable, with noise),
  at most ``MAX_KEPT`` of each verdict; past ``MAX_KEPT_BYTES`` of response bodies, later ones are
  kept without their exchanges (ids, diff and cause only);
- per exchange item (``per_exchange``), a compact ``ItemVerdict`` of each exchange that is not
  the same: its verdict, the keys of its findings, the cause's message, the amplify copies that
  differed, how its session's replay ended when it did not complete; with ``full`` (every item
  shows its whole diff), also its comparison without exchanges. An exchange not listed is the same;
- per endpoint template, the count of each verdict other than same (endpoint items).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace

from ..compare import ComparisonStatus, ExchangeComparison, Finding, FindingKey, FindingsAccumulator, Redaction
from ..compare.exchange import Exchange, HttpResponse, RawMessage

KEEP_ALL = 1000  # exchanges judged before only notable comparisons are kept whole
MAX_KEPT = 200  # notable comparisons kept whole per verdict
MAX_KEPT_BYTES = 32 * 1024 * 1024  # response body bytes kept in whole comparisons

_SAME, _DIFFERENT, _NOT_COMPARABLE = ComparisonStatus.SAME, ComparisonStatus.DIFFERENT, ComparisonStatus.NOT_COMPARABLE
_RANK = {_DIFFERENT: 0, _NOT_COMPARABLE: 1, _SAME: 2}


def representative(comparisons: list[ExchangeComparison]) -> ExchangeComparison:
    """The comparison that stands for an exchange judged several times (amplify copies, or
    extra positions of a session): the first different one, else the first not comparable one,
    else the first."""
    return min(comparisons, key=lambda c: _RANK[c.status])


@dataclass(frozen=True, slots=True)
class ItemVerdict:
    """The compact verdict of one exchange item (see the module comment)."""

    status: ComparisonStatus
    findings: tuple[FindingKey, ...] = ()
    message: str | None = None  # the cause's message, when not comparable
    copies: tuple[int, ...] = ()  # amplify copies whose response differed
    outcome: str | None = None  # "timeout: ..." when the session's replay did not complete
    comparison: ExchangeComparison | None = None  # without its exchanges; with ``full`` only


SAME_ITEM = ItemVerdict(_SAME)


class RunVerdicts:
    """The verdicts of one run, bounded (see the module comment)."""

    def __init__(self, redaction: Redaction | None = None, *, per_exchange: bool = True, full: bool = False) -> None:
        self.redaction = redaction or Redaction()
        self.findings = FindingsAccumulator(self.redaction)
        self.per_exchange = per_exchange
        self.full = full
        self.kept: dict[tuple[int, int], ExchangeComparison] = {}
        self.outcomes: dict[int, tuple[str, str]] = {}  # session -> (outcome, reason) of kept comparisons
        self._kept_counts: Counter = Counter()
        self._kept_bytes = 0
        self._items: dict[tuple[int, int], ItemVerdict] = {}
        self._endpoints: dict[str, Counter] = {}

    @property
    def counts(self) -> Counter:
        """Exchanges per verdict (``ComparisonStatus`` -> count)."""
        return self.findings.counts

    @property
    def total(self) -> int:
        return self.findings.total

    @property
    def noisy(self) -> int:
        return self.findings.noisy

    def add(self, comparison: ExchangeComparison, *, copies: tuple[int, ...] = (),
            outcome: tuple[str, str] | None = None) -> None:  # fmt: skip
        """Take the verdict on one exchange; ``copies``: the amplify copies that differed;
        ``outcome``: (outcome, reason) of its session's replay when it did not complete."""
        keys = self.findings.add(comparison)
        key = (comparison.session, comparison.number)
        self._keep(key, comparison, outcome)
        if comparison.status is _SAME:
            return
        endpoint = keys[0].endpoint if keys else "?"
        self._endpoints.setdefault(endpoint, Counter())[comparison.status] += 1
        if self.per_exchange:
            self._items[key] = ItemVerdict(
                comparison.status,
                keys,
                comparison.cause.message if comparison.cause is not None else None,
                copies,
                f"{outcome[0]}: {outcome[1] or '-'}" if outcome is not None else None,
                _stripped(comparison) if self.full else None,
            )

    def _keep(self, key: tuple[int, int], comparison: ExchangeComparison, outcome: tuple[str, str] | None) -> None:
        notable = comparison.status is not _SAME or comparison.noise is not None
        if self.total > KEEP_ALL and not notable:
            return
        bucket = "noise" if comparison.status is _SAME else comparison.status
        if self.total > KEEP_ALL and self._kept_counts[bucket] >= MAX_KEPT:
            return
        self._kept_counts[bucket] += 1
        weight = _weight(comparison.baseline) + _weight(comparison.candidate)
        if self._kept_bytes + weight > MAX_KEPT_BYTES:
            comparison = _stripped(comparison, keep_request=True)
        else:
            self._kept_bytes += weight
        self.kept[key] = comparison
        if outcome is not None:
            self.outcomes[comparison.session] = outcome

    # -- queries --------------------------------------------------------------------------------

    def item(self, session: int, number: int) -> ItemVerdict:
        """The verdict of exchange ``number`` of ``session`` (``per_exchange`` runs)."""
        return self._items.get((session, number), SAME_ITEM)

    def endpoint(self, template: str) -> Counter:
        """Exchanges of endpoint ``template`` per verdict other than same."""
        return self._endpoints.get(template, Counter())

    def findings_of(self, keys: tuple[FindingKey, ...]) -> list[Finding]:
        """The findings of ``keys`` (those past the accumulator's bound are left out)."""
        return [f for f in (self.findings.finding(k) for k in keys) if f is not None]

    def endpoint_findings(self, template: str) -> list[Finding]:
        """The findings of endpoint ``template``, differences first, most frequent first."""
        return [f for f in self.findings.findings() if f.key.endpoint == template]

    def examples(self) -> Iterator[tuple[Finding, ExchangeComparison]]:
        """Every finding's examples (ids, diff and cause: ``session`` and ``number`` place each
        in the capture), the findings in report order: what reproducers are written for."""
        for finding in self.findings.findings():
            for example in finding.examples:
                yield finding, example

    def example_of(self, session: int, number: int, keys: tuple[FindingKey, ...]) -> ExchangeComparison | None:
        """The exchange's comparison when it is one of the examples of one of its findings."""
        for finding in self.findings_of(keys):
            for example in finding.examples:
                if (example.session, example.number) == (session, number):
                    return example
        return None


def _stripped(comparison: ExchangeComparison, *, keep_request: bool = False) -> ExchangeComparison:
    """``comparison`` without its exchanges (and request): ids, verdict, diff, noise and cause."""
    request = comparison.request if keep_request else None
    return replace(comparison, request=request, baseline=None, candidate=None)


def _weight(exchange: Exchange | None) -> int:
    """The response body bytes ``exchange`` holds."""
    if exchange is None:
        return 0
    response = exchange.response
    if isinstance(response, HttpResponse):
        return len(response.body)
    if isinstance(response, RawMessage):
        return len(response.data)
    return 0
