"""Reports of replays: a JSON document, a self-contained HTML page, and a terminal summary.

The files come from one redacted, size-bounded model (``model.build_report``), led by the
findings (``compare.findings``); the terminal summary draws the same findings. Nothing here
imports pytest; the plugin calls ``write_report`` for ``--tcpcopy-report``, ``summary_lines`` for
its terminal summary, and ``finding_reference`` for an item whose finding is shown in full
elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..compare import Redaction
from ..errors import UsageError
from ..model import ReplayRun
from .html_report import render_html, write_html_report
from .json_report import write_json_report
from .model import build_report, findings_model, run_findings, run_totals
from .terminal import finding_reference, findings_lines, summary_lines

_WRITERS = {".html": write_html_report, ".htm": write_html_report, ".json": write_json_report}


def report_format(path: str | Path) -> str:
    """``"html"`` or ``"json"``, by the path's suffix; a UsageError for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in _WRITERS:
        raise UsageError(f"report path {str(path)!r}: give a .html or .json file name, not {suffix or 'no suffix'!r}")
    return "json" if suffix == ".json" else "html"


def write_report(path: str | Path, runs: Iterable[ReplayRun], redaction: Redaction | None = None) -> Path:
    """Write an HTML or JSON report of ``runs``, by ``path``'s suffix; return the path."""
    report_format(path)
    return _WRITERS[Path(path).suffix.lower()](path, runs, redaction)


__all__ = [
    "build_report",
    "finding_reference",
    "findings_lines",
    "findings_model",
    "render_html",
    "report_format",
    "run_findings",
    "run_totals",
    "summary_lines",
    "write_html_report",
    "write_json_report",
    "write_report",
]
