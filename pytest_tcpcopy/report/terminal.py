"""The terminal summary: a few lines on what the replays found, or none when all went well."""

from __future__ import annotations

from collections.abc import Iterable

from ..model import ReplayRun
from .model import run_totals

TOP_REASONS = 3  # aborted-session reasons listed per run


def summary_lines(runs: Iterable[ReplayRun]) -> list[str]:
    """Per run: a line of counts, then its most frequent aborted-session reasons. With several
    runs, each line names who replayed (``run.label``: a test's node id) and the capture.

    Empty when there is nothing to say: no runs, or every exchange the same as its baseline (no
    noise either) and no session aborted.
    """
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
    return lines


def run_name(run: ReplayRun, *, several: bool) -> str:
    """The capture's name; with ``several`` runs, also who replayed it when that says more."""
    name = run.capture.path.name
    if several and run.label and run.label != name and not run.label.endswith("/" + name):
        return f"{run.label} ({name})"
    return name


def _counts(totals: dict) -> str:
    judged = [f"{totals[s]} {s}" for s in ("same", "different", "missing", "extra", "skipped") if totals[s]]
    text = f"{_n(totals['sessions'], 'session')}, {_n(totals['exchanges'], 'exchange')}"
    text += ": " + ", ".join(judged) if judged else ""
    if totals["noise"]:
        text += f"; {totals['noise']} with noise"
    if totals["aborted_sessions"]:
        text += f"; {_n(totals['aborted_sessions'], 'session')} aborted"
    return text


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
