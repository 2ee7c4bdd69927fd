"""Plumbing for end-to-end Docker tests: the daemon, the agent image, a SUT image (the recording
server FROM the agent's base, writing its per-connection record to stdout), and what is left of a
run. Test modules import the fixtures by name."""

from __future__ import annotations

import hashlib
import io
import tarfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import require
from replay_support import RECORDING_SERVER

import docker
from pytest_tcpcopy.backends.docker.images import IMAGE_LABEL, default_base_image, ensure_agent_image
from pytest_tcpcopy.backends.docker.labels import PID_LABEL, RUN_LABEL
from pytest_tcpcopy.errors import EnvironmentProblem

PORT = 8080


@pytest.fixture(scope="module")
def client():
    try:
        found = docker.from_env()
        found.ping()
    except docker.errors.DockerException as exc:
        require(False, f"a Docker daemon (run docker/ci-setup.sh as root): {exc}")
    return found


@pytest.fixture(scope="module")
def agent_image(client):
    try:
        return ensure_agent_image(client)
    except EnvironmentProblem as exc:
        require(False, f"the agent image (run docker/ci-setup.sh as root to make the base image): {exc}")


@pytest.fixture(scope="module")
def sut_image(client, agent_image):
    """The recording server FROM the agent's base, tagged by the server's content; built once."""
    source = Path(RECORDING_SERVER).read_bytes()
    base = default_base_image(client)
    tag = f"pytest-tcpcopy-test-sut:{hashlib.sha256(source + base.encode()).hexdigest()[:12]}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    dockerfile = textwrap.dedent(f"""\
        FROM {base}
        COPY recording_server.py /srv/recording_server.py
        CMD ["python3", "-u", "/srv/recording_server.py", "http", "{PORT}", "/dev/stdout"]
    """).encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("recording_server.py", source)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, labels={IMAGE_LABEL: "1"}, rm=True)
    return tag


def left_of_run(client, run_id: str) -> list[str]:
    """Every container or network of the run still present (listed as the daemon has them, with
    no per-object look-up that could fail while they are being removed)."""
    return _left(client, f"{RUN_LABEL}={run_id}")


def left_of_owner(client, pid: int) -> list[str]:
    """Every container or network made by the process ``pid`` still present."""
    return _left(client, f"{PID_LABEL}={pid}")


def _left(client, label: str) -> list[str]:
    containers = client.api.containers(all=True, filters={"label": label})
    networks = client.api.networks(filters={"label": label})
    return [f"container {c['Names'][0].lstrip('/')}" for c in containers] + [f"network {n['Name']}" for n in networks]


def eventually(left: Callable[[], list], timeout: float) -> tuple[list, float]:
    """Poll ``left()`` until it is empty or ``timeout`` seconds have passed; what it last returned
    and the seconds it took."""
    start = time.monotonic()
    while True:
        found = left()
        elapsed = time.monotonic() - start
        if not found or elapsed >= timeout:
            return found, elapsed
        time.sleep(0.1)
