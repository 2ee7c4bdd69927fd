"""The user's workflow end to end on the netns backend, as docs/workflow.md shows it: record
production's traffic, record a baseline from it, change the release, see the change fail, accept
it with an update; and the sanity checks that stop a run from passing on traffic that does not fit.

"Production" is the example service (v1) in a namespace pair of its own with its real client;
`pytest-tcpcopy record` captures on the production SUT's interface."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import require_root, require_tools
from pytest_tcpcopy.backends.netns import NetnsRig

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jsonservice"
APP = f"{sys.executable} {EXAMPLE / 'app.py'}"
V1, V2 = f"env JSONSERVICE_RELEASE=v1 {APP}", f"env JSONSERVICE_RELEASE=v2 {APP}"
PORT = 8080


@pytest.fixture(autouse=True)
def _prerequisites():
    require_root()
    require_tools("ip", "iptables", "ethtool", "ss")


def record_production(capture: Path) -> dict:
    """Record the example client's 30 sessions against v1 with `pytest-tcpcopy record`."""
    with NetnsRig("tcpcp-wfl") as production:
        production.start_sut(V1.split(), PORT)
        recorder = production.run_in(
            "sut",
            [sys.executable, "-m", "pytest_tcpcopy", "record", "--iface", production.sut_if, "--port", str(PORT),
             "--count", "30", "--duration", "90", "-o", str(capture), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        first = recorder.stderr.readline()
        assert first.startswith("record: recording"), first + recorder.stderr.read()
        subprocess.run(["ip", "netns", "exec", production.client_ns, sys.executable, str(EXAMPLE / "client.py"),
                        production.sut_addr, str(PORT)], check=True, timeout=60)  # fmt: skip
        out, err = recorder.communicate(timeout=90)
    assert recorder.returncode == 0, err
    return json.loads(out)


def recorded_counts(result) -> tuple[int, int, int]:
    """The update's ``N written, M unchanged, K removed`` from the terminal summary."""
    found = re.search(r"recorded baseline \S+: (\d+) written, (\d+) unchanged, (\d+) removed", result.stdout.str())
    assert found, result.stdout.str()[-3000:]
    return tuple(int(n) for n in found.groups())


def test_record_update_change_fail_update(pytester):
    summary = record_production(pytester.path / "traffic.pcap")
    assert (summary["sessions"], summary["exchanges"]) == (30, 54)
    pytester.makeini(f"[pytest]\ntcpcopy_backend = netns\ntcpcopy_port = {PORT}\ntcpcopy_baseline = dir:recorded\n")

    def pytest_run(release: str, *more: str):
        return pytester.runpytest("traffic.pcap", "--tcpcopy-command", release, "-p", "no:cacheprovider", *more)

    # Nothing recorded yet: every exchange is not comparable (an error), saying how to record it.
    missing = pytest_run(V1)
    missing.assert_outcomes(errors=54)
    missing.stdout.fnmatch_lines(["*s0001-GET /api/users/2: not comparable: no recorded baseline: no recording of this "
                                  "session*; record it with the release to compare against: pytest *traffic.pcap "
                                  "--tcpcopy-backend netns --tcpcopy-command * --tcpcopy-port 8080 --tcpcopy-baseline "
                                  "dir:*recorded --tcpcopy-update-baseline"])  # fmt: skip

    # Record the baseline with the release in production: passes, and says what it wrote.
    pytest_run(V1, "--tcpcopy-update-baseline").assert_outcomes(passed=54)
    files = sorted((pytester.path / "recorded" / "traffic.pcap").glob("s*.json"))
    assert len(files) == 30
    doc = json.loads(files[1].read_text())
    assert doc["exchanges"][0]["response"]["body"]["json"]  # decoded, readable
    pytest_run(V1).assert_outcomes(passed=54)

    # A change: v2 fails exactly the regression; a mistyped ignore path and noise that a recorded
    # baseline cannot measure are said.
    changed = pytest_run(V2, "--tcpcopy-ignore", "body.createdd", "--tcpcopy-noise")
    changed.assert_outcomes(failed=15, passed=39)
    out = changed.stdout.str()
    assert "body.plan: 'premium' -> 'free'" in out
    assert "ignore path 'body.createdd' matched nothing" in out
    assert "--tcpcopy-noise has no effect with the dir baseline" in out

    # Accept the change: the update passes although v2 differs, and rewrites the files it changes.
    before = {f.name: f.read_text() for f in files}
    accept = pytest_run(V2, "--tcpcopy-update-baseline")
    accept.assert_outcomes(passed=54)
    written, unchanged, removed = recorded_counts(accept)
    assert written == 30 and unchanged == removed == 0  # v2 adds X-Service-Version to every answer
    premium = next(f for f in files if '"plan": "premium"' in before[f.name])
    assert '"plan": "free"' in premium.read_text() and '"X-Service-Version: 2"' in premium.read_text()
    # An update that changes nothing writes nothing; the accepted release passes.
    assert recorded_counts(pytest_run(V2, "--tcpcopy-update-baseline")) == (0, 30, 0)
    pytest_run(V2).assert_outcomes(passed=54)


NOT_FOUND_SERVER = textwrap.dedent("""\
    # Answers 404 to every request, keep-alive: a service that knows none of the captured paths.
    import http.server, sys

    class NotFound(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = answer

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), NotFound).serve_forever()
""")


def test_the_same_error_from_both_releases_fails_a_green_run(pytester):
    """The example's traffic replayed into two releases of a service that knows none of it: every
    exchange passes (both answer 404), and the sanity check fails the run, loudly."""
    server = pytester.path / "not_found.py"
    server.write_text(NOT_FOUND_SERVER)
    (pytester.path / "traffic.pcap.gz").write_bytes((EXAMPLE / "traffic.pcap.gz").read_bytes())
    command = f"{sys.executable} {server} {PORT}"
    args = ["traffic.pcap.gz", "--tcpcopy-backend", "netns", "--tcpcopy-port", str(PORT), "--tcpcopy-command",
            command, "--tcpcopy-baseline", f"command:{command}", "-p", "no:cacheprovider"]  # fmt: skip
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=54)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "SANITY CHECK FAILED: traffic.pcap.gz: 54 of 54 exchanges got the same error status from the candidate and "
        "the baseline (404 x54); production answered 49 of them below 400: the traffic does not fit the SUTs*",
        "the run fails its sanity checks (exit status 1); if the set-up is right, --tcpcopy-sanity warn only warns",
    ])  # fmt: skip
    warned = pytester.runpytest(*args, "--tcpcopy-sanity", "warn")
    assert warned.ret == pytest.ExitCode.OK
    warned.stdout.fnmatch_lines(["sanity warning: traffic.pcap.gz: 54 of 54 exchanges got the same error status*"])
