"""Live mirroring through the plugin, for real: a "production" namespace pair with the example
service and a real client; a mirror agent beside the service streams what it sees to pytest
(`--tcpcopy-mirror-listen`), which replays it into the SUT and compares with production's own
responses."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import require_root, require_tools
from pytest_tcpcopy.netns import NetnsRig

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jsonservice"
PORT, MIRROR_PORT = 8080, 36525


@pytest.fixture(autouse=True)
def _prerequisites():
    require_root()
    require_tools("ip", "iptables", "ethtool")


def test_mirrored_production_traffic_is_replayed_and_matches_production(tmp_path):
    (tmp_path / "test_nothing.py").write_text("def test_placeholder():\n    pass\n")
    with NetnsRig("tcpcp-lvp") as production:
        production.start_sut([sys.executable, str(EXAMPLE / "app.py")], PORT)
        # pytest (with the mirror listener) runs where production's agent can reach it.
        runner = production.run_in(
            "client",
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path),
             "--rootdir", str(tmp_path), "--tcpcopy-mirror-listen", f"{production.client_addr}:{MIRROR_PORT}",
             "--tcpcopy-duration", "5", "--tcpcopy-backend", "netns", "--tcpcopy-port", str(PORT),
             "--tcpcopy-command", f"{sys.executable} {EXAMPLE / 'app.py'}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        )  # fmt: skip
        agent = production.run_in(
            "sut",
            [sys.executable, "-m", "pytest_tcpcopy", "mirror", "--iface", production.sut_if, "--port", str(PORT),
             "--to", f"{production.client_addr}:{MIRROR_PORT}", "--duration", "6"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        time.sleep(1.5)  # the agent has connected (it reconnects anyway) and the window is open
        subprocess.run(["ip", "netns", "exec", production.client_ns, sys.executable, str(EXAMPLE / "client.py"),
                        production.sut_addr, str(PORT)], check=True, timeout=30)  # fmt: skip
        out, _ = runner.communicate(timeout=120)
        agent.wait(timeout=20)
    assert runner.returncode == 0, out
    # 54 exchanges of the example client, each its own item, plus the placeholder test.
    assert "55 passed" in out, out
    assert "mirror.pcap" in out
