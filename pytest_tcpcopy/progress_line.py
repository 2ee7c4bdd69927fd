"""The plugin's progress line: one terminal line, rewritten in place while a replay runs.

Duck-typed on pytest's terminal reporter and capture manager, so it needs no pytest import; the
plugin makes one when the terminal is a tty and hands it to runners as their progress callback.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext

from .replay.contract import Progress


def render_progress(reports: dict[str, Progress]) -> str:
    """One terminal line from the latest copier progress report of each SUT (by SUT name; the
    name is shown only when there are several)."""
    parts = []
    for name, report in reports.items():
        done, total = report.sessions_done, report.sessions_total
        sessions = f"{done} sessions" if total is None else f"{done}/{total} sessions"
        if total:
            sessions += f" ({100 * done // total}%)"
        text = (f"{sessions}, {report.active} active, {report.waiting} waiting, {report.requests} requests, "
                f"{report.rate:g} sessions/s, {report.errors} errors")  # fmt: skip
        parts.append(f"{name}: {text}" if len(reports) > 1 else text)
    return "tcpcopy replay: " + " | ".join(parts)


class ReplayProgressLine:
    """A runner progress callback: one terminal line, rewritten in place at most once per
    ``interval`` while a replay runs. Reports come from the backends' threads; the line is
    written with output capture suspended, after a newline that ends any line pytest started.
    ``finish`` ends it before pytest reports the item that ran the replay."""

    _STALE = 3.0  # seconds after which a SUT's last report no longer shows (its replay is over)

    def __init__(self, reporter, capture_manager=None, *, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._reporter = reporter
        self._capture = capture_manager
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[float, Progress]] = {}
        self._next = 0.0
        self._open = False  # a progress line is on the terminal, not yet ended

    def __call__(self, name: str, report: Progress) -> None:
        with self._lock:
            now = self._clock()
            self._latest[name] = (now, report)
            if now < self._next:
                return
            self._next = now + self._interval
            current = {n: r for n, (at, r) in self._latest.items() if now - at <= self._STALE}
            suspended = self._capture.global_and_fixture_disabled() if self._capture is not None else nullcontext()
            with suspended:
                self._reporter.ensure_newline()
                width = shutil.get_terminal_size().columns
                self._reporter.rewrite(render_progress(current)[: width - 1], erase=True)
                self._open = True

    def finish(self, nodeid: str) -> None:
        """End the progress line, if one is shown, before pytest reports on ``nodeid``: in the
        short format pytest writes the item's letter on the current line, so its file's prefix
        is written again first (the long format starts a line of its own)."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            if self._reporter.verbosity <= 0:
                self._reporter.write_fspath_result(nodeid, "")
