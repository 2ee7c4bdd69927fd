"""The report model: one or more ``ReplayRun``s as a plain, JSON-able, redacted document.

Every report (JSON, HTML, the terminal summary) is drawn from this one model, so they agree. It
holds, per run: the settings line, totals, the aborted sessions, and every exchange worth a look
(different, missing, extra, skipped, or with noise) with its request, both responses, the
changes and the noise, and how its session's replay ended. Secrets are redacted on the way in
(``messages``), and sizes are bounded: bodies by ``messages.MAX_BODY_CHARS``, detailed exchanges
per run by ``MAX_DETAILED``, changes per exchange by ``MAX_CHANGES``, values by ``MAX_VALUE_CHARS``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

from ..compare import ComparisonStatus, ExchangeComparison, ExchangeDiff, Redaction
from ..model import ReplayRun
from ..replay.results import SessionResult
from .messages import message_model

FORMAT = "pytest-tcpcopy-report"
VERSION = 1
MAX_DETAILED = 200  # exchanges per run shown with request and responses; the rest by changes only
MAX_CHANGES = 200  # changes (and noise entries) listed per exchange
MAX_ABORTED = 200  # aborted sessions listed per run
MAX_VALUE_CHARS = 2000  # a change's old/new value, as JSON text, beyond which it is cut
MAX_LOG_CHARS = 8000  # tail of the SUT's logs kept
STATUSES = tuple(s.value for s in ComparisonStatus)
_COUNTS = ("sessions", "exchanges", *STATUSES, "noise", "aborted_sessions")


def build_report(runs: Iterable[ReplayRun], redaction: Redaction | None = None) -> dict:
    """The report of ``runs``: ``{"format", "version", "totals", "runs": [...]}``.

    ``redaction`` says what is secret (default: ``Redaction()``); pass the ``DiffConfig``'s, so
    the report hides what the diff hides.
    """
    redaction = redaction or Redaction()
    models = [run_model(run, redaction) for run in runs]
    return {"format": FORMAT, "version": VERSION, "totals": sum_totals(m["totals"] for m in models), "runs": models}


def run_model(run: ReplayRun, redaction: Redaction) -> dict:
    """One run: capture, settings line, totals, aborted sessions, notes, SUT log tail, exchanges."""
    outcomes = run.sessions
    exchanges = []
    for position, ((session, number), comparison) in enumerate(_notable(run)):
        detailed = position < MAX_DETAILED
        exchanges.append(exchange_model(session, number, comparison, outcomes.get(session), redaction, detailed))
    logs = run.sut_logs
    return {
        "capture": str(run.capture.path),
        "settings": redaction.scrub(run.settings.describe()),
        "totals": run_totals(run),
        "aborted": [_aborted(s, redaction) for s in run.aborted[:MAX_ABORTED]],
        "aborted_omitted": max(0, len(run.aborted) - MAX_ABORTED),
        "notes": [redaction.scrub(str(note)) for note in run.candidate.notes],
        "sut_logs": redaction.scrub(logs[-MAX_LOG_CHARS:]) if logs else None,
        "exchanges": exchanges,
    }


def run_totals(run: ReplayRun) -> dict:
    """Counts of one run: sessions selected, exchanges judged, each status, noise, aborted
    session copies, and the aborted sessions' ``"outcome: reason"`` counts."""
    statuses = Counter(c.status.value for c in run.comparisons.values())
    reasons = Counter(_reason(s) for s in run.aborted)
    totals = {
        "sessions": len(run.capture.selected),
        "exchanges": len(run.comparisons),
        **{status: statuses[status] for status in STATUSES},
        "noise": len(run.noisy),
        "aborted_sessions": len(run.aborted),
        "aborted_reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
    return totals


def sum_totals(totals: Iterable[dict]) -> dict:
    """The totals of several runs added up (reasons merged, most frequent first)."""
    out: dict = dict.fromkeys(_COUNTS, 0)
    reasons: Counter = Counter()
    for one in totals:
        for key in _COUNTS:
            out[key] += one[key]
        reasons.update(one["aborted_reasons"])
    out["aborted_reasons"] = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    return out


def exchange_model(
    session: int,
    number: int,
    comparison: ExchangeComparison,
    outcome: SessionResult | None,
    redaction: Redaction,
    detailed: bool = True,
) -> dict:
    """One judged exchange; without ``detailed``, its request and responses are left out."""
    base, cand = comparison.baseline, comparison.candidate
    changes, changes_omitted = _changes(comparison.diff, redaction)
    noise, noise_omitted = _changes(comparison.noise, redaction)
    request = (base or cand).request if (base or cand) else None
    return {
        "id": comparison.id,
        "session": session,
        "number": number,
        "status": comparison.status.value,
        "failed": comparison.failed,
        "reason": redaction.scrub(comparison.reason) if comparison.reason else None,
        "replay": {"outcome": outcome.outcome.value, "reason": outcome.reason} if outcome else None,
        "detailed": detailed,
        "request": message_model(request, redaction) if detailed else None,
        "baseline": _side(base, redaction) if detailed else None,
        "candidate": _side(cand, redaction) if detailed else None,
        "changes": changes,
        "changes_omitted": changes_omitted,
        "noise": noise,
        "noise_omitted": noise_omitted,
    }


def _notable(run: ReplayRun) -> list[tuple[tuple[int, int], ExchangeComparison]]:
    """The comparisons a reader should see, failures first, each group in capture order."""
    notable = [
        (key, c) for key, c in run.comparisons.items() if c.status is not ComparisonStatus.SAME or c.noise is not None
    ]
    return sorted(notable, key=lambda item: (not item[1].failed, item[0]))


def _side(exchange, redaction: Redaction) -> dict | None:
    """One side's response, with the exchange's own note (why it is malformed or missing)."""
    if exchange is None:
        return None
    model = message_model(exchange.response, redaction)
    model["note"] = redaction.scrub(exchange.malformed) if exchange.malformed else None
    return model


def _changes(diff: ExchangeDiff | None, redaction: Redaction) -> tuple[list[dict], int]:
    if diff is None:
        return [], 0
    out = []
    for change in diff.changes[:MAX_CHANGES]:
        doc = change.to_json()
        for side in ("old", "new"):
            if side in doc:
                doc[side] = _bounded(redaction.scrub(doc[side]))
        out.append(doc)
    return out, max(0, len(diff.changes) - MAX_CHANGES)


def _bounded(value: object) -> object:
    """``value`` as is when small and strict JSON; otherwise its JSON text (NaN and Infinity
    spelled out), cut at ``MAX_VALUE_CHARS``."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        if len(text) <= MAX_VALUE_CHARS:
            return value
    except ValueError:
        text = json.dumps(value, ensure_ascii=False)
    except RecursionError:
        return "<value not shown: nested too deeply>"
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + f"… ({len(text)} characters)"


def _aborted(session: SessionResult, redaction: Redaction) -> dict:
    return {
        "session": session.session,
        "copy": session.copy,
        "client": str(session.captured_client),
        "outcome": session.outcome.value,
        "reason": redaction.scrub(session.reason),
        "requests_sent": session.requests_sent,
    }


def _reason(session: SessionResult) -> str:
    return session.outcome.value + (f": {session.reason}" if session.reason else "")
