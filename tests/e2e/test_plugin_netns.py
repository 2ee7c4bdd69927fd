"""The plugin end to end on the netns backend: the example capture replayed into v2 (candidate)
beside v1 (baseline), one item per exchange, and exactly v2's regression failing."""

from __future__ import annotations

import json
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import require_root, require_tools

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jsonservice"
APP = f"{sys.executable} {EXAMPLE / 'app.py'}"
V1, V2 = f"env JSONSERVICE_RELEASE=v1 {APP}", f"env JSONSERVICE_RELEASE=v2 {APP}"
REGRESSED = {"GET /api/users/2", "GET /api/users/5", "GET /api/users/7"}


@pytest.fixture(autouse=True)
def _prerequisites(pytester):
    require_root()
    require_tools("ip", "iptables", "ethtool")
    # The capture beside the tests, as a user keeps it (the example's folder has a conftest.py of
    # its own, which collecting the capture there would load).
    shutil.copy(EXAMPLE / "traffic.pcap.gz", pytester.path / "traffic.pcap.gz")
    pytester.makeini("[pytest]\ntcpcopy_backend = netns\ntcpcopy_port = 8080\ntcpcopy_pcap = traffic.pcap.gz\n")


def _failed_exchanges(result) -> set[str]:
    return {line.split("::", 1)[1].split(" - ")[0] for line in result.stdout.lines if line.startswith("FAILED ")}


def test_exactly_the_regression_fails(pytester):
    result = pytester.runpytest("--tcpcopy-command", V2, "--tcpcopy-baseline", f"command:{V1}",
                                "--junitxml", "junit.xml", "-p", "no:cacheprovider")  # fmt: skip
    result.assert_outcomes(failed=15, passed=39)
    failed = _failed_exchanges(result)
    assert {name.split("-", 1)[1] for name in failed} == REGRESSED
    out = result.stdout.str()
    assert "body.plan: 'premium' -> 'free'" in out
    assert "X-Service-Version" not in out  # the harmless new header is not a difference
    cases = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    assert sum(1 for case in cases if case.find("failure") is not None) == 15


def test_the_same_release_passes_against_production_and_k_selects_traffic(pytester):
    result = pytester.runpytest("--tcpcopy-command", V1, "-k", "users", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] > 15 and "failed" not in outcomes and outcomes["deselected"] > 0


def test_last_failed_and_exit_first_work_on_traffic(pytester):
    first = pytester.runpytest("--tcpcopy-command", V2, "--tcpcopy-baseline", f"command:{V1}")
    first.assert_outcomes(failed=15, passed=39)
    again = pytester.runpytest("--tcpcopy-command", V2, "--tcpcopy-baseline", f"command:{V1}", "--lf")
    again.assert_outcomes(failed=15)
    fixed = pytester.runpytest("--tcpcopy-command", V1, "--tcpcopy-baseline", f"command:{V1}", "--lf")
    fixed.assert_outcomes(passed=15)
    stop = pytester.runpytest("--tcpcopy-command", V2, "--tcpcopy-baseline", f"command:{V1}", "-x", "-p", "no:cacheprovider")
    assert stop.parseoutcomes()["failed"] == 1
    assert _failed_exchanges(stop) == {"s0001-GET /api/users/2"}  # the first regression in capture order


def test_recorded_baseline_is_written_then_used_and_never_pruned(pytester):
    record = pytester.path / "recorded"
    update = pytester.runpytest("--tcpcopy-command", V1, "--tcpcopy-baseline", f"dir:{record}",
                                "--tcpcopy-update-baseline", "-p", "no:cacheprovider")  # fmt: skip
    update.assert_outcomes(passed=54)  # an update run records, and passes
    update.stdout.fnmatch_lines([f"recorded baseline {record / 'traffic.pcap.gz'}: 30 written, 0 unchanged, "
                                 "0 removed"])  # fmt: skip
    files = sorted((record / "traffic.pcap.gz").glob("s*.json"))
    assert len(files) == 30
    doc = json.loads(files[1].read_text())
    first = doc["exchanges"][0]
    assert first["exchange"] == "s0001-GET /api/users" and first["complete"] is True
    assert first["response"]["status"] == "HTTP/1.1 200 OK" and first["response"]["body"]["json"]["count"] == 8
    against = pytester.runpytest("--tcpcopy-command", V2, "--tcpcopy-baseline", f"dir:{record}", "-p", "no:cacheprovider")
    against.assert_outcomes(failed=15, passed=39)
    # A sampled re-record rewrites only what ran and deletes nothing.
    before = {f.name: f.read_text() for f in files}
    partial = pytester.runpytest("--tcpcopy-command", V1, "--tcpcopy-baseline", f"dir:{record}",
                                 "--tcpcopy-update-baseline", "--tcpcopy-sample", "30", "-p", "no:cacheprovider")  # fmt: skip
    assert partial.ret == 0
    after = {f.name: f.read_text() for f in (record / "traffic.pcap.gz").glob("s*.json")}
    assert after.keys() == before.keys()


def test_fixture_api_and_amplify_marker(pytester):
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.amplify(3)
        @pytest.mark.tcpcopy(command="{V1}")
        def test_load(tcpcopy):
            run = tcpcopy.replay()
            assert run.candidate.totals()["sessions"] == 3 * 30
            assert run.candidate.totals()["completed"] == 3 * 30
            assert run.differences == []

        @pytest.mark.tcpcopy(baseline="command:{V1}")
        def test_regression_named(tcpcopy):
            run = tcpcopy.replay()
            assert {{c.id.split("-", 1)[1] for c in run.differences}} == {REGRESSED!r}
        """
    )
    result = pytester.runpytest("--tcpcopy-command", V2, "-k", "test_", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, deselected=54)


def test_report_and_terminal_summary(pytester):
    result = pytester.runpytest("--tcpcopy-command", V2, "--tcpcopy-report", "out/report.json", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=15, passed=39)
    result.stdout.fnmatch_lines(["*= tcpcopy =*", "traffic.pcap.gz: 30 sessions, 54 exchanges: 39 same, 15 different",
                                 "tcpcopy report: *report.json"])  # fmt: skip
    doc = json.loads((pytester.path / "out" / "report.json").read_text())
    assert doc["format"] == "pytest-tcpcopy-report"
    assert json.dumps(doc).count("'premium' -> 'free'") == 0  # structured changes, not rendered text
    assert doc["totals"]["different"] == 15
    # The finding's first example has a reproducer: written, linked from the report, named by its item.
    [finding] = doc["findings"]
    [readme] = finding["reproducers"]
    assert Path(readme).is_file() and Path(readme).parent.parent.parent == pytester.path / ".tcpcopy" / "reproducers"
    assert finding["examples"][0]["exchange"] in Path(readme).read_text()
    assert (Path(readme).parent / "session.pcap").is_file()
    result.stdout.fnmatch_lines(["reproducers: 1 written, index *index.md", f"reproducer: {readme}",
                                 f"reproducer of its finding: {readme}"])  # fmt: skip
    off = pytester.runpytest("--tcpcopy-command", V2, "--tcpcopy-reproducers", "off", "-p", "no:cacheprovider")
    assert "reproducer" not in off.stdout.str()


def test_without_a_baseline_every_answered_exchange_passes(pytester):
    """``none``: replay only; the regression is not judged, and nothing fails for want of a baseline."""
    result = pytester.runpytest("--tcpcopy-command", V2, "--tcpcopy-baseline", "none", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=54)


def test_without_a_baseline_a_sut_that_resets_every_connection_is_not_comparable(pytester):
    """``none`` with a SUT that closes every connection unread (the kernel resets it): each
    exchange errors as not comparable, naming why; none fails as a difference."""
    server = pytester.path / "silent.py"
    server.write_text("import socket\n"
                      "s = socket.create_server(('0.0.0.0', 8080))\n"
                      "while True:\n    s.accept()[0].close()\n")  # fmt: skip
    result = pytester.runpytest("--tcpcopy-command", f"{sys.executable} {server}", "--tcpcopy-baseline", "none", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=54)
    result.stdout.fnmatch_lines(["s0000-GET /health: not comparable: SUT reset the connection: *"])


def test_summaries_of_several_replays_name_the_test_that_replayed(pytester):
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.tcpcopy(baseline="command:{V1}")
        def test_first(tcpcopy):
            tcpcopy.replay()

        @pytest.mark.tcpcopy(baseline="command:{V1}", sample=50)
        def test_second(tcpcopy):
            tcpcopy.replay()
        """
    )
    result = pytester.runpytest("--tcpcopy-command", V2, "-k", "test_", "--tcpcopy-report", "a.json",
                                "--tcpcopy-report", "b.html", "-p", "no:cacheprovider")  # fmt: skip
    result.assert_outcomes(passed=2, deselected=54)
    result.stdout.fnmatch_lines(["test_summaries_of_several_replays_name_the_test_that_replayed.py::test_first "
                                 "(traffic.pcap.gz): 30 sessions, 54 exchanges: 39 same, 15 different",
                                 "*::test_second (traffic.pcap.gz): *different*",
                                 "tcpcopy report: *a.json", "tcpcopy report: *b.html"])  # fmt: skip
    assert json.loads((pytester.path / "a.json").read_text())["totals"]["different"] > 15
    assert (pytester.path / "b.html").read_text().startswith("<!DOCTYPE html>")


def test_no_summary_when_nothing_to_say(pytester):
    result = pytester.runpytest("--tcpcopy-command", V1, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=54)
    assert "= tcpcopy =" not in result.stdout.str()


def test_ignored_paths_are_not_differences(pytester):
    result = pytester.runpytest("--tcpcopy-command", V2, "--tcpcopy-ignore", "body.plan", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=54)


def test_every_amplified_copy_is_compared(pytester):
    result = pytester.runpytest("--tcpcopy-command", V2, "--tcpcopy-amplify", "3", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=15, passed=39)
    assert "differs in 3 of 3 amplified copies (0, 1, 2)" in result.stdout.str()


@pytest.mark.parametrize(("dist", "replays"), [("loadgroup", 1), ("load", 2)])
def test_xdist_policy(pytester, dist, replays):
    """Documented policy: with --dist loadgroup a capture is replayed once (all its items on one
    worker); with other modes each worker replays what its items need."""
    starts = pytester.path / "starts.txt"
    sut = f"sh -c 'echo started >> {starts}; exec {V2}'"
    result = pytester.runpytest("-n", "2", "--dist", dist, "--tcpcopy-command", sut, "-p", "no:cacheprovider")
    result.assert_outcomes(failed=15, passed=39)
    assert len(starts.read_text().splitlines()) == replays
