"""The terminal summary: what the replays found, short at any scale, or nothing when all went well.

Per run with something to say: a line of counts (same, different and not comparable apart; noise;
aborted sessions), the most frequent aborted-session reasons, then its findings
(``compare.findings``): a table of at most ``MAX_ROWS`` findings, most frequent first, and for the
first ``DETAILED_FINDINGS`` of them the full diff of their first ``DIFFS_PER_FINDING`` example
exchanges, with a suggested ignore path when the values look volatile. One regression across
10,000 exchanges is one row and one diff. ``finding_reference`` is the one line an exchange item
shows when its finding is shown in full elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..compare import Finding, FindingsAccumulator, Redaction
from ..model import ReplayRun
from .model import run_findings, run_totals

TOP_REASONS = 3  # aborted-session reasons listed per run
MAX_ROWS = 20  # findings listed per run
DETAILED_FINDINGS = 5  # findings shown with example diffs
DIFFS_PER_FINDING = 2  # example diffs per detailed finding
DIFF_LIMIT = 20  # changes listed per example diff
_WIDTHS = {"endpoint": 50, "path": 40, "values": 60}


def summary_lines(runs: Iterable[ReplayRun], redaction: Redaction | None = None) -> list[str]:
    """Per run: a line of counts, its most frequent aborted-session reasons, its findings. With
    several runs, each line names who replayed (``run.label``: a test's node id) and the capture.

    Empty when there is nothing to say: no runs, or every exchange the same as its baseline (no
    noise either) and no session aborted. ``redaction`` (default ``Redaction()``) scrubs what
    findings show; pass the ``DiffConfig``'s.
    """
    redaction = redaction or Redaction()
    runs = list(runs)
    lines = []
    for run in runs:
        totals = run_totals(run)
        unusual = totals["exchanges"] - totals["same"]
        if not (unusual or totals["noise"] or totals["aborted_sessions"]):
            continue
        lines.append(f"{run_name(run, several=len(runs) > 1)}: " + _counts(totals))
        reasons = list(totals["aborted_reasons"].items())
        for reason, count in reasons[:TOP_REASONS]:
            lines.append(f"  aborted x{count}: {reason}")
        if len(reasons) > TOP_REASONS:
            others = sum(count for _, count in reasons[TOP_REASONS:])
            lines.append(f"  aborted x{others}: {len(reasons) - TOP_REASONS} other reason(s)")
        if unusual:
            lines += findings_lines(run_findings(run, redaction), redaction)
    return lines


def findings_lines(findings: FindingsAccumulator, redaction: Redaction | None = None) -> list[str]:
    """The findings table, then the example diffs of the first findings; see the module comment."""
    redaction = redaction or Redaction()
    rows = findings.findings()
    if not rows:
        return []
    different = sum(1 for f in rows if f.path is not None)
    lines = [f"findings ({different} different, {len(rows) - different} not comparable):"]
    lines += findings_table(rows, redaction)
    if findings.overflow:
        lines.append(f"  ... and {findings.overflow} exchange(s) in findings past the first {findings.max_findings}")
    for finding in rows[:DETAILED_FINDINGS]:
        lines += detail_lines(finding, redaction)
    return lines


def findings_table(rows: list[Finding], redaction: Redaction) -> list[str]:
    """An aligned table of the first ``MAX_ROWS`` findings (exchanges, endpoint, path, change,
    the most frequent value pair), and a line counting the rest."""
    if not rows:
        return []
    lines = []
    table = [("exchanges", "endpoint", "path", "change", "values")]
    table += [_row(f, redaction) for f in rows[:MAX_ROWS]]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for count, endpoint, path, change, values in table:
        cells = [count.rjust(widths[0]), endpoint.ljust(widths[1]), path.ljust(widths[2]), change.ljust(widths[3])]
        lines.append(("  " + "  ".join(cells) + "  " + values).rstrip())
    if len(rows) > MAX_ROWS:
        rest = rows[MAX_ROWS:]
        lines.append(f"  ... and {len(rest)} more finding(s) ({sum(f.count for f in rest)} exchanges)")
    return lines


def finding_reference(finding: Finding, exchange_id: str) -> str:
    """One line for an exchange whose finding is shown in full with another exchange."""
    shown = finding.examples[0].exchange_id if finding.examples else "?"
    what = "exchanges" if finding.count != 1 else "exchange"
    return f"{exchange_id}: finding {finding.key.render()} ({finding.count} {what}; shown in full for {shown})"


def _row(finding: Finding, redaction: Redaction) -> tuple[str, str, str, str, str]:
    endpoint = _cut(redaction.scrub_text(finding.endpoint), _WIDTHS["endpoint"])
    if finding.path is None:
        return str(finding.count), endpoint, "-", "not comparable", redaction.scrub_text(finding.message or "")
    values = ""
    if finding.values:
        (old, new), _ = finding.values.most_common(1)[0]
        values = _cut(redaction.scrub_text(f"{old or '-'} -> {new or '-'}"), _WIDTHS["values"])
        others = len(finding.values) - 1
        if others or finding.values_omitted:
            values += f" (+{others}{'+' if finding.values_omitted else ''} other pair(s))"
    return str(finding.count), endpoint, _cut(finding.path, _WIDTHS["path"]), finding.change, values


def detail_lines(finding: Finding, redaction: Redaction) -> list[str]:
    """A finding headed by its key and count, with the diffs of its first examples."""
    ids = ", ".join(c.exchange_id for c in finding.examples)
    what = "exchanges" if finding.count != 1 else "exchange"
    lines = [f"{redaction.scrub_text(finding.key.render())}: {finding.count} {what}, e.g. {ids}"]
    for comparison in finding.examples[:DIFFS_PER_FINDING]:
        lines += ["  " + line for line in comparison.render(DIFF_LIMIT).splitlines()]
    if finding.suggestion is not None:
        lines.append("  " + finding.suggestion.render())
    return lines


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def run_name(run: ReplayRun, *, several: bool) -> str:
    """The capture's name; with ``several`` runs, also who replayed it when that says more."""
    name = run.capture.path.name
    if several and run.label and run.label != name and not run.label.endswith("/" + name):
        return f"{run.label} ({name})"
    return name


def _counts(totals: dict) -> str:
    judged = [f"{totals[s]} {s.replace('_', ' ')}" for s in ("same", "different", "not_comparable") if totals[s]]
    text = f"{_n(totals['sessions'], 'session')}, {_n(totals['exchanges'], 'exchange')}"
    text += ": " + ", ".join(judged) if judged else ""
    if totals["noise"]:
        text += f"; {totals['noise']} with noise"
    if totals["aborted_sessions"]:
        text += f"; {_n(totals['aborted_sessions'], 'session')} aborted"
    return text


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
