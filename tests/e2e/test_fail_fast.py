"""Fail fast, once, with real Docker: a run whose SUT cannot start says so in one line before
anything is collected or started; nothing is pulled unless allowed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require

import docker
from pytest_tcpcopy.backends.docker.images import BASE_IMAGE

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "examples" / "jsonservice" / "traffic.pcap.gz"
MISSING = "pytest-tcpcopy-no-such-image/typo:1"
HINT = f"is not present locally: build or pull it (docker pull {MISSING}), or let the run pull it"


@pytest.fixture(scope="module", autouse=True)
def _daemon():
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        require(False, f"a Docker daemon (run docker/ci-setup.sh as root): {exc}")
    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        require(False, f"the base image {BASE_IMAGE} (run docker/ci-setup.sh as root)")


def run(*argv: str, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    return done, time.monotonic() - started


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--tcpcopy-image", MISSING], f"ERROR: SUT candidate: image '{MISSING}' {HINT}"),
        (["--tcpcopy-image", BASE_IMAGE, "--tcpcopy-baseline", f"image:{MISSING}"],
         f"ERROR: SUT baseline: image '{MISSING}' {HINT}"),
        (["--tcpcopy-image", "Not A Reference"], "ERROR: SUT candidate: image 'Not A Reference' is not a valid image"),
        (["--tcpcopy-image", "build:no/such/folder"],
         "ERROR: SUT candidate: 'build:no/such/folder': {cwd}/no/such/folder is neither a build context folder nor "
         "a Dockerfile"),
    ],
)  # fmt: skip
def test_a_sut_that_cannot_start_is_one_line_before_anything_runs(tmp_path, options, expected):
    done, took = run("-m", "pytest", "-p", "no:cacheprovider", str(CAPTURE), "--tcpcopy-port", "8080", *options,
                     cwd=tmp_path)  # fmt: skip
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected.format(cwd=tmp_path)), done.stderr
    assert "collected" not in done.stdout and "Traceback" not in done.stdout + done.stderr
    assert took < 60  # no retries, no pulls


def test_docker_run_checks_its_images_before_it_starts_anything(tmp_path):
    done, _ = run("-m", "pytest_tcpcopy", "docker-run", str(CAPTURE), "--image", BASE_IMAGE, "--port", "8080",
                  "--baseline-image", MISSING, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"pytest-tcpcopy docker-run: error: baseline image '{MISSING}' {HINT} "
                                                "(--tcpcopy-pull; docker-run: --pull)"]  # fmt: skip
