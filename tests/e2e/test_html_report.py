"""The HTML report in a real browser (headless Chromium): from a real replay of the example
service (v2 against v1 side by side), it loads without console errors and shows the regression;
hostile traffic stays text; the CSS-only filters hide what they should."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import require_root, require_tools

from pytest_tcpcopy.compare import (
    Cause,
    DiffConfig,
    Exchange,
    HttpRequest,
    HttpResponse,
    ReplayProblem,
    compare_sessions,
)
from pytest_tcpcopy.model import CaptureIndex, ReplayRun
from pytest_tcpcopy.replay.results import ReplayResult, SessionResult
from pytest_tcpcopy.report import write_html_report, write_json_report
from pytest_tcpcopy.report.html_report import render_html
from pytest_tcpcopy.report.model import build_report
from pytest_tcpcopy.runner import TcpcopyRunner
from pytest_tcpcopy.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "jsonservice"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
]  # fmt: skip
CONSOLE = re.compile(r":CONSOLE[^\]]*\]\s*(.*)")


def chromium(page: Path, tmp: Path, *actions: str) -> tuple[str, list[str]]:
    """Open ``page`` (a local file) in headless Chromium; return stdout and its console messages."""
    profile = tmp / "chromium-profile"
    profile.mkdir(exist_ok=True)
    done = subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *actions, page.resolve().as_uri()],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, [m.group(1) for m in map(CONSOLE.search, done.stderr.splitlines()) if m]


@pytest.fixture(scope="module")
def replay_run() -> ReplayRun:
    """The example's regression, found for real: v2 replayed beside two v1 instances."""
    require_root()
    require_tools("ip", "iptables", "chromium")
    settings = Settings(backend="netns").with_overrides(
        {"pcap": str(EXAMPLE / "traffic.pcap.gz"), "port": 8080,
         "command": f"env JSONSERVICE_RELEASE=v2 python3 {EXAMPLE / 'app.py'}",
         "baseline": f"command:python3 {EXAMPLE / 'app.py'}", "noise": True},
        "test_html_report",
    )  # fmt: skip
    return TcpcopyRunner(settings, log=lambda message: None).replay()


def test_report_of_a_real_replay_loads_and_shows_the_regression(replay_run, tmp_path):
    differences = replay_run.differences
    assert differences and all(c.id.startswith("s") and "/api/users/" in c.id for c in differences)
    page = write_html_report(tmp_path / "report.html", [replay_run])
    dom, console = chromium(page, tmp_path, "--dump-dom")
    assert console == []
    assert f"{len(differences)} of {replay_run.verdicts.total} exchanges differ" in dom
    for comparison in differences:
        assert f">{comparison.id}</code>" in dom  # on its card, or listed on the identical card drawn for it
    finding = f'<td class="num">{len(differences)}</td><td><span class="badge different">different</span></td>'
    assert finding + "<td><code>GET /api/users/{id}</code></td><td><code>body.plan</code></td>" in dom
    cards = re.findall(r'<details class="exchange failed[^"]*" id="[^"]+"', dom)
    assert 1 <= len(cards) < len(differences)  # identical cards are drawn once
    marked = re.findall(r'<div class="ln chg">([^<]*)</div>', dom)
    assert marked.count('  "plan": "premium",') == len(cards)
    assert marked.count('  "plan": "free",') == len(cards)
    assert len(marked) == 2 * len(cards)

    shot = tmp_path / "report.png"
    _, console = chromium(page, tmp_path, "--window-size=1400,1600", f"--screenshot={shot}")
    assert console == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = ROOT / ".pytest_cache" / "tcpcopy-report"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, keep / "report.png")  # for a human to look at
    shutil.copy(page, keep / "report.html")


def test_json_report_of_a_real_replay_matches_the_run(replay_run, tmp_path):
    doc = json.loads(write_json_report(tmp_path / "report.json", [replay_run]).read_text())
    totals = doc["runs"][0]["totals"]
    assert totals["exchanges"] == replay_run.verdicts.total == len(replay_run.comparisons)  # all kept: a small run
    assert totals["different"] == len(replay_run.differences)
    changed = {x["id"] for x in doc["runs"][0]["exchanges"] if x["changes"]}
    assert changed == {c.id for c in replay_run.differences}
    for x in doc["runs"][0]["exchanges"]:
        assert x["changes"] == [{"path": "body.plan", "kind": "changed", "old": "premium", "new": "free"}]


# -- pages built from compared exchanges (no replay needed) --------------------------------------


def run_of(sessions: dict[int, tuple], outcomes: dict[int, str] | None = None,
           problems: dict[int, list[ReplayProblem]] | None = None) -> ReplayRun:  # fmt: skip
    outcomes, problems = outcomes or {}, problems or {}
    settings = Settings().with_overrides({"pcap": "hostile.pcap", "port": 80, "command": "sut"}, "test")
    index = CaptureIndex(Path("hostile.pcap"), len(sessions), frozenset(sessions), 0, {})
    results = [SessionResult.from_json({"session": s, "copy": 0, "captured_client": "10.0.0.1:1", "reason": "x",
                                        "outcome": outcomes.get(s, "complete"), "requests_sent": 1})
               for s in sessions]  # fmt: skip
    run = ReplayRun(index, settings, ReplayResult(results, 0.0))
    for s, sides in sessions.items():
        second = sides[2] if len(sides) > 2 else None
        judged = compare_sessions(sides[0], sides[1], DiffConfig(), second, candidate_problems=problems.get(s, ()))
        outcome = outcomes.get(s, "complete")
        for comparison in judged:
            run.verdicts.add(comparison, outcome=None if outcome == "complete" else (outcome, "x"))
    for result in results:
        run.add_aborted(result, 200)
    return run


def http(session: int, target: str, body: bytes, content_type: str = "application/json") -> Exchange:
    request = HttpRequest("GET", target, "HTTP/1.1", (("Host", "sut"),), b"")
    response = HttpResponse("HTTP/1.1", 200, "OK", (("Content-Type", content_type),), body)
    return Exchange(session, 0, request, response, "http")


def test_hostile_traffic_renders_as_text_in_the_browser(tmp_path):
    require_tools("chromium")
    hostile = (
        b"<script>document.title='pwned';console.error('ran')</script><img src=x onerror=\"document.title='img'\">"
    )
    run = run_of({0: ([http(0, "/page", b"<p>ok</p>", "text/html")], [http(0, "/page", hostile, "text/html")])})
    page = write_html_report(tmp_path / "hostile.html", [run])
    dom, console = chromium(page, tmp_path, "--dump-dom")
    assert console == []
    assert "<title>tcpcopy report: 1 difference(s)</title>" in dom
    assert "<script" not in dom and "<img" not in dom
    assert "&lt;script&gt;document.title='pwned';console.error('ran')&lt;/script&gt;" in dom


FILTER_PROBE = """<script>
document.body.setAttribute("data-visible", Array.from(document.querySelectorAll("details.exchange"))
  .filter(e => getComputedStyle(e).display !== "none").map(e => e.id).join(" "));
document.body.setAttribute("data-aborted-block", Array.from(document.querySelectorAll(".aborted-block"))
  .map(e => getComputedStyle(e).display).join(" "));
</script>"""


@pytest.mark.parametrize(
    ("choice", "visible", "aborted_block"),
    [
        ("all", "r0-s0-n0 r0-s2-n0 r0-s3-n0 r0-s1-n0", "block"),
        ("different", "r0-s0-n0 r0-s2-n0", "none"),
        ("notcomparable", "r0-s3-n0", "none"),
        ("noise", "r0-s1-n0", "none"),
        ("aborted", "r0-s2-n0", "block"),
    ],
)
def test_filters_show_only_their_exchanges(tmp_path, choice, visible, aborted_block):
    """The page's own CSS decides; a probe script (this test's copy only, without the CSP) reads
    which exchanges the browser displays with one filter chosen."""
    require_tools("chromium")
    changed = ([http(0, "/a", b'{"v": 1}')], [http(0, "/a", b'{"v": 2}')])
    noisy = ([http(1, "/t", b'{"t": 1}')], [http(1, "/t", b'{"t": 3}')], [http(1, "/t", b'{"t": 2}')])
    aborted = ([http(2, "/b", b'{"v": 1}')], [http(2, "/b", b'{"v": 9}')])
    slow = ([http(3, "/c", b'{"v": 1}')], [])
    cut = {3: [ReplayProblem(Cause.SUT_TOO_SLOW, "0 of 8 bytes after 5 s")]}
    text = render_html(build_report([run_of({0: changed, 1: noisy, 2: aborted, 3: slow}, {2: "timeout"}, cut)]))
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    text = text.replace(' id="f-all" checked>', ' id="f-all">').replace(
        f' id="f-{choice}">', f' id="f-{choice}" checked>'
    )
    assert text.count(" checked>") == 1
    page = tmp_path / "filters.html"
    page.write_text(text.replace("</main>", "</main>" + FILTER_PROBE), encoding="utf-8")
    dom, console = chromium(page, tmp_path, "--dump-dom")
    assert console == []
    assert f'data-visible="{visible}"' in dom
    assert f'data-aborted-block="{aborted_block}"' in dom
