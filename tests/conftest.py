"""Shared test plumbing: prerequisites that skip on a laptop but fail under CI=true."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, what: str) -> None:
    """Skip when a prerequisite is missing; under CI=true fail instead, naming what is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing under CI=true: {what}", pytrace=False)
    pytest.skip(f"prerequisite missing: {what}")


def require_root() -> None:
    require(os.geteuid() == 0, "root (network namespaces, raw sockets, iptables)")


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    require(not missing, f"commands not on PATH: {', '.join(missing)}")


@pytest.fixture
def root() -> None:
    """Use as a fixture argument in tests that need root."""
    require_root()


def shared_dir() -> Path:
    """The workplace's shared/ folder (benchmark captures): $TCPCOPY_SHARED, beside the checkout
    (where CI puts it), or /work/shared."""
    here = Path(__file__).resolve().parents[1]
    for candidate in (os.environ.get("TCPCOPY_SHARED"), here.parent / "shared", "/work/shared"):
        if candidate and (Path(candidate) / "bench").is_dir():
            return Path(candidate)
    return here.parent / "shared"


def _our_namespaces() -> set[str]:
    """Namespaces of ours that this test run could have made: those of rigs owned by another
    live test run (a concurrent session) are not ours to judge."""
    if shutil.which("ip") is None:
        return set()
    import subprocess

    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    names = {line.split()[0] for line in out.splitlines() if line.startswith(("tcpcopy-", "tcpcp-"))}
    return {name for name in names if not _owned_by_another_run(name)}


def _owned_by_another_run(namespace: str) -> bool:
    run = namespace.rsplit("-", 1)[0]
    try:
        pid = int(Path("/run/pytest-tcpcopy", run, "owner").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return pid != os.getpid() and Path(f"/proc/{pid}").exists() and not _descends_from_us(pid)


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _descends_from_us(pid: int) -> bool:
    me = os.getpid()
    for _ in range(64):
        if pid == me:
            return True
        pid = _parent(pid)
        if pid <= 1:
            return False
    return False


def _our_processes() -> set[int]:
    """Intercepts and copiers started by this test run (by their command lines)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"pytest_tcpcopy\x00intercept" in cmd or b"pytest_tcpcopy\x00replay" in cmd:
                pid = int(proc.name)
                if _descends_from_us(pid) or _parent(pid) == 1:  # ours, or orphaned (a leak)
                    found.add(pid)
    return found


@pytest.fixture(autouse=True)
def _leaves_nothing_behind(request):
    """After every end-to-end test: no namespace, intercept or copier of ours that it started."""
    if "e2e" not in request.node.path.parts:
        yield
        return
    namespaces, processes = _our_namespaces(), _our_processes()
    yield
    left_ns = _our_namespaces() - namespaces
    left_procs = _our_processes() - processes
    assert not left_ns, f"network namespaces left behind: {sorted(left_ns)}"
    assert not left_procs, f"intercept/copier processes left behind: {sorted(left_procs)}"
