"""The report model: one or more ``ReplayRun``s as a plain, JSON-able, redacted document.

Every report (JSON, HTML) is drawn from this one model, so they agree. It holds the findings of
every run (``compare.findings``: endpoint x path x change, with counts, value pairs and example
exchanges; not comparable causes likewise), and per run: the settings line, totals (the three
verdicts counted apart), the first aborted sessions, and the exchanges worth a look (different,
not comparable, or with noise) that the run kept whole (every one in a small run; at scale the
first of each verdict, the findings standing for the rest), with its request, both responses,
the changes and the noise, the cause when not comparable, and how its session's replay ended. Secrets are redacted on the way
in (``messages``), and sizes are bounded: bodies by ``messages.MAX_BODY_CHARS``, detailed
exchanges per run by ``MAX_DETAILED``, changes per exchange by ``MAX_CHANGES``, values by
``MAX_VALUE_CHARS`` (a long changed value is shown around its first difference, with offsets).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

from ..compare import Cause, ComparisonStatus, ExchangeComparison, ExchangeDiff, FindingsAccumulator, Redaction
from ..compare.endpoints import endpoint_template
from ..compare.window import window
from ..model import ReplayRun
from ..replay.results import SessionResult
from .messages import message_model

FORMAT = "pytest-tcpcopy-report"
VERSION = 2
MAX_DETAILED = 200  # exchanges per run shown with request and responses; the rest by changes only
MAX_CHANGES = 200  # changes (and noise entries) listed per exchange
MAX_ABORTED = 200  # aborted sessions listed per run
MAX_VALUE_CHARS = 2000  # a change's old/new value, as JSON text, beyond which it is cut
MAX_LOG_CHARS = 8000  # tail of the SUT's logs kept
_STATUSES = tuple(ComparisonStatus)
STATUSES = tuple(s.value for s in _STATUSES)
_COUNTS = ("sessions", "exchanges", *STATUSES, "noise", "aborted_sessions")
_FAILURES_FIRST = {ComparisonStatus.DIFFERENT: 0, ComparisonStatus.NOT_COMPARABLE: 1, ComparisonStatus.SAME: 2}


def build_report(runs: Iterable[ReplayRun], redaction: Redaction | None = None) -> dict:
    """The report of ``runs``: ``{"format", "version", "totals", "findings", "runs": [...]}``.

    ``findings`` lists every run's findings (each with ``run``, the index of its run,
    ``capture``, and ``reproducers``: the README paths of its examples' reproducers, when
    written); see ``findings_model``. ``redaction`` says what is secret (default:
    ``Redaction()``); pass the ``DiffConfig``'s, so the report hides what the diff hides.
    """
    redaction = redaction or Redaction()
    runs = list(runs)
    models = [run_model(run, redaction) for run in runs]
    findings = []
    for index, run in enumerate(runs):
        for finding in findings_model(run_findings(run, redaction), redaction):
            findings.append({**finding, "run": index, "capture": run.capture.path.name,
                             "reproducers": _reproducers_of(run, finding)})  # fmt: skip
    return {
        "format": FORMAT,
        "version": VERSION,
        "totals": sum_totals(m["totals"] for m in models),
        "findings": findings,
        "runs": models,
    }


def _reproducers_of(run: ReplayRun, finding: dict) -> list[str]:
    """The README paths of the reproducers written for ``finding`` (a ``findings_model`` entry)."""
    examples = {(e["session"], e["number"]) for e in finding["examples"]}
    return [str(r.readme) for r in run.reproducers if (r.session, r.number) in examples]


def run_findings(run: ReplayRun, redaction: Redaction) -> FindingsAccumulator:
    """The findings of one run (gathered by its judge, every exchange's verdict in them)."""
    return run.verdicts.findings


def findings_model(findings: FindingsAccumulator, redaction: Redaction) -> list[dict]:
    """Findings as report values: ``status``, ``endpoint``, ``path`` (None when not comparable),
    ``change`` (changed/added/removed, or the cause), ``count``, ``examples`` (``exchange`` id,
    ``session``, ``number``), ``values`` (old/new text and count), ``values_omitted``,
    ``message`` (the cause's), ``suggested_ignore`` (``path``, ``kind``); redacted again with the
    report's redaction, which may know more than the diff's."""
    out = []
    for finding in findings.findings():
        doc = finding.to_json()
        doc["endpoint"] = redaction.scrub_text(doc["endpoint"])
        doc["values"] = [
            {"old": _scrubbed(v["old"], redaction), "new": _scrubbed(v["new"], redaction), "count": v["count"]}
            for v in doc["values"]
        ]
        doc["message"] = _scrubbed(doc["message"], redaction)
        out.append(doc)
    return out


def _scrubbed(text: str | None, redaction: Redaction) -> str | None:
    return None if text is None else redaction.scrub_text(text)


def run_model(run: ReplayRun, redaction: Redaction) -> dict:
    """One run: capture, settings line, totals, aborted sessions, notes, SUT log tail, and the
    notable exchanges the run kept (``exchanges_omitted`` counts the notable ones it did not)."""
    outcomes = run.verdicts.outcomes
    exchanges = []
    for position, ((session, number), comparison) in enumerate(_notable(run)):
        detailed = position < MAX_DETAILED
        exchanges.append(exchange_model(session, number, comparison, outcomes.get(session), redaction, detailed))
    logs = run.sut_logs
    totals = run_totals(run)
    notable = totals["different"] + totals["not_comparable"]
    shown = sum(1 for e in exchanges if e["status"] != ComparisonStatus.SAME.value)
    aborted = run.aborted[:MAX_ABORTED]
    return {
        "capture": str(run.capture.path),
        "settings": redaction.scrub(run.settings.describe()),
        "totals": totals,
        "aborted": [_aborted(s, redaction) for s in aborted],
        "aborted_omitted": max(0, run.aborted_count - len(aborted)),
        "notes": [redaction.scrub(str(note)) for note in run.candidate.notes],
        "sut_logs": redaction.scrub(logs[-MAX_LOG_CHARS:]) if logs else None,
        "exchanges": exchanges,
        "exchanges_omitted": max(0, notable - shown),
    }


def run_totals(run: ReplayRun) -> dict:
    """Counts of one run: sessions selected, exchanges judged, each verdict (same, different,
    not_comparable), the causes of not comparable ones (by title), noise, aborted session
    copies, and the aborted sessions' ``"outcome: reason"`` counts (the copier's)."""
    verdicts = run.verdicts
    causes = Counter({Cause(cause).title: n for cause, n in verdicts.findings.causes.items()})
    reasons = Counter(run.candidate.totals()["aborted"])
    return {
        "sessions": len(run.capture.selected),
        "exchanges": verdicts.total,
        **{status.value: verdicts.counts[status] for status in _STATUSES},
        "causes": _by_count(causes),
        "noise": verdicts.noisy,
        "aborted_sessions": sum(reasons.values()),
        "aborted_reasons": _by_count(reasons),
    }


def sum_totals(totals: Iterable[dict]) -> dict:
    """The totals of several runs added up (causes and reasons merged, most frequent first)."""
    out: dict = dict.fromkeys(_COUNTS, 0)
    causes: Counter = Counter()
    reasons: Counter = Counter()
    for one in totals:
        for key in _COUNTS:
            out[key] += one[key]
        causes.update(one["causes"])
        reasons.update(one["aborted_reasons"])
    out["causes"] = _by_count(causes)
    out["aborted_reasons"] = _by_count(reasons)
    return out


def _by_count(counts: Counter) -> dict:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def exchange_model(
    session: int,
    number: int,
    comparison: ExchangeComparison,
    outcome: tuple[str, str] | None,
    redaction: Redaction,
    detailed: bool = True,
) -> dict:
    """One judged exchange; without ``detailed``, its request and responses are left out.
    ``outcome`` is how its session's replay ended, (outcome, reason), when it did not complete.
    ``reason`` is the message of a not comparable verdict's cause, ``cause`` its name,
    ``log_tail`` the SUT's log tail given with it."""
    base, cand = comparison.baseline, comparison.candidate
    changes, changes_omitted = _changes(comparison.diff, redaction)
    noise, noise_omitted = _changes(comparison.noise, redaction)
    request = comparison.request
    cause = comparison.cause
    side = base or cand
    return {
        "id": comparison.id,
        "endpoint": endpoint_template(request, side.codec if side else "", redaction),
        "session": session,
        "number": number,
        "status": comparison.status.value,
        "failed": comparison.failed,
        "reason": redaction.scrub_text(cause.message) if cause else None,
        "cause": cause.cause.value if cause else None,
        "log_tail": redaction.scrub_text(cause.log_tail) if cause and cause.log_tail else None,
        "replay": {"outcome": outcome[0], "reason": redaction.scrub(outcome[1])} if outcome else None,
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
    """The comparisons a reader should see: differences, then not comparable ones, then noise,
    each group in capture order."""
    notable = [
        (key, c) for key, c in run.comparisons.items() if c.status is not ComparisonStatus.SAME or c.noise is not None
    ]
    return sorted(notable, key=lambda item: (_FAILURES_FIRST[item[1].status], item[0]))


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
        shown = {side: _json_text(redaction.scrub(doc[side])) for side in ("old", "new") if side in doc}
        texts = [text for _, text, _ in shown.values()]
        if len(shown) == 2 and None not in texts and max(map(len, texts)) > MAX_VALUE_CHARS:
            doc["old"], doc["new"] = _windowed(*texts)
        else:
            for side, (value, text, strict) in shown.items():
                doc[side] = _bounded(value, text, strict)
        out.append(doc)
    return out, max(0, len(diff.changes) - MAX_CHANGES)


def _json_text(value: object) -> tuple[object, str | None, bool]:
    """``value``, its JSON text (NaN and Infinity spelled out; None when nested too deeply), and
    whether it is strict JSON."""
    try:
        return value, json.dumps(value, ensure_ascii=False, allow_nan=False), True
    except ValueError:
        return value, json.dumps(value, ensure_ascii=False), False
    except RecursionError:
        return value, None, False


def _bounded(value: object, text: str | None, strict: bool) -> object:
    """``value`` as is when small and strict JSON; otherwise its JSON text, cut at
    ``MAX_VALUE_CHARS``."""
    if text is None:
        return "<value not shown: nested too deeply>"
    if strict and len(text) <= MAX_VALUE_CHARS:
        return value
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + f"… ({len(text)} characters)"


def _windowed(old: str, new: str) -> tuple[str, str]:
    """Two long JSON texts shown around their first difference, each with the offsets shown."""
    w = window(old, new, width=MAX_VALUE_CHARS, context=MAX_VALUE_CHARS // 4)
    return (
        f"[characters {w.old_start}-{w.old_end} of {w.old_size}, first difference at {w.at}] {w.old}",
        f"[characters {w.new_start}-{w.new_end} of {w.new_size}, first difference at {w.at}] {w.new}",
    )


def _aborted(session: SessionResult, redaction: Redaction) -> dict:
    return {
        "session": session.session,
        "copy": session.copy,
        "client": str(session.captured_client),
        "outcome": session.outcome.value,
        "reason": redaction.scrub(session.reason),
        "requests_sent": session.requests_sent,
    }
