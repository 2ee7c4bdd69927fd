"""Nothing addressed to a replayed client leaves the SUT's namespace, with the intercept running
or killed mid-replay, and a SUT that is not listening gives a clear outcome, not a hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import require_root, require_tools
from replay_support import RECORDING_SERVER, captured_sessions, make_capture
from pytest_tcpcopy.backends.base import SutSpec
from pytest_tcpcopy.backends.netns.backend import NetnsBackend, NetnsSut
from pytest_tcpcopy.replay.contract import CopierSettings
from pytest_tcpcopy.replay.results import Outcome

PORT = 8080


@pytest.fixture(scope="module", autouse=True)
def _prerequisites():
    require_root()
    require_tools("ip", "tcpdump", "iptables", "ethtool")


@pytest.fixture(scope="module")
def keepalive_capture(tmp_path_factory):
    base = tmp_path_factory.mktemp("safety")
    server = [sys.executable, RECORDING_SERVER, "http", str(PORT), str(base / "capture-record.jsonl")]
    return make_capture(base / "keepalive.pcap", PORT, server, [["keepalive", "6", "40"]])


class _Watch:
    """tcpdump on the SUT's side of the veth, counting packets to the replay client range."""

    def __init__(self, sut: NetnsSut) -> None:
        rig = sut.rig
        self.proc = rig.run_in(
            "sut", ["tcpdump", "--immediate-mode", "-B", "65536", "-n", "-i", rig.sut_if, "-w", "/dev/null",
                    "dst net 198.18.0.0/15"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert "listening on" in self.proc.stderr.readline()

    def stop(self) -> str:
        time.sleep(0.3)
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=10)
        return err


def _server(tmp_path):
    return [sys.executable, RECORDING_SERVER, "http", str(PORT), str(tmp_path / "record.jsonl")]


def _spec(argv) -> SutSpec:
    return SutSpec("candidate", PORT, command=tuple(argv))


def test_no_packet_to_a_replayed_client_leaves_the_sut(keepalive_capture, tmp_path):
    with NetnsBackend(prefix="tcpcp-sf") as backend:
        watch = _Watch(backend.start_sut(_spec(_server(tmp_path))))
        [replayed] = backend.replay(keepalive_capture, CopierSettings(amplify=3, max_duration=60))
        stats = watch.stop()
    totals = replayed.result.totals()
    # The SUT answered every replayed request (the intercept saw it all) ...
    assert totals["completed"] == 18 and totals["response_bytes"] > 0
    # ... and not one of those answers reached the wire.
    assert "0 packets captured" in stats and "\n0 packets received by filter" in "\n" + stats, stats


def test_killing_the_intercept_mid_replay_lets_nothing_out(keepalive_capture, tmp_path):
    with NetnsBackend(prefix="tcpcp-sf") as backend:
        sut = backend.start_sut(_spec(_server(tmp_path)))
        watch = _Watch(sut)
        intercept = sut.intercept
        killer = threading.Timer(1.0, lambda: os.kill(intercept.pid, signal.SIGKILL))
        killer.start()
        # Slowed down to last about 4 s, so the replay is well under way when the intercept dies.
        sessions = captured_sessions(keepalive_capture, PORT).values()
        span = max(s.last_ts for s in sessions) - min(s.first_ts for s in sessions)
        [replayed] = backend.replay(keepalive_capture, CopierSettings(speed=span / 4, max_duration=30))
        result = replayed.result
        killer.join()
        stats = watch.stop()
        assert intercept.wait(timeout=5) == -signal.SIGKILL
    assert "0 packets captured" in stats, stats
    # The copier noticed, said so, and stopped instead of hanging.
    assert any("intercept" in note for note in result.notes), result.notes
    assert result.totals()["completed"] < 6


def test_sut_not_listening_gives_not_established_at_once(keepalive_capture, tmp_path):
    # Accepts the readiness probe, then closes its listener: every replayed SYN meets a RST.
    sut = [sys.executable, "-c",
           "import socket, time\n"
           f"s = socket.create_server(('0.0.0.0', {PORT}))\n"
           "s.accept()[0].close(); s.close(); time.sleep(600)"]  # fmt: skip
    with NetnsBackend(prefix="tcpcp-sf") as backend:
        backend.start_sut(_spec(sut))
        [replayed] = backend.replay(keepalive_capture, CopierSettings(max_duration=60))
    result = replayed.result
    outcomes = {s.outcome for s in result.sessions}
    assert outcomes == {Outcome.NOT_ESTABLISHED}, result.totals()
    assert result.totals()["sessions"] == 6
    # A refusal is an answer: every session ended on the SUT's RST, none ran into a deadline.
    assert all("RST" in s.reason for s in result.sessions), [s.reason for s in result.sessions]
    assert not result.notes, result.notes
