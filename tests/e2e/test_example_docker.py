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
    # The images exist: the example's conftest built them in the test above (module order).
    result = _pytest("--tcpcopy-pcap", str(EXAMPLE / "traffic.pcap.gz"), "--tcpcopy-port", "8080",
                     "--tcpcopy-image", "pytest-tcpcopy-example/jsonservice:v2",
                     "--tcpcopy-baseline", "image:pytest-tcpcopy-example/jsonservice:v1",
                     "--tcpcopy-noise", "-q", "-k", "s00", str(EXAMPLE))  # fmt: skip
    assert "15 failed, 39 passed, 1 deselected" in result.stdout, result.stdout[-3000:] + result.stderr
    failed = {line.split("::", 1)[1].split(" - ")[0].split("-", 1)[1] for line in result.stdout.splitlines()
              if line.startswith("FAILED ")}  # fmt: skip
    assert failed == {"GET /api/users/2", "GET /api/users/5", "GET /api/users/7"}
    assert "body.plan: 'premium' -> 'free'" in result.stdout
