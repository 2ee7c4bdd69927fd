"""Live mirroring through the plugin, for real: a "production" namespace pair with the example
service and a real client; a mirror agent beside the service streams what it sees to pytest
(`--tcpcopy-mirror-listen`), which replays it into the SUT and compares with production's own
responses, in real time: the SUT gets its first request while the mirrored traffic still flows."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import require_root, require_tools
from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.flows import assemble_sessions
from pytest_tcpcopy.backends.netns import NetnsRig

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jsonservice"
PORT, MIRROR_PORT = 8080, 36525
# The example app, noting (once) when its first request arrives.
FIRST_REQUEST_SUT = """\
import sys, time
sys.path.insert(0, {example!r})
import app

def noting(handle):
    def handler(self):
        try:
            with open({log!r}, "x") as log:
                log.write(repr(time.time()))
        except FileExistsError:
            pass
        return handle(self)
    return handler

app.JsonServiceHandler.do_GET = noting(app.JsonServiceHandler.do_GET)
app.JsonServiceHandler.do_POST = noting(app.JsonServiceHandler.do_POST)
sys.exit(app.main())
"""


@pytest.fixture(autouse=True)
def _prerequisites():
    require_root()
    require_tools("ip", "iptables", "ethtool")


def test_mirrored_production_traffic_is_replayed_as_it_arrives_and_matches_production(tmp_path):
    (tmp_path / "test_nothing.py").write_text("def test_placeholder():\n    pass\n")
    first_request = tmp_path / "first-request"
    sut = tmp_path / "sut.py"
    sut.write_text(FIRST_REQUEST_SUT.format(example=str(EXAMPLE), log=str(first_request)))
    with NetnsRig("tcpcp-lvp") as production:
        production.start_sut([sys.executable, str(EXAMPLE / "app.py")], PORT)
        # pytest (with the mirror listener) runs where production's agent can reach it.
        runner = production.run_in(
            "client",
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA",
             "--rootdir", str(tmp_path), "--tcpcopy-mirror-listen", f"{production.client_addr}:{MIRROR_PORT}",
             "--tcpcopy-duration", "8", "--tcpcopy-backend", "netns", "--tcpcopy-port", str(PORT),
             "--tcpcopy-command", f"{sys.executable} {sut}", "--tcpcopy-record-to", "kept/mirrored.pcapng.gz"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        )  # fmt: skip
        wait_listening(production.client_ns, MIRROR_PORT, runner)  # the window is open: the agent connects at once
        agent = production.run_in(
            "sut",
            [sys.executable, "-m", "pytest_tcpcopy", "mirror", "--iface", production.sut_if, "--port", str(PORT),
             "--to", f"{production.client_addr}:{MIRROR_PORT}", "--duration", "5"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        time.sleep(1.5)  # the agent has connected and captures
        subprocess.run(["ip", "netns", "exec", production.client_ns, sys.executable, str(EXAMPLE / "client.py"),
                        production.sut_addr, str(PORT)], check=True, timeout=30)  # fmt: skip
        agent.wait(timeout=20)
        agent_ended = time.time()  # the mirrored traffic has stopped; pytest's 8 s window is still open
        out, _ = runner.communicate(timeout=120)
    assert runner.returncode == 0, out
    # The live traffic is one item (its exchanges are known only once the window closes), plus the
    # placeholder test; all 54 exchanges of the example client were judged the same as production's.
    assert "2 passed" in out, out
    assert f"PASSED tcpcopy:mirror:{production.client_addr}:{MIRROR_PORT}" in out, out
    # Replayed while it arrived: recorded first and replayed after the window, no request could
    # reach the SUT before the window (which outlasts the agent) ended.
    assert float(first_request.read_text()) < agent_ended
    # The live traffic is kept where --tcpcopy-record-to says, in the format its name asks for.
    kept = tmp_path / "kept" / "mirrored.pcapng.gz"
    assert "live traffic kept in kept/mirrored.pcapng.gz (" in out and "pcapng, gzip-compressed" in out, out
    with open_capture(kept) as reader:
        sessions = list(assemble_sessions(reader, [PORT]))
    assert len(sessions) == 30


def wait_listening(namespace: str, port: int, process: subprocess.Popen) -> None:
    """Return once a TCP socket listens on ``port`` in ``namespace`` (bounded wait)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        listening = subprocess.run(["ip", "netns", "exec", namespace, "ss", "-Hltn", f"sport = :{port}"],
                                   capture_output=True, text=True, check=True).stdout  # fmt: skip
        if listening.strip():
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port} in {namespace} (pytest exited: {process.poll()})")
