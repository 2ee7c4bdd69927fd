"""The terminal summary: a few lines on what the replays found, or none when all went well."""

from __future__ import annotations

from collections.abc import Iterable

from ..runner import ReplayRun
from .model import run_totals

TOP_REASONS = 3  # aborted-session reasons listed per run


def summary_lines(runs: Iterable[ReplayRun]) -> list[str]:
    """Per run: a line of counts, then its most frequent aborted-session reasons.

    Empty when there is nothing to say: no runs, or every exchange the same as its baseline (no
    noise either) and no session aborted.
    """
    lines = []
    for run in runs:
        totals = run_totals(run)
        judged = totals["exchanges"] - totals["same"]
        if not (judged or totals["noise"] or totals["aborted_sessions"]):
            continue
        lines.append(f"{run.capture.path.name}: " + _counts(totals))
        reasons = list(totals["aborted_reasons"].items())
        for reason, count in reasons[:TOP_REASONS]:
            lines.append(f"  aborted x{count}: {reason}")
        if len(reasons) > TOP_REASONS:
            others = sum(count for _, count in reasons[TOP_REASONS:])
            lines.append(f"  aborted x{others}: {len(reasons) - TOP_REASONS} other reason(s)")
    return lines


def _counts(totals: dict) -> str:
    parts = [f"{totals['sessions']} sessions", f"{totals['exchanges']} exchanges"]
    for status in ("different", "missing", "extra", "skipped"):
        if totals[status]:
            parts.append(f"{totals[status]} {status}")
    if totals["noise"]:
        parts.append(f"{totals['noise']} with noise")
    if totals["aborted_sessions"]:
        parts.append(f"{totals['aborted_sessions']} sessions aborted")
    return ", ".join(parts)
