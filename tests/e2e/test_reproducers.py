"""Reproducers end to end: the example capture replayed into the regressed release (v2) through
the real rig, its one finding turned into a reproducer, and that reproducer, re-run against the
same SUT, showing the same difference: its pytest line fails with it, its netns-run line gets
the changed response, and its curl request, sent to v2 in a namespace, gets it too (v1 does not)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_root, require_tools

from pytest_tcpcopy.compare import FindingsAccumulator
from pytest_tcpcopy.backends.netns import NetnsRig
from pytest_tcpcopy.reproduce import ReproducerConfig, RerunTarget, write_reproducers
from pytest_tcpcopy.runner import TcpcopyRunner
from pytest_tcpcopy.settings import SessionFilter, Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jsonservice"
CAPTURE = EXAMPLE / "traffic.pcap.gz"
APP = str(EXAMPLE / "app.py")
PORT = 8080
PLAN = re.compile(rb'"plan": ?"(\w+)"')


def release(name: str, port: int = PORT) -> tuple[str, ...]:
    return ("env", f"JSONSERVICE_RELEASE={name}", f"JSONSERVICE_PORT={port}", sys.executable, APP)


@pytest.fixture(scope="module")
def reproducer(tmp_path_factory):
    """The run's one finding (v2's plan regression) and the reproducer of its first example."""
    require_root()
    require_tools("ip", "iptables", "ethtool")
    settings = Settings(backend="netns", command=release("v2"), port=PORT, filter=SessionFilter((PORT,)),
                        ignore=("headers.x-service-version",))  # fmt: skip
    run = TcpcopyRunner(settings, log=lambda _: None).replay(CAPTURE)
    findings = FindingsAccumulator()
    for comparison in run.comparisons.values():
        findings.add(comparison)
    [finding] = findings.findings()
    assert (finding.key.endpoint, finding.key.path, finding.count) == ("GET /api/users/{id}", "body.plan", 15)
    config = ReproducerConfig(RerunTarget.from_settings(settings))
    out = write_reproducers(tmp_path_factory.mktemp("run") / "reproducers", [(CAPTURE, findings.findings())], config)
    [reproducer] = out.reproducers
    assert reproducer.exchange_id == "s0001-GET /api/users/2" and reproducer.item == "s0000-GET /api/users/2"
    assert reproducer.slice_file == "session.pcap"  # no secret in this traffic: the slice is written
    return reproducer


def shell(line: str, cwd: Path, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    """Run a reproducer's shell line as a user pastes it (this interpreter's scripts on PATH)."""
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    return subprocess.run(["sh", "-c", line], cwd=cwd, env={**os.environ, "PATH": path, **env},
                          capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip


def test_the_pytest_line_judges_the_exchange_again_and_fails_with_the_finding(reproducer):
    done = shell(reproducer.commands["pytest"] + " -p no:cacheprovider", reproducer.directory)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "1 failed" in out and "passed" not in out.split("short test summary")[-1], out
    assert "body.plan: 'premium' -> 'free'" in out
    assert "x-service-version" not in out.lower()  # the run's ignore paths came along
    assert "FAILED session.pcap::s0000-GET /api/users/2" in out


def test_the_rig_line_replays_the_session_into_the_sut_which_answers_with_the_regression(reproducer):
    done = shell(reproducer.commands["rig"], reproducer.directory)
    assert done.returncode == 0, done.stderr
    [session] = json.loads(done.stdout)["sessions"]
    assert session["outcome"] == "complete"
    replayed = PLAN.findall(base64.b64decode(session["response"]))
    assert replayed == _plans_of(reproducer, premium_as=b"free")  # every premium user answered as free


def _plans_of(reproducer, premium_as: bytes) -> list[bytes]:
    """The plans the captured session's responses hold, premium ones as ``premium_as``."""
    from pytest_tcpcopy.capture import open_capture
    from pytest_tcpcopy.flows import assemble_sessions

    with open_capture(reproducer.directory / reproducer.slice_file) as reader:
        [session] = list(assemble_sessions(reader))
    captured = PLAN.findall(session.server_stream.data())
    assert b"premium" in captured
    return [premium_as if plan == b"premium" else plan for plan in captured]


def test_the_curl_request_gets_the_regression_from_v2_and_not_from_v1(reproducer):
    require_tools("curl")
    script = str(reproducer.directory / "request.sh")
    with NetnsRig("tcpcp-repro") as rig:
        rig.start_sut(list(release("v2")), PORT, http_path="/health")
        rig.start_sut(list(release("v1", PORT + 1)), PORT + 1, http_path="/health")
        answers = {}
        for name, port in (("v2", PORT), ("v1", PORT + 1)):
            done = subprocess.run(["ip", "netns", "exec", rig.client_ns, "sh", script], capture_output=True,
                                  env={**os.environ, "SUT": f"{rig.sut_addr}:{port}"}, timeout=60, check=False)  # fmt: skip
            assert done.returncode == 0, done.stderr
            answers[name] = done.stdout
    assert answers["v2"].startswith(b"HTTP/1.0 200") or answers["v2"].startswith(b"HTTP/1.1 200")
    assert PLAN.findall(answers["v2"]) == [b"free"] and PLAN.findall(answers["v1"]) == [b"premium"]
