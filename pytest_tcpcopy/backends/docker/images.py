"""The images the Docker backend runs: a Debian base made without a registry, and the agent.

``build_base_image`` makes a Debian bookworm root file system with debootstrap (root only) and
imports it, for machines that cannot pull ``python:3.11-slim``. ``ensure_agent_image`` returns
the agent image for the installed package, building it when missing: the build context is made
from the files of the installed ``pytest_tcpcopy`` (not a git checkout), and the image tag carries
a digest of them, so a changed package gets a fresh image. NetfilterQueue's sdist and its build
requirements are fetched on the host with pip when possible, so the build itself needs only
Debian's mirror (containers here cannot verify PyPI's TLS through the egress proxy; the host can).

The functions take a ``docker.DockerClient``; the SDK itself is imported only where its errors
are caught, so the CLI can import this module for its defaults on a machine without the SDK.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest_tcpcopy

from ...errors import EnvironmentProblem
from .labels import IMAGE_LABEL

BASE_IMAGE = "pytest-tcpcopy-base:bookworm"
PUBLIC_BASE_IMAGE = "python:3.11-slim"
AGENT_REPOSITORY = "pytest-tcpcopy-agent"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "iptables", "iproute2", "ca-certificates")
AGENT_REQUIREMENTS = ("NetfilterQueue>=1.1",)
BUILD_REQUIREMENTS = ("setuptools>=64", "wheel")
# Cython regenerates NetfilterQueue 1.1.0's C (which predates Python 3.11) and compiles our hot path
# (pytest_tcpcopy.speedups). Fetched twice: the compiled wheel for the host's own Python (fast,
# and used when the image's Python is the same) and the pure-Python one, which fits any.
CYTHON_REQUIREMENTS = ("Cython>=3",)

_PACKAGE_DIR = Path(pytest_tcpcopy.__file__).parent
_DOCKERFILE = Path(__file__).with_name("agent.Dockerfile")
_PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "pytest-tcpcopy"
version = "{version}"
requires-python = ">=3.10"
dependencies = {requirements}

[tool.setuptools.packages.find]
include = ["pytest_tcpcopy*"]

[tool.setuptools.package-data]
"*" = ["*.pxd"]
"""
_SETUP_PY = """\
from pathlib import Path
from runpy import run_path
from setuptools import setup
setup(ext_modules=run_path("pytest_tcpcopy/speedups.py")["extensions"](Path.cwd()))
"""
_BUILD_ARTEFACTS = {".pyc", ".so", ".pyd", ".c"}  # made on this host: the image compiles its own

Log = Callable[[str], None]


def _stderr_log(line: str) -> None:
    print(f"pytest-tcpcopy: {line}", file=sys.stderr, flush=True)


def apt_mirror(sources_dir: str = "/etc/apt") -> str:
    """The Debian mirror apt uses on this machine (deb822 sources first), else deb.debian.org."""
    deb822 = Path(sources_dir, "sources.list.d", "debian.sources")
    if deb822.exists():
        for stanza in deb822.read_text().split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.MULTILINE))
            if "bookworm" in fields.get("Suites", "").split() and fields.get("URIs"):
                return fields["URIs"].split()[0]
    legacy = Path(sources_dir, "sources.list")
    if legacy.exists():
        for match in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", legacy.read_text(), re.MULTILINE):
            return match.group(1)
    return DEFAULT_MIRROR


def build_base_image(client, tag: str = BASE_IMAGE, *, mirror: str | None = None, log: Log = _stderr_log) -> str:
    """Make a Debian bookworm image with python3, venv, iptables and iproute2 without a registry.

    Needs root and debootstrap. Returns the image id; the image is labelled ``pytest-tcpcopy=1``.
    """
    if os.geteuid() != 0:
        raise EnvironmentProblem("build-base-image runs debootstrap, which needs root; run it as root once")
    if shutil.which("debootstrap") is None:
        raise EnvironmentProblem("debootstrap is not installed: apt-get install -y debootstrap")
    mirror = mirror or apt_mirror()
    with tempfile.TemporaryDirectory(prefix="tcpcopy-base-") as work:
        rootfs = os.path.join(work, "rootfs")
        log(f"debootstrap bookworm from {mirror} into {rootfs} (about a minute)")
        argv = ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", "bookworm", rootfs, mirror]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip()[-2000:]
            raise EnvironmentProblem(f"debootstrap failed (exit {done.returncode}) with mirror {mirror}: {tail}")
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            _empty_dir(os.path.join(rootfs, leftover))
        Path(rootfs, "etc/apt/sources.list").write_text(f"deb {mirror} bookworm main\n")
        archive = os.path.join(work, "rootfs.tar")
        with tarfile.open(archive, "w") as tar:
            tar.add(rootfs, arcname=".")
        from docker.utils import parse_repository_tag

        repository, version = parse_repository_tag(tag)
        log(f"importing {archive} as {tag}")
        client.api.import_image_from_file(
            archive,
            repository=repository,
            tag=version or "latest",
            changes=['CMD ["/bin/bash"]', f"LABEL {IMAGE_LABEL}=1"],
        )
    return client.images.get(tag).id


def _empty_dir(path: str) -> None:
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def default_base_image(client) -> str:
    """The base for the agent: our debootstrap image when present, else the public slim image."""
    return BASE_IMAGE if image_exists(client, BASE_IMAGE) else PUBLIC_BASE_IMAGE


def agent_image_tag(base_image: str) -> str:
    """``pytest-tcpcopy-agent:VERSION-DIGEST``; the digest covers the package files, the
    Dockerfile and the base image name."""
    digest = hashlib.sha256(base_image.encode())
    for path in sorted(_package_files()):
        digest.update(str(path.relative_to(_PACKAGE_DIR)).encode() + b"\0" + path.read_bytes())
    return f"{AGENT_REPOSITORY}:{pytest_tcpcopy.__version__}-{digest.hexdigest()[:12]}"


def _package_files() -> list[Path]:
    return [
        p for p in _PACKAGE_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in _BUILD_ARTEFACTS
    ]


def ensure_agent_image(
    client, *, base_image: str | None = None, fetch_wheels: bool = True, log: Log = _stderr_log
) -> str:
    """The agent image tag for the installed package, built first when it is missing."""
    base = base_image or default_base_image(client)
    tag = agent_image_tag(base)
    if image_exists(client, tag):
        return tag
    if not image_exists(client, base) and base == PUBLIC_BASE_IMAGE:
        log(f"{base} is not present locally; the build will try to pull it")
    log(f"building the agent image {tag} from the installed package at {_PACKAGE_DIR} (FROM {base})")
    with tempfile.TemporaryDirectory(prefix="tcpcopy-agent-") as context:
        offline = _make_context(Path(context), fetch_wheels=fetch_wheels, log=log)
        import docker.errors

        try:
            client.images.build(
                path=context,
                tag=tag,
                rm=True,
                forcerm=True,
                pull=False,
                buildargs={"BASE_IMAGE": base, "PIP_NO_INDEX": "1" if offline else "0"},
                labels={IMAGE_LABEL: "1"},
            )
        except docker.errors.BuildError as exc:
            lines = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in exc.build_log)
            hint = ""
            if base == PUBLIC_BASE_IMAGE:
                hint = f"; without a registry, run `pytest-tcpcopy build-base-image` first (makes {BASE_IMAGE})"
            raise EnvironmentProblem(f"building {tag} FROM {base} failed: {exc.msg}{hint}\n{lines[-3000:]}") from None
    log(f"built {tag}")
    return tag


def _make_context(context: Path, *, fetch_wheels: bool, log: Log) -> bool:
    """Fill ``context``; True when wheels/ holds everything pip needs (build without PyPI)."""
    if not _DOCKERFILE.exists():
        raise EnvironmentProblem(f"{_DOCKERFILE} is missing from the installed package; reinstall pytest-tcpcopy")
    shutil.copy(_DOCKERFILE, context / "Dockerfile")
    src = context / "src" / "pytest_tcpcopy"
    for path in _package_files():
        target = src / path.relative_to(_PACKAGE_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    requirements = "[" + ", ".join(f'"{r}"' for r in AGENT_REQUIREMENTS) + "]"
    pyproject = _PYPROJECT.format(version=pytest_tcpcopy.__version__, requirements=requirements)
    (context / "src" / "pyproject.toml").write_text(pyproject)
    (context / "src" / "setup.py").write_text(_SETUP_PY)
    wheels = context / "wheels"
    wheels.mkdir()
    if not fetch_wheels:
        return False
    pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet", "--dest", str(wheels)]
    steps = (
        [*pip, "--no-deps", *(f"--no-binary={_name(r)}" for r in AGENT_REQUIREMENTS), *AGENT_REQUIREMENTS],
        [*pip, "--only-binary", ":all:", *BUILD_REQUIREMENTS],
        [*pip, "--no-deps", "--only-binary", ":all:", *CYTHON_REQUIREMENTS],
        [*pip, "--no-deps", "--only-binary", ":all:", "--platform", "any", *CYTHON_REQUIREMENTS],
    )
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            log(f"pip download on the host failed, the image build will use PyPI: {done.stderr.strip()[-500:]}")
            return False
    return True


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0]


def image_exists(client, name: str) -> bool:
    import docker.errors

    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True
