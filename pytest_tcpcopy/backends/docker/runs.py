"""Who made a container or network: run labels, and reaping what killed runs left behind.

Every container and network of a run carries ``pytest-tcpcopy=1``, ``pytest-tcpcopy.run=<id>``
and its owner (host name, pid and the pid's start time, so a recycled pid is not mistaken for the
owner). ``reap`` removes the objects whose owner on this host is gone; other hosts' objects (a
shared daemon) and runs kept on purpose (``keep=True``) are left alone. ``sweep_run`` removes one
run's objects by label, whatever made them. Both tolerate objects that vanish under them (another
run or a reaper removing them at the same time).
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass

import docker.errors

from ...errors import EnvironmentProblem
from .labels import HOST_LABEL, IMAGE_LABEL, KEEP_LABEL, PID_LABEL, ROLE_LABEL, RUN_LABEL, START_LABEL, run_filter
from .sweep import Removal, not_a_reaper, sweep

__all__ = ["RUN_LABEL", "RunLabels", "SdkEngine", "docker_client", "owner_gone", "reap", "sweep_run"]


@dataclass(frozen=True, slots=True)
class RunLabels:
    """The identity of one run, as Docker labels."""

    run_id: str
    pid: int
    start: str
    host: str
    keep: bool = False

    @classmethod
    def fresh(cls, run_id: str | None = None, *, keep: bool = False) -> RunLabels:
        pid = os.getpid()
        return cls(run_id or secrets.token_hex(4), pid, _start_time(pid) or "", socket.gethostname(), keep)

    def labels(self, role: str) -> dict[str, str]:
        """The labels of one object of this run; ``role`` says what it is (network, sut, intercept...)."""
        labels = {
            IMAGE_LABEL: "1",
            RUN_LABEL: self.run_id,
            PID_LABEL: str(self.pid),
            START_LABEL: self.start,
            HOST_LABEL: self.host,
            ROLE_LABEL: role,
        }
        if self.keep:
            labels[KEEP_LABEL] = "1"
        return labels


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None
    when it is gone (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def owner_gone(labels: dict[str, str], host: str | None = None) -> bool:
    """True when the object's owner ran on this host and is no longer running."""
    if labels.get(HOST_LABEL) != (host or socket.gethostname()) or labels.get(KEEP_LABEL) == "1":
        return False
    pid = labels.get(PID_LABEL, "")
    if not pid.isdigit():
        return False
    start = _start_time(int(pid))
    return start is None or start != labels.get(START_LABEL)


def docker_client():
    """A client for the daemon of the environment (DOCKER_HOST ...), checked to answer."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise EnvironmentProblem(f"no Docker daemon answers ({exc}); start dockerd or set DOCKER_HOST") from None
    return client


def reap(client=None) -> list[str]:
    """Remove containers, then networks, of runs whose owner process is gone; returns their names.

    What cannot be removed yet (a network whose containers another process is still removing)
    is left for a later call."""
    if client is None:
        client = docker_client()
    return sweep(SdkEngine(client), run_filter(), owner_gone).removed


def sweep_run(client, run_id: str) -> list[str]:
    """Remove every container (but the run's reaper), then every network, labelled with the run;
    returns what could not be removed."""
    swept = sweep(SdkEngine(client), run_filter(run_id), not_a_reaper)
    return [f"{name}: still in use" for name in swept.busy]


class SdkEngine:
    """``sweep.EngineCalls`` made with a Docker SDK client's low-level API: listings are taken
    as the daemon returns them (no per-object look-up that fails when another process has just
    removed the object)."""

    def __init__(self, client) -> None:
        self._api = client.api

    def containers(self, label: str) -> list[dict]:
        return self._api.containers(all=True, filters={"label": label})

    def networks(self, label: str) -> list[dict]:
        return self._api.networks(filters={"label": label})

    def remove_container(self, ident: str) -> Removal:
        return _removal(self._api.remove_container, ident, force=True, v=True)

    def remove_network(self, ident: str) -> Removal:
        return _removal(self._api.remove_network, ident)


def _removal(remove, ident: str, **kwargs) -> Removal:
    try:
        remove(ident, **kwargs)
    except docker.errors.NotFound:
        return Removal.GONE
    except docker.errors.APIError as exc:
        if exc.status_code == 409 and "in progress" in str(exc.explanation or exc):
            return Removal.GONE
        if exc.status_code in (403, 409, 500):
            return Removal.BUSY
        raise
    return Removal.REMOVED
