"""The HTML page: self-contained, everything escaped, filters, changed lines marked."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from reportkit import exchange, make_run, regression_run, request, response, user

from pytest_tcpcopy.report import build_report, render_html, write_html_report

HOSTILE = b"<script>document.title='pwned'</script><img src=x onerror=alert(1)>"


class Page(HTMLParser):
    """Tags, attributes and the text of every ``.ln`` line with its classes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.lines: list[tuple[set, str]] = []
        self._line: list | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        classes = set((attrs.get("class") or "").split())
        if tag == "div" and "ln" in classes:
            self._line = [classes - {"ln"}, ""]

    def handle_data(self, data):
        if self._line is not None:
            self._line[1] += data

    def handle_endtag(self, tag):
        if tag == "div" and self._line is not None:
            self.lines.append((self._line[0], self._line[1]))
            self._line = None

    def marked(self, css: str) -> list[str]:
        return [text for classes, text in self.lines if css in classes]


def hostile_run():
    evil = response(HOSTILE, content_type="text/html", headers=(("X-Evil", '"><script>alert(2)</script>'),))
    base = exchange(
        0, 0, request('/x?q="><script>alert(3)</script>'), response(b"<p>fine</p>", content_type="text/html")
    )
    return make_run({0: ([base], [exchange(0, 0, base.request, evil)])})


def test_page_is_self_contained_and_forbids_scripts_and_fetches():
    text = render_html(build_report([regression_run()]))
    page = Page(text)
    tags = {tag for tag, _ in page.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "form"}
    assert not [attrs for _, attrs in page.tags if {"src", "action"} & set(attrs)]
    assert all(attrs["href"].startswith("#") for _, attrs in page.tags if "href" in attrs)  # links within the page
    assert "http://" not in text and "https://" not in text and "url(" not in text
    csp = [a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp == ["default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"]


def test_traffic_renders_as_text_never_as_markup():
    text = render_html(build_report([hostile_run()]))
    page = Page(text)
    assert [tag for tag, _ in page.tags if tag in ("script", "img")] == []
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in text
    shown = "\n".join(t for _, t in page.lines)
    assert HOSTILE.decode() in shown
    assert 'X-Evil: "><script>alert(2)</script>' in shown
    assert 'GET /x?q="><script>alert(3)</script> HTTP/1.1' in shown


def test_summary_filters_and_exchange_cards():
    report = build_report([regression_run()])
    page = Page(render_html(report))
    radios = [a["id"] for t, a in page.tags if t == "input" and a.get("type") == "radio"]
    assert radios == ["f-all", "f-different", "f-notcomparable", "f-noise", "f-aborted"]
    labels = [a["for"] for t, a in page.tags if t == "label"]
    assert labels == radios
    cards = {
        a["id"]: set(a["class"].split()) for t, a in page.tags if t == "details" and "exchange" in a.get("class", "")
    }
    assert cards == {"r0-s1-n0": {"exchange", "failed"}, "r0-s2-n0": {"exchange", "not-comparable", "aborted"}}


def test_changed_lines_are_marked_on_both_sides_and_nothing_else():
    page = Page(render_html(build_report([regression_run()])))
    assert page.marked("chg") == ['  "plan": "premium"', '  "plan": "free"']
    assert "X-Service-Version: 2" in [t for _, t in page.lines]  # shown, but an added header is no change


def test_header_status_and_noise_lines_are_marked():
    base = exchange(0, 0, request(), response(user("premium", ', "ts": 1'), headers=(("X-Api", "1"),)))
    second = exchange(0, 0, request(), response(user("premium", ', "ts": 2'), headers=(("X-Api", "1"),)))
    cand = exchange(0, 0, request(), response(user("premium", ', "ts": 3'), 500, headers=(("X-Api", "2"),)))
    page = Page(render_html(build_report([make_run({0: ([base], [cand], [second])})])))
    assert page.marked("chg") == ["HTTP/1.1 200 OK", "X-Api: 1", "HTTP/1.1 500 OK", "X-Api: 2"]
    assert page.marked("noise") == ['  "ts": 1', '  "ts": 3']


def test_no_runs_and_no_differences_say_so(tmp_path):
    assert "No replay ran." in write_html_report(tmp_path / "empty.html", []).read_text()
    same = exchange(0, 0, request("/health"), response(b'{"ok": true}'))
    text = render_html(build_report([make_run({0: ([same], [same])})]))
    assert "no differences in 1 exchange" in text and "Every exchange matched its baseline." in text
    nothing = render_html(build_report([make_run({0: ([], [])})]))
    assert "No exchange was compared." in nothing


def test_changes_table_leaves_the_absent_side_empty_and_hides_secrets():
    base = exchange(0, 0, request(), response(b'{"token": "t-1", "gone": 1}', headers=(("X-Api", "1"),)))
    cand = exchange(0, 0, request(), response(b'{"token": "t-2", "new": 2}'))
    text = render_html(build_report([make_run({0: ([base], [cand])})]))
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>(<td[^>]*>[^<]*</td>)(<td[^>]*>[^<]*</td>)</tr>", text)
    assert rows == [
        ("headers.x-api", "removed", '<td class="old">&quot;1&quot;</td>', "<td></td>"),
        ("body.gone", "removed", '<td class="old">1</td>', "<td></td>"),
        ("body.new", "added", "<td></td>", '<td class="new">2</td>'),
        ("body.token", "changed", '<td class="old">(redacted)</td>', '<td class="new">(redacted)</td>'),
    ]
    assert "t-1" not in text and "t-2" not in text
