"""Progress reports and request schedules on a real netns replay: the backend hands the copier's
progress lines to a callback as they come, and every request carries its scheduled time."""

from __future__ import annotations

import sys

import pytest

from conftest import require_root, require_tools
from replay_support import RECORDING_SERVER, captured_sessions, make_capture
from pytest_tcpcopy.backends.netns import NetnsBackend

PORT = 8080
EPSILON = 0.005  # the copier's clock starts a few microseconds before its first packet is fed


@pytest.fixture(scope="module", autouse=True)
def _prerequisites():
    require_root()
    require_tools("ip", "tcpdump", "iptables", "ethtool")


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    base = tmp_path_factory.mktemp("progress")
    server = [sys.executable, RECORDING_SERVER, "http", str(PORT), str(base / "capture-record.jsonl")]
    return make_capture(base / "oneshot.pcap", PORT, server, [["oneshot", "30"]])


def test_progress_reaches_the_callback_and_requests_keep_their_schedule(capture, tmp_path):
    sessions = captured_sessions(capture, PORT).values()
    span = max(s.last_ts for s in sessions) - min(s.first_ts for s in sessions)
    reports: list[dict] = []
    server = [sys.executable, RECORDING_SERVER, "http", str(PORT), str(tmp_path / "record.jsonl")]
    with NetnsBackend(server, PORT, prefix="tcpcp-pg") as backend:
        # Slowed down to last about 3 s: a few progress reports come while sessions still run.
        result = backend.replay(capture, "--speed", f"{span / 3:.6f}", "--max-duration", "30", progress=reports.append)
    assert result["totals"]["completed"] == 30
    assert len(reports) >= 2, reports
    assert all(r["event"] == "progress" and set(r) >= {"sessions_total", "active", "waiting", "rate"} for r in reports)
    done = [r["sessions_done"] for r in reports]
    assert done == sorted(done) and done[0] < done[-1] <= 30, done
    assert [r["requests"] for r in reports] == sorted(r["requests"] for r in reports)
    assert all(r["errors"] == 0 for r in reports)
    # Paced replay: every request has its scheduled time, and none went out before it.
    exchanges = [e for s in result["sessions"] for e in s["exchanges"]]
    assert len(exchanges) == 30
    assert all(e["scheduled_at"] is not None for e in exchanges), exchanges[:3]
    assert all(e["sent_at"] >= e["scheduled_at"] - EPSILON for e in exchanges), exchanges
    assert max(e["scheduled_at"] for e in exchanges) > 1.0  # the schedule spans the slowed capture
    assert result["totals"]["delayed_starts"] == 0


def test_an_unpaced_replay_has_no_schedule(capture, tmp_path):
    server = [sys.executable, RECORDING_SERVER, "http", str(PORT), str(tmp_path / "record.jsonl")]
    with NetnsBackend(server, PORT, prefix="tcpcp-pg") as backend:
        result = backend.replay(capture, "--max-duration", "30")
    exchanges = [e for s in result["sessions"] for e in s["exchanges"]]
    assert exchanges and all(e["scheduled_at"] is None for e in exchanges)
