"""The JSON report: the report model (``model.build_report``) written as one UTF-8 file.

Keys are sorted and the output is indented, so two reports of the same replay diff cleanly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ..compare import Redaction
from ..model import ReplayRun
from .model import build_report


def write_json_report(path: str | Path, runs: Iterable[ReplayRun], redaction: Redaction | None = None) -> Path:
    """Write the report of ``runs`` to ``path`` (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(build_report(runs, redaction), indent=2, sort_keys=True, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path
