"""Replay traffic.pcap.gz with release v1 as the baseline and v2 as the candidate.

Docker backend (default): both releases are images built from the Dockerfile here by
``pytest_tcpcopy.docker.build`` (once; an unchanged folder is not built again), FROM the local base
image when there is one (no registry needed), else FROM python:3.11-slim. With
``--tcpcopy-backend netns`` (as root) the two releases run as local commands instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_tcpcopy.settings import Baseline

HERE = Path(__file__).resolve().parent
IMAGE = "pytest-tcpcopy-example/jsonservice:{release}"


def _build_images() -> dict[str, str]:
    from pytest_tcpcopy.docker.build import BuildSpec, build_image
    from pytest_tcpcopy.docker.images import default_base_image
    from pytest_tcpcopy.docker.runs import docker_client

    client = docker_client()
    base = default_base_image(client)
    tags = {}
    for release in ("v1", "v2"):
        spec = BuildSpec.parse(f"build:{HERE}", {"BASE_IMAGE": base, "RELEASE": release})
        build_image(client, spec, tag=IMAGE.format(release=release))
        tags[release] = IMAGE.format(release=release)
    return tags


def _command(release: str) -> tuple[str, ...]:
    return ("env", f"JSONSERVICE_RELEASE={release}", sys.executable, str(HERE / "app.py"))


@pytest.fixture(scope="session")
def releases(pytestconfig) -> dict[str, dict]:
    """How to run each release on the configured backend."""
    if pytestconfig.getoption("tcpcopy_backend") == "netns":
        return {r: {"image": None, "command": _command(r), "port": 8080} for r in ("v1", "v2")}
    return {r: {"image": tag, "command": (), "port": 8080} for r, tag in _build_images().items()}


@pytest.fixture(scope="session")
def tcpcopy_capture():
    return (HERE / "traffic.pcap.gz",)


@pytest.fixture(scope="session")
def tcpcopy_sut(releases):
    return releases["v2"]


@pytest.fixture(scope="session")
def tcpcopy_baseline(releases):
    v1 = releases["v1"]
    return Baseline("image", v1["image"]) if v1["image"] else Baseline("command", " ".join(v1["command"]))
