"""The HTML report: one self-contained file drawn from the report model.

No external resource and no script: the page carries its CSS inline, filters with CSS alone
(radio buttons), and a Content-Security-Policy that forbids every fetch and every script, so a
copy of the file can be opened anywhere and traffic rendered into it cannot run. Every value
from the model is HTML-escaped (``_e``); only this module's own markup is not.

Per differing exchange, the baseline and candidate responses stand side by side; lines that carry
a change are marked: the status line for ``status``/``version``/``reason`` changes, a header's
line for ``headers.<name>``, and for body changes the body lines that differ between the two
sides (a line diff of the shown text). Changes set apart as noise are marked in their own colour.
The findings table leads the page, and identical cards are drawn once with a count
(``html_findings``). Verdicts are told apart by badge and filter: different, not comparable (with
its cause, and the SUT's log tail when one came with it), noise, aborted sessions.
"""

from __future__ import annotations

import difflib
import html
import json
from collections.abc import Iterable
from pathlib import Path

from ..compare import Redaction
from ..model import ReplayRun
from .html_findings import FINDINGS_CSS, anchor, collapse, findings_section, members_note
from .model import build_report

OPEN_FIRST = 20  # failed or not comparable exchanges shown expanded when the page opens
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_FILTERS = (
    ("all", "All"),
    ("different", "Different"),
    ("notcomparable", "Not comparable"),
    ("noise", "Noise"),
    ("aborted", "Aborted"),
)
_STATUS_HEADS = ("status", "version", "reason")

_CSS = """
:root{--bg:#fff;--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--chg:#ffebe9;--chg-bar:#cf222e;
--add:#dafbe1;--noise:#fff8c5;--noise-bar:#bf8700;--head:#f6f8fa;--accent:#0969da}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{padding:16px 24px;border-bottom:1px solid var(--line);background:var(--head)}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:17px;margin:24px 0 4px}
h3{font-size:14px;margin:14px 0 6px}
.verdict{font-size:15px;font-weight:600;margin:4px 0 10px}
.verdict.bad{color:var(--chg-bar)}.verdict.good{color:#1a7f37}
table{border-collapse:collapse;margin:4px 0 8px}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.hot{color:var(--chg-bar);font-weight:600}
code,.code{font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.settings{color:var(--muted);margin:0 0 8px;overflow-wrap:anywhere}
.filter{position:absolute;opacity:0;pointer-events:none}
nav{position:sticky;top:0;z-index:1;background:var(--bg);padding:8px 24px;border-bottom:1px solid var(--line)}
nav label{display:inline-block;padding:4px 12px;margin-right:6px;border:1px solid var(--line);border-radius:16px;
cursor:pointer;user-select:none}
#f-all:checked~nav label[for=f-all],#f-different:checked~nav label[for=f-different],
#f-notcomparable:checked~nav label[for=f-notcomparable],
#f-noise:checked~nav label[for=f-noise],#f-aborted:checked~nav label[for=f-aborted]
{background:var(--accent);border-color:var(--accent);color:#fff}
#f-different:checked~main .exchange:not(.failed),#f-noise:checked~main .exchange:not(.noisy),
#f-notcomparable:checked~main .exchange:not(.not-comparable),
#f-aborted:checked~main .exchange:not(.aborted),#f-different:checked~main .aborted-block,
#f-notcomparable:checked~main .aborted-block,#f-noise:checked~main .aborted-block{display:none}
main{padding:0 24px 40px}
details.exchange{border:1px solid var(--line);border-radius:6px;margin:8px 0}
details.exchange>summary{padding:6px 10px;cursor:pointer;background:var(--head);border-radius:6px}
details.exchange[open]>summary{border-bottom:1px solid var(--line);border-radius:6px 6px 0 0}
.exchange-body{padding:4px 12px 12px}
.meta{color:var(--muted);margin-left:8px}
.badge{display:inline-block;font-size:12px;font-weight:600;padding:0 8px;border-radius:10px;margin-right:4px;
border:1px solid transparent}
.badge.different{background:var(--chg);color:var(--chg-bar);border-color:#ffcecb}
.badge.not_comparable{background:#ddf4ff;color:#0550ae;border-color:#b6e3ff}
.badge.same,.badge.count{background:var(--head);color:var(--muted);border-color:var(--line)}
.badge.noise{background:var(--noise);color:#7d4e00;border-color:#eed888}
.badge.aborted{background:#fff1e5;color:#953800;border-color:#ffd8b5}
.sides{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.side{min-width:0}
.code{border:1px solid var(--line);border-radius:6px;padding:6px 0;background:#fff;overflow-x:auto;
max-height:640px;overflow-y:auto}
.ln{white-space:pre-wrap;overflow-wrap:anywhere;padding:0 10px;min-height:1.45em;border-left:3px solid transparent}
.ln.chg{background:var(--chg);border-left-color:var(--chg-bar)}
.ln.noise{background:var(--noise);border-left-color:var(--noise-bar)}
.ln.note{color:var(--muted);font-style:italic}
.changes td.old{background:var(--chg)}.changes td.new{background:var(--add)}
.changes.noise td.old,.changes.noise td.new{background:var(--noise)}
.changes td{font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:pre-wrap;
overflow-wrap:anywhere;max-width:520px}
.note{color:var(--muted)}
details.request{margin:10px 0}details.request>summary{cursor:pointer;font-weight:600}
details.request .code{margin-top:6px}
.empty{color:var(--muted);font-style:italic}
"""


def write_html_report(path: str | Path, runs: Iterable[ReplayRun], redaction: Redaction | None = None) -> Path:
    """Write the report of ``runs`` to ``path`` (parents created) as one HTML file; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(build_report(runs, redaction)), encoding="utf-8")
    return path


def render_html(report: dict) -> str:
    """The page for a report model (``model.build_report``)."""
    totals = report["totals"]
    failed = totals["different"]
    counts = {
        "all": sum(len(r["exchanges"]) for r in report["runs"]),
        "different": failed,
        "notcomparable": totals["not_comparable"],
        "noise": totals["noise"],
        "aborted": totals["aborted_sessions"],
    }
    cards, anchors = [], {}
    for index, run in enumerate(report["runs"]):
        drawn, where = collapse(index, run["exchanges"])
        cards.append(drawn)
        anchors.update(where)
    title = f"tcpcopy report: {failed} difference(s)" if failed else "tcpcopy report: no differences"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}{FINDINGS_CSS}</style></head><body>",
        "<header><h1>pytest-tcpcopy report</h1>",
        _verdict(totals, failed),
        _summary_table(report),
        findings_section(report["findings"], anchors),
        "</header>",
    ]
    for key, _ in _FILTERS:
        checked = " checked" if key == "all" else ""
        out.append(f'<input type="radio" name="filter" class="filter" id="f-{key}"{checked}>')
    out.append("<nav>")
    for key, label in _FILTERS:
        out.append(f'<label for="f-{key}">{label} ({counts[key]})</label>')
    out.append("</nav><main>")
    if not report["runs"]:
        out.append('<p class="empty">No replay ran.</p>')
    opened = 0
    for index, run in enumerate(report["runs"]):
        out.append(_run_head(run))
        if not run["totals"]["exchanges"]:
            out.append('<p class="empty">No exchange was compared.</p>')
        elif not run["exchanges"]:
            out.append('<p class="empty">Every exchange matched its baseline.</p>')
        for exchange, members in cards[index]:
            expand = exchange["status"] != "same" and opened < OPEN_FIRST
            opened += expand
            out.append(_exchange(index, exchange, expand, members))
        out.append("</section>")
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


def _verdict(totals: dict, failed: int) -> str:
    judged = f"{totals['exchanges']} exchange{'' if totals['exchanges'] == 1 else 's'}"
    parts = [f"{failed} of {judged} differ" if failed else f"no differences in {judged}"]
    if totals["not_comparable"]:
        parts.append(f"{totals['not_comparable']} not comparable")
    if totals["noise"]:
        parts.append(f"{totals['noise']} with noise")
    if totals["aborted_sessions"]:
        parts.append(f"{totals['aborted_sessions']} of {totals['sessions']} sessions aborted")
    bad = failed or totals["not_comparable"] or totals["aborted_sessions"]
    return f'<p class="verdict {"bad" if bad else "good"}">{_e(" · ".join(parts))}</p>'


_COLUMNS = ("sessions", "exchanges", "same", "different", "not_comparable", "noise", "aborted_sessions")
_HOT = ("different", "not_comparable", "aborted_sessions")


def _summary_table(report: dict) -> str:
    head = "".join(f'<th class="num">{_e(c.replace("_sessions", "").replace("_", " "))}</th>' for c in _COLUMNS)
    rows = [f"<table><tr><th>capture</th>{head}</tr>"]
    entries = [(Path(r["capture"]).name, r["totals"]) for r in report["runs"]]
    if len(entries) > 1:
        entries.append(("total", report["totals"]))
    for name, totals in entries:
        cells = "".join(
            f'<td class="num{" hot" if c in _HOT and totals[c] else ""}">{totals[c]}</td>' for c in _COLUMNS
        )
        rows.append(f"<tr><td>{_e(name)}</td>{cells}</tr>")
    rows.append("</table>")
    return "".join(rows)


def _run_head(run: dict) -> str:
    out = [f'<section class="run"><h2>{_e(Path(run["capture"]).name)}</h2>',
           f'<p class="settings">{_e(run["settings"])}</p>']  # fmt: skip
    if run["aborted"]:
        out.append('<div class="aborted-block"><h3>Aborted sessions</h3><table>')
        out.append("<tr><th>session</th><th>copy</th><th>client</th><th>outcome</th><th>reason</th>"
                   '<th class="num">requests sent</th></tr>')  # fmt: skip
        for s in run["aborted"]:
            out.append(
                f'<tr><td class="num">{s["session"]}</td><td class="num">{s["copy"]}</td><td>{_e(s["client"])}</td>'
                f'<td>{_e(s["outcome"])}</td><td>{_e(s["reason"])}</td><td class="num">{s["requests_sent"]}</td></tr>'
            )
        out.append("</table>")
        if run["aborted_omitted"]:
            out.append(f'<p class="note">… and {run["aborted_omitted"]} more aborted sessions</p>')
        out.append("</div>")
    for note in run["notes"]:
        out.append(f'<p class="note">{_e(note)}</p>')
    if run["sut_logs"]:
        out.append('<details><summary>SUT logs (tail)</summary><div class="code">')
        out.extend(f'<div class="ln">{_e(line)}</div>' for line in run["sut_logs"].splitlines())
        out.append("</div></details>")
    return "\n".join(out)


def _exchange(run_index: int, x: dict, expand: bool, members: list[dict]) -> str:
    """One exchange's card; ``members`` are the identical exchanges it stands for."""
    aborted = x["replay"] is not None and x["replay"]["outcome"] != "complete"
    flags = (("failed", x["failed"]), ("not-comparable", x["status"] == "not_comparable"),
             ("noisy", bool(x["noise"])), ("aborted", aborted))  # fmt: skip
    classes = ["exchange"] + [c for c, on in flags if on]
    badges = f'<span class="badge {x["status"]}">{_e(x["status"].replace("_", " "))}</span>'
    if members:
        badges += f'<span class="badge count">×{len(members) + 1}</span>'
    if x["noise"]:
        badges += '<span class="badge noise">noise</span>'
    if aborted:
        badges += '<span class="badge aborted">session aborted</span>'
    count = len(x["changes"]) + x["changes_omitted"]
    meta = f"session {x['session']} · exchange {x['number']}" + (f" · {count} change(s)" if count else "")
    out = [
        f'<details class="{" ".join(classes)}" id="{anchor(run_index, x)}"{" open" if expand else ""}>',
        f'<summary>{badges}<code>{_e(x["id"])}</code><span class="meta">{meta}</span></summary>',
        '<div class="exchange-body">',
    ]
    if members:
        out.append(members_note(members))
    if x["reason"]:
        out.append(f'<p class="note">not comparable: {_e(x["reason"])}</p>')
    if x["log_tail"]:
        out.append('<details><summary>SUT log (tail)</summary><div class="code">')
        out.extend(f'<div class="ln">{_e(line)}</div>' for line in x["log_tail"].splitlines())
        out.append("</div></details>")
    if aborted:
        out.append(f'<p class="note">session replay: {_e(x["replay"]["outcome"])} ({_e(x["replay"]["reason"])})</p>')
    if x["changes"]:
        out.append(_changes_table("Changes", x["changes"], x["changes_omitted"], ""))
    if x["noise"]:
        out.append(_changes_table("Noise (the baseline differs from itself here too)", x["noise"],
                                  x["noise_omitted"], " noise"))  # fmt: skip
    if not x["detailed"]:
        out.append('<p class="note">Request and responses not shown: the report details the first '
                   "exchanges of a run only.</p>")  # fmt: skip
    else:
        start = x["request"]["start_line"] or f"{x['request']['kind']} message"
        out.append(f'<details class="request"><summary>Request: <code>{_e(start)}</code></summary>')
        out.append(_code(_message_lines(x["request"], None)) + "</details>")
        base, cand = _marked_sides(x)
        out.append('<div class="sides">')
        out.append(f'<div class="side"><h3>Baseline</h3>{_code(base)}</div>')
        out.append(f'<div class="side"><h3>Candidate</h3>{_code(cand)}</div>')
        out.append("</div>")
    out.append("</div></details>")
    return "\n".join(out)


def _changes_table(title: str, changes: list[dict], omitted: int, kind: str) -> str:
    head = "<tr><th>path</th><th>change</th><th>baseline</th><th>candidate</th></tr>"
    rows = [f"<h3>{_e(title)}</h3>", f'<table class="changes{kind}">{head}']
    for change in changes:
        old = _cell(change, "old", "added")
        new = _cell(change, "new", "removed")
        rows.append(f"<tr><td>{_e(change['path'])}</td><td>{_e(change['kind'])}</td>{old}{new}</tr>")
    rows.append("</table>")
    if omitted:
        rows.append(f'<p class="note">… and {omitted} more</p>')
    return "".join(rows)


def _cell(change: dict, side: str, absent_when: str) -> str:
    """The ``old`` or ``new`` cell of a change: empty on the side that lacks the value."""
    if change["kind"] == absent_when:
        return "<td></td>"
    text = "(redacted)" if change.get("redacted") else json.dumps(change[side], ensure_ascii=False)
    return f'<td class="{side}">{_e(text)}</td>'


# -- the two sides, with changed lines marked -------------------------------------------------

Line = tuple[str, str]  # (text, css class: "" | "chg" | "noise" | "note")


def _marked_sides(x: dict) -> tuple[list[Line], list[Line]]:
    real = [c["path"] for c in x["changes"]]
    noise = [c["path"] for c in x["noise"]]

    def mark(section: str, name: str | None = None) -> str:
        for paths, css in ((real, "chg"), (noise, "noise")):
            if any(_under(p, section, name) for p in paths):
                return css
        return ""

    sides = []
    for message in (x["baseline"], x["candidate"]):
        sides.append(_message_lines(message, mark) if message else [("(no such exchange on this side)", "note")])
    body_mark = mark("body")
    if body_mark and x["baseline"] and x["candidate"]:
        _mark_body_diff(sides[0], sides[1], body_mark)
    return sides[0], sides[1]


def _under(path: str, section: str, name: str | None) -> bool:
    """Whether a change's path (``headers.x-api``, ``body.items[2]``, ``status``) is in a place."""
    if name is None:
        return path == section or path.startswith((section + ".", section + "["))
    for prefix in (f"{section}.{name}", f"{section}['{name}']"):
        if path == prefix or path.startswith((prefix + ".", prefix + "[")):
            return True
    return False


def _message_lines(message: dict, mark) -> list[Line]:
    """The message as text lines: start line, interim responses, headers, blank, body, trailers.

    Body lines carry the class ``body`` until ``_mark_body_diff`` marks them.
    """
    mark = mark or (lambda section, name=None: "")
    if message["kind"] == "none":
        return [("(no response)", "note")] + ([(message["note"], "note")] if message.get("note") else [])
    lines: list[Line] = []
    if message.get("note"):
        lines.append((message["note"], "note"))
    if message["start_line"] is not None:
        head = next((m for m in (mark(s) for s in _STATUS_HEADS) if m), "")
        lines.append((message["start_line"], head))
    for line in message["interim"]:
        lines.append((line, mark("interim")))
    for name, value in message["headers"]:
        lines.append((f"{name}: {value}", mark("headers", name.lower())))
    if message["kind"] == "http":
        lines.append(("", ""))
    lines.extend(_body_lines(message["body"]))
    if message["trailers"]:
        lines.append(("", ""))
        for name, value in message["trailers"]:
            lines.append((f"{name}: {value}", mark("trailers", name.lower())))
    return lines


def _body_lines(body: dict) -> list[Line]:
    if body["kind"] == "empty":
        lines = [("(empty body)", "note")]
    elif body["text"] is None:
        lines = [(f"({body['kind']} body: {body['size']} bytes, sha256 {body['sha256']})", "note")]
    else:
        lines = [(line, "body") for line in body["text"].split("\n")]
    if body["note"]:
        lines.append((f"({body['note']})", "note"))
    return lines


def _mark_body_diff(base: list[Line], cand: list[Line], css: str) -> None:
    """Mark, on both sides, the body lines the line diff finds different."""
    b_at = [i for i, (_, c) in enumerate(base) if c == "body"]
    c_at = [i for i, (_, c) in enumerate(cand) if c == "body"]
    matcher = difflib.SequenceMatcher(None, [base[i][0] for i in b_at], [cand[i][0] for i in c_at], autojunk=False)
    for tag, b1, b2, c1, c2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for i in b_at[b1:b2]:
            base[i] = (base[i][0], css)
        for i in c_at[c1:c2]:
            cand[i] = (cand[i][0], css)


def _code(lines: list[Line]) -> str:
    rows = []
    for text, css in lines:
        css = "" if css == "body" else css
        rows.append(f'<div class="ln{" " + css if css else ""}">{_e(text)}</div>')
    return '<div class="code">' + "".join(rows) + "</div>"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
