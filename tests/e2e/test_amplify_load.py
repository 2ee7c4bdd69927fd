"""An amplified replay of the example capture into the real JSON service (netns backend, as root):
the SUT's own log of accepted connections and requests against the load figures of the replay."""

from __future__ import annotations

import ipaddress
import json
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import require_root, require_tools

from pytest_tcpcopy.load import LoadReport, SloViolation
from pytest_tcpcopy.runner import TcpcopyRunner
from pytest_tcpcopy.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jsonservice"
REPLAY_NET = ipaddress.ip_network("198.18.0.0/15")
AMPLIFY = 5
CAPTURED_SESSIONS, CAPTURED_REQUESTS = 30, 54

# The example service v1, logging every accepted connection and every request it answered as JSON
# lines (one write each, so lines stay whole when the server is stopped).
LOGGING_SUT = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
import app

fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

def log(**entry):
    os.write(fd, (json.dumps(entry) + "\\n").encode())

class Server(app.JsonServiceServer):
    def get_request(self):
        sock, peer = super().get_request()
        log(event="accept", peer=f"{peer[0]}:{peer[1]}")
        return sock, peer

class Handler(app.JsonServiceHandler):
    release = "v1"

    def log_request(self, code="-", size="-"):
        peer = self.client_address
        log(event="request", peer=f"{peer[0]}:{peer[1]}", line=self.requestline, status=int(code))

    def log_message(self, format, *args):
        pass

with Server(("0.0.0.0", 8080), Handler) as server:
    server.serve_forever()
"""


def _replayed(entries: list[dict], event: str) -> list[dict]:
    """The log entries of ``event`` from replayed clients (readiness probes come from elsewhere)."""
    return [
        e for e in entries if e["event"] == event and ipaddress.ip_address(e["peer"].rpartition(":")[0]) in REPLAY_NET
    ]


def _endpoint(request_line: str) -> str:
    method, target, _ = request_line.split(" ", 2)
    return f"{method} {urlsplit(target).path}"


@pytest.fixture(scope="module")
def amplified(tmp_path_factory):
    """One replay of the example at amplify 5 (speed x1): the run, its load report, the SUT's log."""
    require_root()
    require_tools("ip", "iptables", "ethtool")
    folder = tmp_path_factory.mktemp("amplify")
    sut, log = folder / "logging_sut.py", folder / "sut.jsonl"
    sut.write_text(LOGGING_SUT)
    settings = Settings().with_overrides(
        {"pcap": str(EXAMPLE / "traffic.pcap.gz"), "backend": "netns", "port": 8080, "amplify": AMPLIFY,
         "speed": 1, "command": [sys.executable, str(sut), str(EXAMPLE), str(log)]},
        "test_amplify_load",
    )  # fmt: skip
    run = TcpcopyRunner(settings, log=lambda _: None, keep_sessions=True).replay()
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    return run, LoadReport.from_run(run), entries


def test_every_copy_reached_the_sut_from_its_own_endpoint(amplified):
    run, report, entries = amplified
    accepted = [e["peer"] for e in _replayed(entries, "accept")]
    assert len(accepted) == AMPLIFY * CAPTURED_SESSIONS
    assert len(set(accepted)) == len(accepted)  # every copy on a distinct client endpoint
    assert set(accepted) == {s.client for s in run.candidate.sessions}
    assert report.copies == report.completed == AMPLIFY * CAPTURED_SESSIONS
    assert report.errors == 0 and report.error_rate == 0.0


def test_the_figures_count_what_the_sut_answered(amplified):
    _, report, entries = amplified
    requests = _replayed(entries, "request")
    assert len(requests) == report.overall.requests == report.overall.answered == AMPLIFY * CAPTURED_REQUESTS
    by_endpoint = Counter(_endpoint(e["line"]) for e in requests)
    assert {e.endpoint: e.requests for e in report.endpoints} == dict(by_endpoint)
    assert report.scheduled * AMPLIFY == report.overall.requests and report.resends == 0
    assert report.offered is not None and report.achieved is not None
    assert report.overall.response.count == report.overall.answered


def test_percentiles_are_ordered_overall_and_per_endpoint(amplified):
    _, report, _ = amplified
    for figures in (report.overall, *report.endpoints):
        for latency in (figures.ttfb, figures.response):
            assert latency.count > 0, figures.endpoint
            assert 0 < latency.p50 <= latency.p90 <= latency.p99 <= latency.max, figures.endpoint
        assert figures.ttfb.max <= figures.response.max
    assert sum(e.response.count for e in report.endpoints) == report.overall.response.count
    assert "GET /api/users" in report.render()


def test_a_loose_slo_passes_and_an_impossible_one_fails_with_its_table(amplified):
    _, report, _ = amplified
    report.assert_slo(p50_ms=30_000, p99_ms=60_000, max_ms=120_000, error_rate=0.0, per_endpoint=True)
    with pytest.raises(SloViolation) as failed:
        report.assert_slo(p99_ms=0.0001, error_rate=0.0)
    text = str(failed.value)
    assert text.startswith("SLO not met: 1 of 2 limits broken")
    lines = text.splitlines()
    assert lines[1].split() == ["scope", "metric", "limit", "measured", "verdict"]
    assert lines[2].split()[:4] == ["all", "p99", "ms", "0.0001"] and lines[2].endswith("FAIL")
    assert lines[3].split() == ["all", "error", "rate", "0.00%", "0.00%", "ok"]
    over = [line for line in lines if line.endswith(" over")]
    assert len(over) == len(report.endpoints)  # every endpoint is above a 0.1 microsecond p99
    with pytest.raises(AssertionError, match="GET /api/orders .* FAIL"):
        report.assert_slo(p99_ms=0.0001, per_endpoint=True)
