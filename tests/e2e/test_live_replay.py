"""Live traffic replayed as it happens, for real: one netns rig holds "production" (a recording
server on PORT in the SUT namespace, real clients in the client namespace) and the SUT (another
recording server on SUT_PORT beside it, with the intercept). The copier, `pytest-tcpcopy replay
--mirror-listen` (or `--live`) in the client namespace, takes production's packets from a mirror
agent beside production (or from the client's interface) and replays them into the SUT while the
window is still open. Namespaces are named ``tcpcp-lrp-*`` and removed by the rig.
"""

from __future__ import annotations

import base64
import json
import select
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import require_root, require_tools

from pytest_tcpcopy.backends.base import SutSpec
from pytest_tcpcopy.backends.netns.backend import NetnsBackend
from pytest_tcpcopy.channel.protocol import DEFAULT_PORT
from pytest_tcpcopy.cli import main
from pytest_tcpcopy.backends.netns import NetnsRig
from pytest_tcpcopy.replay.contract import CopierSettings

SERVERS = Path(__file__).resolve().parent / "servers"
PORT, SUT_PORT, MIRROR_PORT = 8080, 9090, 36525
WINDOW = 10  # seconds the copier takes live traffic
AGENT_WINDOW = 6  # seconds the agent captures: it stops well before the copier's window closes
SESSIONS = 3 + 4  # the client script below: 3 keep-alive connections, 4 one-shot ones


def recording_server(port: int, record: Path) -> list[str]:
    return [sys.executable, str(SERVERS / "recording_server.py"), "http", str(port), str(record)]


def received(record: Path) -> Counter:
    """What a recording server received, one entry per connection that sent something (readiness
    probes connect and close without a byte)."""
    if not record.exists():
        return Counter()
    lines = record.read_text().splitlines()
    return Counter(filter(None, (base64.b64decode(json.loads(line)["received"]) for line in lines)))


def by_peer(record: Path) -> dict[str, bytes]:
    """What a recording server received, by client endpoint."""
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    return {line["peer"]: base64.b64decode(line["received"]) for line in lines if line["received"]}


def wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def copier_connected(rig: NetnsRig) -> bool:
    """The copier has its channel to the intercept up (seen from the SUT's namespace)."""
    ss = ["ip", "netns", "exec", rig.sut_ns, "ss", "-Htn", "state", "established", f"sport = :{DEFAULT_PORT}"]
    return bool(subprocess.run(ss, capture_output=True, text=True, check=True).stdout.strip())


def run_clients(rig: NetnsRig) -> None:
    for script in (["keepalive", rig.sut_addr, str(PORT), "3", "4"], ["oneshot", rig.sut_addr, str(PORT), "4"]):
        subprocess.run(["ip", "netns", "exec", rig.client_ns, sys.executable, str(SERVERS / "clients.py"), *script],
                       check=True, timeout=30)  # fmt: skip


def start_agent(rig: NetnsRig, log: Path) -> subprocess.Popen:
    """``pytest-tcpcopy mirror`` beside production, streaming to the copier's listener."""
    with open(log, "wb") as err:
        agent = rig.run_in(
            "sut",
            [sys.executable, "-m", "pytest_tcpcopy", "mirror", "--iface", rig.sut_if, "--port", str(PORT),
             "--to", f"{rig.client_addr}:{MIRROR_PORT}", "--duration", str(AGENT_WINDOW)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
    ready, _, _ = select.select([agent.stdout], [], [], 15)
    line = agent.stdout.readline() if ready else ""
    assert line and json.loads(line)["event"] == "capturing", f"agent did not start: {line} {log.read_text()}"
    return agent


@pytest.mark.parametrize("source", ["mirror", "live"])
def test_live_traffic_reaches_the_sut_before_the_window_ends_and_every_session_completes(source, tmp_path):
    require_root()
    require_tools("ip", "iptables", "ethtool", "ss")
    production_record, sut_record = tmp_path / "production.jsonl", tmp_path / "sut.jsonl"
    with NetnsBackend(prefix="tcpcp-lrp") as backend, ThreadPoolExecutor(max_workers=1) as copier_thread:
        sut = SutSpec("candidate", SUT_PORT, command=tuple(recording_server(SUT_PORT, sut_record)))
        rig = backend.start_sut(sut).rig
        rig.start_sut(recording_server(PORT, production_record), PORT)
        if source == "mirror":
            source_args = {"mirror_listen": f"{rig.client_addr}:{MIRROR_PORT}"}
        else:
            source_args = {"live": rig.client_if}
        # The copier's source cannot finish before this: a replay that waited for the window to
        # close (record, then replay) would reach the SUT only after it.
        window_closes = time.monotonic() + WINDOW
        copier = copier_thread.submit(
            backend.replay_live, CopierSettings(server_ports=(PORT,)), duration=WINDOW, timeout=WINDOW + 60,
            **source_args,
        )  # fmt: skip
        # The copier opens its source before it connects to the intercept.
        wait_until(lambda: copier_connected(rig) or copier.done(), 20)
        agent = start_agent(rig, tmp_path / "agent.log") if source == "mirror" else None
        run_clients(rig)
        wait_until(lambda: sum(received(production_record).values()) >= SESSIONS, 10)
        production = received(production_record)
        assert sum(production.values()) == SESSIONS
        # Wait (bounded) until the SUT has seen every production session, or the copier is done.
        wait_until(lambda: received(sut_record) == production or copier.done(), WINDOW + 30)
        sut_before_end = received(sut_record)
        window_open = time.monotonic() < window_closes and not copier.done()
        agent_running = agent is None or agent.poll() is None
        result = copier.result(timeout=WINDOW + 60).result
        if agent is not None:
            agent.wait(timeout=30)
    # Replayed as it arrived: the SUT had every session while the source was still taking traffic.
    assert sut_before_end == production
    assert window_open, "the SUT got the sessions only after the live window closed"
    assert agent_running, "the SUT got the sessions only after the mirror agent stopped"
    totals = result.totals()
    assert totals["sessions"] == SESSIONS and totals["completed"] == SESSIONS, result
    assert received(sut_record) == production
    # Session by session: each replayed session carried what its production client sent.
    production_by_client, sut_by_client = by_peer(production_record), by_peer(sut_record)
    sessions = result.sessions
    assert {s.captured_client for s in sessions} == production_by_client.keys()
    assert sorted(s.session for s in sessions) == list(range(SESSIONS))
    for s in sessions:
        assert sut_by_client[s.client] == production_by_client[s.captured_client], s


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "exactly one of CAPTURE, --live IFACE, --mirror-listen ADDR:PORT, --stdin-stream (got none)"),
        (["x.pcap", "--stdin-stream"], "(got CAPTURE and --stdin-stream)"),
        (["x.pcap", "--mirror-listen", "127.0.0.1:36525"], "(got CAPTURE and --mirror-listen)"),
        (["--live", "lo"], "--live needs the service's --port N"),
        (["--mirror-listen", "127.0.0.1:36525", "--speed", "1"], "--speed applies to capture files"),
        (["x.pcap", "--duration", "5"], "--duration applies to live traffic"),
    ],
)
def test_replay_source_usage_errors_say_what_to_change(argv, message, capsys):
    # The usage checks come before any socket is opened: no root needed.
    code = main(["replay", *argv, "--target", "127.0.0.1:9", "--intercept", "127.0.0.1"])
    assert code == 2
    assert message in capsys.readouterr().err
