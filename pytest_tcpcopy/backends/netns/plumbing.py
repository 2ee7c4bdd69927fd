"""Names, ownership and removal of the kernel objects one netns rig run creates.

A run is ``<prefix>-<run id>``: two namespaces ``<run>-cli`` / ``<run>-sut``, their
``/etc/netns/<name>/`` resolver directories, a veth pair ``veth<run id>c`` / ``veth<run id>s``
(created directly inside the namespaces, so it dies with them) and a state directory
``/run/pytest-tcpcopy/<run>/`` holding the SUT logs and an ``owner`` file with the pid and start
time of the process that made the run. A run whose owner is gone is a leftover, and
``reap_leftovers`` removes it (the run's supervisor, ``supervisor``, does so as soon as the owner
dies). Removal tolerates objects that vanish under it: a supervisor and other runs' reaping may
remove the same run at the same time.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pytest_tcpcopy.errors import EnvironmentProblem, UsageError

STATE_ROOT = "/run/pytest-tcpcopy"
RESOLV_ROOT = "/etc/netns"
_PREFIX = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_PREFIX_MAX = 32
_RUN_ID_HEX = 6


def sh(argv: Sequence[str]) -> str:
    """Run a command and return its stdout; failure raises EnvironmentProblem with its stderr."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise EnvironmentProblem(f"command not found: {argv[0]}") from None
    if done.returncode != 0:
        raise EnvironmentProblem(
            f"`{' '.join(argv)}` failed with exit code {done.returncode}: {done.stderr.strip()}"
        )
    return done.stdout


def require_netns_support() -> None:
    """Raise EnvironmentProblem unless we are root and have iproute2 and procps."""
    if os.geteuid() != 0:
        raise EnvironmentProblem(
            "netns backend needs root (ip netns, veth); run as root or use the docker backend"
        )
    if shutil.which("ip") is None:
        raise EnvironmentProblem("netns backend needs `ip` on PATH; install the iproute2 package")
    if shutil.which("sysctl") is None:
        raise EnvironmentProblem("netns backend needs `sysctl` on PATH; install the procps package")


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can start namespace names; otherwise raise UsageError."""
    if len(prefix) > _PREFIX_MAX or not _PREFIX.fullmatch(prefix):
        raise UsageError(
            f"netns prefix {prefix!r} must be dash-separated words of lowercase letters and "
            f"digits, at most {_PREFIX_MAX} characters (e.g. 'tcpcopy')"
        )
    return prefix


@dataclass(frozen=True, slots=True)
class RunNames:
    """Every name one rig run uses, derived from its prefix and run id."""

    prefix: str
    run_id: str

    @classmethod
    def fresh(cls, prefix: str) -> RunNames:
        return cls(check_prefix(prefix), secrets.token_hex(_RUN_ID_HEX // 2))

    @property
    def run(self) -> str:
        return f"{self.prefix}-{self.run_id}"

    @property
    def client_ns(self) -> str:
        return f"{self.run}-cli"

    @property
    def sut_ns(self) -> str:
        return f"{self.run}-sut"

    @property
    def namespaces(self) -> tuple[str, str]:
        return self.client_ns, self.sut_ns

    @property
    def client_if(self) -> str:
        return f"veth{self.run_id}c"

    @property
    def sut_if(self) -> str:
        return f"veth{self.run_id}s"

    @property
    def state_dir(self) -> str:
        return os.path.join(STATE_ROOT, self.run)

    @property
    def owner_file(self) -> str:
        return os.path.join(self.state_dir, "owner")

    @staticmethod
    def resolv_dir(namespace: str) -> str:
        return os.path.join(RESOLV_ROOT, namespace)


def claim(names: RunNames) -> None:
    """Make the run's state directory with this process as its owner, before anything else.

    The directory appears with its owner file already inside, so a concurrent reaper never sees
    an ownerless run that is merely starting.
    """
    os.makedirs(STATE_ROOT, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".claim-", dir=STATE_ROOT)
    with open(os.path.join(staging, "owner"), "w", encoding="ascii") as f:
        f.write(f"{os.getpid()} {_start_time(os.getpid())}\n")
    os.rename(staging, names.state_dir)


def _start_time(pid: int) -> str | None:
    """The kernel's start time of a live (non-zombie) process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, start = fields[0], fields[19]
    return None if state in ("Z", "X") else start


def _owner_alive(names: RunNames) -> bool:
    try:
        with open(names.owner_file, encoding="ascii") as f:
            pid, start = f.read().split()
    except (FileNotFoundError, ValueError):
        return False
    return _start_time(int(pid)) == start


def list_namespaces() -> list[str]:
    """Names of all named network namespaces (``ip netns list``)."""
    return [line.split()[0] for line in sh(["ip", "netns", "list"]).splitlines() if line.strip()]


def _namespace_pids(namespaces: Iterable[str]) -> list[int]:
    existing = set(list_namespaces())
    pids: list[int] = []
    for name in namespaces:
        if name in existing:
            try:
                pids += [int(p) for p in sh(["ip", "netns", "pids", name]).split()]
            except EnvironmentProblem:
                if name in list_namespaces():
                    raise
    return pids


def _signal_pids(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def kill_namespace_processes(namespaces: Sequence[str], grace: float) -> None:
    """SIGTERM every process inside the namespaces, SIGKILL what is left after ``grace`` seconds."""
    pids = _namespace_pids(namespaces)
    _signal_pids(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = _namespace_pids(namespaces)
    for _ in range(40):
        if not pids:
            return
        _signal_pids(pids, signal.SIGKILL)
        time.sleep(0.05)
        pids = _namespace_pids(namespaces)
    raise EnvironmentProblem(f"processes {pids} in {', '.join(namespaces)} survive SIGKILL")


def remove_run(names: RunNames) -> list[str]:
    """Delete the run's namespaces, resolver dirs, stray root-namespace veths and state directory.

    Processes must be stopped first. Every step is tried; failures are raised together at the end.
    Returns what was removed.
    """
    removed: list[str] = []
    problems: list[str] = []
    existing = set(list_namespaces())
    for namespace in names.namespaces:
        if namespace in existing:
            gone = lambda namespace=namespace: namespace not in list_namespaces()  # noqa: E731
            _attempt(problems, removed, namespace, gone, sh, ["ip", "netns", "delete", namespace])
        resolv_dir = names.resolv_dir(namespace)
        if os.path.isdir(resolv_dir):
            _attempt(problems, removed, resolv_dir, _no_dir(resolv_dir), shutil.rmtree, resolv_dir)
    for link in (names.client_if, names.sut_if):
        if os.path.exists(f"/sys/class/net/{link}"):
            gone = lambda link=link: not os.path.exists(f"/sys/class/net/{link}")  # noqa: E731
            _attempt(problems, removed, link, gone, sh, ["ip", "link", "delete", link])
    if os.path.isdir(names.state_dir):
        _attempt(problems, removed, names.state_dir, _no_dir(names.state_dir), shutil.rmtree, names.state_dir)
    if problems:
        raise EnvironmentProblem(
            f"could not remove all of netns run {names.run}: " + "; ".join(problems)
        )
    return removed


def run_exists(names: RunNames) -> bool:
    """True while anything of the run is left: a namespace, a resolver dir, a veth, the state dir."""
    return (
        any(ns in list_namespaces() for ns in names.namespaces)
        or any(os.path.isdir(names.resolv_dir(ns)) for ns in names.namespaces)
        or any(os.path.exists(f"/sys/class/net/{link}") for link in (names.client_if, names.sut_if))
        or os.path.isdir(names.state_dir)
    )


def _no_dir(path: str) -> Callable[[], bool]:
    return lambda: not os.path.isdir(path)


def _attempt(
    problems: list[str],
    removed: list[str],
    what: str,
    gone: Callable[[], bool],
    action: Callable[..., object],
    *args: object,
) -> None:
    """Run ``action(*args)``; a failure is a problem unless ``gone()`` says someone else removed it."""
    try:
        action(*args)
    except (EnvironmentProblem, OSError) as exc:
        if not gone():
            problems.append(f"{what}: {exc}")
    else:
        removed.append(what)


def reap_leftovers(prefix: str = "tcpcopy", grace: float = 1.0) -> list[str]:
    """Remove every run with this prefix whose owner process is dead; return what was removed.

    Runs of live owners (another test session, an xdist worker) are left alone.
    """
    require_netns_support()
    run_of = re.compile(
        re.escape(check_prefix(prefix)) + rf"-([0-9a-f]{{{_RUN_ID_HEX}}})(?:-cli|-sut)?"
    )
    candidates = list_namespaces()
    for directory in (RESOLV_ROOT, STATE_ROOT):
        if os.path.isdir(directory):
            candidates += os.listdir(directory)
    run_ids = sorted({m.group(1) for m in map(run_of.fullmatch, candidates) if m})
    removed: list[str] = []
    for run_id in run_ids:
        names = RunNames(prefix, run_id)
        if _owner_alive(names):
            continue
        kill_namespace_processes(names.namespaces, grace)
        removed += remove_run(names)
    return removed
