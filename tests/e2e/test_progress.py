"""Progress reports and request schedules on a real netns replay: the backend hands the copier's
progress lines to a callback as they come, and every request carries its scheduled time."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_root, require_tools
from replay_support import RECORDING_SERVER, captured_sessions, make_capture
from pytest_tcpcopy.backends.base import SutSpec
from pytest_tcpcopy.backends.netns.backend import NetnsBackend
from pytest_tcpcopy.replay.contract import CopierSettings, Progress
from pytest_tcpcopy.replay.results import ReplayResult

pytest_plugins = ["pytester"]

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


def _replay(capture: Path, tmp_path: Path, settings: CopierSettings, **kwargs) -> ReplayResult:
    server = [sys.executable, RECORDING_SERVER, "http", str(PORT), str(tmp_path / "record.jsonl")]
    with NetnsBackend(prefix="tcpcp-pg") as backend:
        backend.start_sut(SutSpec("candidate", PORT, command=tuple(server)))
        [replayed] = backend.replay(capture, settings, **kwargs)
    return replayed.result


def _slow_replay(capture: Path, tmp_path: Path, **kwargs) -> ReplayResult:
    """Replay ``capture`` slowed down to last about 3 s."""
    sessions = captured_sessions(capture, PORT).values()
    span = max(s.last_ts for s in sessions) - min(s.first_ts for s in sessions)
    return _replay(capture, tmp_path, CopierSettings(speed=span / 3, max_duration=30), **kwargs)


def test_progress_reports_and_sessions_reach_the_callbacks_while_the_replay_runs(capture, tmp_path):
    reports: list[tuple[str, Progress]] = []
    sessions: list[tuple[str, int]] = []
    result = _slow_replay(capture, tmp_path, progress=lambda name, report: reports.append((name, report)),
                          on_session=lambda name, s: sessions.append((name, s.session)))  # fmt: skip
    assert result.totals()["completed"] == 30
    assert len(reports) >= 2, reports
    assert {name for name, _ in reports} == {"candidate"}
    done = [r.sessions_done for _, r in reports]
    assert done == sorted(done) and done[0] < done[-1] <= 30, done
    assert [r.requests for _, r in reports] == sorted(r.requests for _, r in reports)
    assert all(r.errors == 0 for _, r in reports)
    # Every session copy reached the session callback once, decoded, before the whole result.
    assert sorted(s for _, s in sessions) == sorted(s.session for s in result.sessions)
    assert {name for name, _ in sessions} == {"candidate"}


def test_a_paced_replay_keeps_every_request_schedule(capture, tmp_path):
    result = _slow_replay(capture, tmp_path)
    exchanges = [e for s in result.sessions for e in s.exchanges]
    assert len(exchanges) == 30
    assert all(e.scheduled_at is not None for e in exchanges), "the copier must give ReplayEngine its speed"
    assert all(e.sent_at >= e.scheduled_at - EPSILON for e in exchanges), exchanges
    assert max(e.scheduled_at for e in exchanges) > 1.0  # the schedule spans the slowed capture
    assert result.delayed_starts == 0


def test_an_unpaced_replay_has_no_schedule(capture, tmp_path):
    result = _replay(capture, tmp_path, CopierSettings(max_duration=30))
    exchanges = [e for s in result.sessions for e in s.exchanges]
    assert exchanges and all(e.scheduled_at is None for e in exchanges)


# -- the plugin's progress line: only on a terminal --------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jsonservice"
APP = f"{sys.executable} {EXAMPLE / 'app.py'}"
SLOW_INI = (  # the example's 1.2 s of traffic replayed over about 3 s: a few progress reports
    f"[pytest]\ntcpcopy_backend = netns\ntcpcopy_port = 8080\ntcpcopy_pcap = {EXAMPLE / 'traffic.pcap.gz'}\n"
    f"tcpcopy_command = env JSONSERVICE_RELEASE=v1 {APP}\ntcpcopy_speed = 0.4\n"
)


def test_the_plugin_shows_no_progress_when_output_is_not_a_terminal(pytester):
    pytester.makeini(SLOW_INI)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=54)
    assert "tcpcopy replay:" not in result.stdout.str() + result.stderr.str()


def test_on_a_terminal_one_line_shows_the_progress_and_the_items_report_after_it(pytester):
    pytester.makeini(SLOW_INI)
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "200", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--color=no"], cwd=pytester.path,
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)  # fmt: skip
    os.close(follower)
    out = bytearray()
    try:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
        proc.wait(timeout=120)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert "\rtcpcopy replay: " in text and " sessions/s, 0 errors" in text, text[-3000:]
    # The progress line is finished before pytest reports the items: they start on a line of their own.
    progress_line, rest = text[text.rindex("\rtcpcopy replay: ") :].split("\n", 1)
    assert progress_line.rstrip().endswith("0 errors"), progress_line  # no item's letter on it
    assert "traffic.pcap.gz ....." in rest.split("\n", 1)[0], rest[:300]  # the file's prefix again, then letters
    assert "54 passed" in text
