"""What a test item says when it does not pass: its text and a one-line headline.

An exchange item that differs shows its whole diff when it is one of the first examples of one
of its findings (or with ``full``: always); any other says in one line which finding it belongs
to (``terminal.finding_reference``), the finding being shown in full with its examples. A not
comparable exchange likewise: its cause (and the SUT's log tail when the SUT died) in full for
the first examples of its finding, else the reference. An endpoint item lists its endpoint's
findings and the diffs of their first examples. Every text starts with the exchange id or the
endpoint. An exchange with a reproducer (``reproduce``) names it, any other its finding's. Nothing
here imports pytest.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..compare import ComparisonStatus, ExchangeComparison, Finding
from ..model import ReplayRun
from .terminal import detail_lines, finding_reference, findings_table

DIFF_LIMIT = 50  # changes listed per exchange


@dataclass(frozen=True, slots=True)
class ItemText:
    """A failing or erroring item's ``text``, its one-line ``headline``, and, when the text is
    only a reference to a finding shown in full elsewhere, that finding's key (``reference``)."""

    headline: str
    text: str
    reference: str | None = None


def exchange_text(run: ReplayRun, session: int, number: int, name: str, *, full: bool = False) -> ItemText:
    """The text of exchange item ``name`` (exchange ``number`` of ``session``), not the same."""
    verdicts = run.verdicts
    verdict = verdicts.item(session, number)
    findings = verdicts.findings_of(verdict.findings)
    comparison = verdict.comparison or verdicts.example_of(session, number, verdict.findings)
    if comparison is None and full:
        comparison = run.comparison(session, number)
    headline = _headline(name, verdict.status, verdict.message, findings)
    if comparison is None and findings:
        line = finding_reference(findings[0], name)
        if len(findings) > 1:
            line += f"; and {len(findings) - 1} more finding(s): " + "; ".join(f.key.render() for f in findings[1:4])
        return ItemText(headline, "\n".join([line, *_reproducer_lines(run, session, number, findings)]),
                        findings[0].key.render())  # fmt: skip
    lines = _render(comparison, name, verdict.message)
    if verdict.copies:
        listed = ", ".join(map(str, verdict.copies))
        lines.append(f"differs in {len(verdict.copies)} of {run.settings.amplify} amplified copies ({listed}); "
                     f"shown: copy {verdict.copies[0]}")  # fmt: skip
    if verdict.outcome is not None and verdict.status is ComparisonStatus.DIFFERENT:
        lines.append(f"session {session} replay outcome: {verdict.outcome}")
    lines += _reproducer_lines(run, session, number, findings)
    return ItemText(headline, "\n".join(lines))


def endpoint_text(run: ReplayRun, endpoint: str) -> ItemText:
    """The text of endpoint item ``endpoint``: its counts, findings and their first examples."""
    verdicts = run.verdicts
    counts = verdicts.endpoint(endpoint)
    findings = verdicts.endpoint_findings(endpoint)
    different, not_comparable = counts[ComparisonStatus.DIFFERENT], counts[ComparisonStatus.NOT_COMPARABLE]
    parts = [f"{different} different"] if different else []
    if not_comparable:
        parts.append(f"{not_comparable} not comparable")
    total = run.capture.endpoints.get(endpoint)
    headline = f"{endpoint}: " + ", ".join(parts) + (f" of {total} exchanges" if total else "")
    redaction = verdicts.redaction
    lines = [headline, *findings_table(findings, redaction)]
    for finding in findings:
        lines += detail_lines(finding, redaction)
    return ItemText(headline, "\n".join(lines))


def _reproducer_lines(run: ReplayRun, session: int, number: int, findings: list[Finding]) -> list[str]:
    """Where the exchange's reproducer is (or its finding's, when the exchange has none)."""
    mine = next((r for r in run.reproducers if (r.session, r.number) == (session, number)), None)
    if mine is not None:
        return [f"reproducer: {mine.readme}"]
    keys = {f.key for f in findings}
    theirs = next((r for r in run.reproducers if any(ref.key in keys for ref in r.findings)), None)
    return [] if theirs is None else [f"reproducer of its finding: {theirs.readme}"]


def _headline(name: str, status: ComparisonStatus, message: str | None, findings: list[Finding]) -> str:
    if status is ComparisonStatus.NOT_COMPARABLE:
        return f"{name}: not comparable: {message}"
    changes = ", ".join(f"{f.key.path} {f.key.change}" for f in findings[:3])
    more = f" (+{len(findings) - 3})" if len(findings) > 3 else ""
    return f"{name}: differs: {changes}{more}" if changes else f"{name}: differs"


def _render(comparison: ExchangeComparison | None, name: str, message: str | None) -> list[str]:
    if comparison is None:
        return [f"{name}: not comparable: {message}" if message else f"{name}: differs from the baseline"]
    lines = comparison.render(DIFF_LIMIT).splitlines()
    if lines and not lines[0].startswith(name.split(" [", 1)[0]):
        lines.insert(0, name)
    return lines
