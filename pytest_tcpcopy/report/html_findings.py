"""The HTML report's findings table, and identical exchange cards drawn once.

Findings (``model.findings_model``) lead the page: one row per finding (exchanges, verdict,
endpoint, path, change or cause, the most frequent value pairs, a suggested ignore path), each
expanding to its example exchanges, linked to their cards. Exchange cards that would show the same
thing (verdict, endpoint, changes, noise, cause, replay outcome) are drawn once with a count and
the ids of the others (``collapse``); a link to any of them leads to that card.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

MAX_ROWS = 500  # findings listed on the page
MAX_MEMBER_IDS = 100  # ids of identical exchanges listed on a collapsed card
FINDINGS_CSS = """
.findings td{font-size:13px}.findings td.ex ul{margin:4px 0 0;padding-left:18px}
.findings td.values div{font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.findings a{color:var(--accent)}.members{margin:4px 0 8px;overflow-wrap:anywhere}
.members code{margin-right:6px}
"""

Card = tuple[dict, list[dict]]  # an exchange drawn, and the identical ones it stands for


def anchor(run_index: int, exchange: dict) -> str:
    """The id of an exchange's card on the page."""
    return f"r{run_index}-s{exchange['session']}-n{exchange['number']}"


def collapse(run_index: int, exchanges: list[dict]) -> tuple[list[Card], dict[str, str]]:
    """The cards to draw for a run's exchanges (first of each identical group, in order) and,
    for every exchange, the anchor of the card that shows it."""
    groups: dict[str, list[dict]] = {}
    for exchange in exchanges:
        groups.setdefault(_signature(exchange), []).append(exchange)
    cards = [(members[0], members[1:]) for members in groups.values()]
    anchors = {anchor(run_index, m): anchor(run_index, members[0]) for members in groups.values() for m in members}
    return cards, anchors


def findings_section(findings: list[dict], anchors: dict[str, str]) -> str:
    """The findings table (empty text when there are none)."""
    if not findings:
        return ""
    captures = len({f["run"] for f in findings}) > 1
    head = ('<tr><th class="num">exchanges</th><th>verdict</th>' + ("<th>capture</th>" if captures else "")
            + "<th>endpoint</th><th>path</th><th>change</th><th>values</th><th>examples</th></tr>")  # fmt: skip
    out = ['<section class="findings"><h2>Findings</h2><table class="findings">', head]
    for finding in findings[:MAX_ROWS]:
        out.append(_row(finding, anchors, captures))
    out.append("</table>")
    if len(findings) > MAX_ROWS:
        rest = findings[MAX_ROWS:]
        out.append(f'<p class="note">… and {len(rest)} more findings ({sum(f["count"] for f in rest)} exchanges)</p>')
    out.append("</section>")
    return "\n".join(out)


def members_note(members: list[dict]) -> str:
    """The line of a collapsed card naming the identical exchanges it stands for."""
    shown = "".join(f"<code>{_e(m['id'])}</code>" for m in members[:MAX_MEMBER_IDS])
    more = f" … and {len(members) - MAX_MEMBER_IDS} more" if len(members) > MAX_MEMBER_IDS else ""
    return f'<p class="members">The same in {len(members)} more exchange(s): {shown}{_e(more)}</p>'


def _row(finding: dict, anchors: dict[str, str], captures: bool) -> str:
    status = finding["status"]
    change = finding["message"] if finding["path"] is None else finding["change"]
    values = "".join(
        f"<div>{_e(v['old'] if v['old'] is not None else '-')} → {_e(v['new'] if v['new'] is not None else '-')}"
        f" ({v['count']})</div>"
        for v in finding["values"]
    )
    if finding["values_omitted"]:
        values += f'<div class="note">… {finding["values_omitted"]} more exchange(s) with other values</div>'
    suggested = finding["suggested_ignore"]
    if suggested:
        values += f'<div class="note">looks volatile: ignore path <code>{_e(suggested["path"])}</code></div>'
    links = "".join(
        f'<li><a href="#{_e(_card(finding, x, anchors))}"><code>{_e(x["exchange"])}</code></a></li>'
        for x in finding["examples"]
    )
    links += "".join(f'<li><a href="{_e(_uri(readme))}">reproducer</a></li>' for readme in finding.get("reproducers", ()))
    examples = (f'<details><summary>{len(finding["examples"])} of {finding["count"]}</summary><ul>{links}</ul>'
                "</details>")  # fmt: skip
    badge = f'<span class="badge {_e(status)}">{_e(status.replace("_", " "))}</span>'
    capture = f'<td>{_e(finding["capture"])}</td>' if captures else ""
    return (
        f'<tr><td class="num">{finding["count"]}</td><td>{badge}</td>{capture}'
        f'<td><code>{_e(finding["endpoint"])}</code></td><td><code>{_e(finding["path"] or "-")}</code></td>'
        f'<td>{_e(change)}</td><td class="values">{values}</td><td class="ex">{examples}</td></tr>'
    )


def _card(finding: dict, example: dict, anchors: dict[str, str]) -> str:
    """The anchor of the card that shows ``example`` (the card of its identical group)."""
    own = anchor(finding["run"], example)
    return anchors.get(own, own)


def _signature(exchange: dict) -> str:
    aborted = exchange["replay"] is not None and exchange["replay"]["outcome"] != "complete"
    parts = [exchange["status"], exchange["endpoint"], exchange["changes"], exchange["changes_omitted"],
             exchange["noise"], exchange["noise_omitted"], exchange["reason"], aborted]  # fmt: skip
    return json.dumps(parts, sort_keys=True, default=str)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _uri(path: str) -> str:
    """A link to a reproducer's README (absolute: the report may be opened from anywhere)."""
    return Path(path).resolve().as_uri()
