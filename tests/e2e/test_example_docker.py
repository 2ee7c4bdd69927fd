"""The bundled example on the Docker backend, as the README runs it: v2 (candidate) against v1
(baseline), each in its own container with its own intercept; exactly v2's regression fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import docker
import pytest

from conftest import require

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "jsonservice"


@pytest.fixture(scope="module", autouse=True)
def _daemon():
    try:
        docker.from_env().ping()
    except docker.errors.DockerException as exc:
        require(False, f"a Docker daemon (run docker/ci-setup.sh as root): {exc}")


def _pytest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip


def test_the_example_reports_exactly_the_regression():
    result = _pytest(str(EXAMPLE), "-q")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "30 sessions, 54 exchanges: 39 same, 15 different" in result.stdout


def test_one_item_per_exchange_on_docker():
    # The example's pytest.ini names both releases as builds of its folder: built in the test
    # above (module order), found up to date here, before anything is collected.
    # The capture is a path: collected beside the example's test module (deselected by -k).
    result = _pytest(str(EXAMPLE / "traffic.pcap.gz"), "--tcpcopy-noise", "-q", "-k", "s00", str(EXAMPLE))
    assert "15 failed, 39 passed, 1 deselected" in result.stdout, result.stdout[-3000:] + result.stderr
    assert "is up to date: pytest-tcpcopy-build/jsonservice-v2:" in result.stdout
    assert "is up to date: pytest-tcpcopy-build/jsonservice-v1:" in result.stdout
    failed = {line.split("::", 1)[1].split(" - ")[0].split("-", 1)[1] for line in result.stdout.splitlines()
              if line.startswith("FAILED ")}  # fmt: skip
    assert failed == {"GET /api/users/2", "GET /api/users/5", "GET /api/users/7"}
    assert "body.plan: 'premium' -> 'free'" in result.stdout


def test_live_traffic_on_docker_is_recorded_then_replayed(tmp_path):
    """Real-time live replay needs the netns backend; on Docker the runner records the live
    source first, then replays the recording into the container (built from the example's
    folder, up to date since the tests above)."""
    import gzip
    import os
    import threading

    from pytest_tcpcopy.live.stream import PcapStreamSource
    from pytest_tcpcopy.runner import TcpcopyRunner
    from pytest_tcpcopy.settings import Settings

    stream = tmp_path / "traffic.pcap"
    stream.write_bytes(gzip.decompress((EXAMPLE / "traffic.pcap.gz").read_bytes()))
    settings = Settings(backend="docker", port=8080, image=f"build:{EXAMPLE}:v1", duration=30.0,
                        build_arg=("BASE_IMAGE=pytest-tcpcopy-base:bookworm",))  # fmt: skip
    said: list[str] = []
    read_end, write_end = os.pipe()  # a pipe, as the copier's stdin would be (epoll takes no files)
    feeder = threading.Thread(target=lambda: (os.write(write_end, stream.read_bytes()), os.close(write_end)))
    feeder.start()
    try:
        run = TcpcopyRunner(settings, log=said.append).replay_live(lambda: PcapStreamSource(read_end),
                                                                    tmp_path / "rec.pcap")  # fmt: skip
    finally:
        feeder.join(timeout=10)
        os.close(read_end)
    assert any("recorded" in line and "replayed after" in line for line in said), said
    assert run.candidate.totals()["sessions"] == run.candidate.totals()["completed"] == 30
    assert len(run.comparisons) == 54 and run.differences == []  # v1 against production's own responses
