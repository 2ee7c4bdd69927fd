"""Who made a container or network: run labels, and reaping what killed runs left behind.

Every container and network of a run carries ``pytest-tcpcopy=1``, ``pytest-tcpcopy.run=<id>``
and its owner (host name, pid and the pid's start time, so a recycled pid is not mistaken for the
owner). ``reap`` removes the objects whose owner on this host is gone; other hosts' objects (a
shared daemon) and runs kept on purpose (``keep=True``) are left alone.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass

import docker.errors

from ..errors import EnvironmentProblem
from .images import IMAGE_LABEL

RUN_LABEL = f"{IMAGE_LABEL}.run"
PID_LABEL = f"{IMAGE_LABEL}.owner-pid"
START_LABEL = f"{IMAGE_LABEL}.owner-start"
HOST_LABEL = f"{IMAGE_LABEL}.owner-host"
KEEP_LABEL = f"{IMAGE_LABEL}.keep"
ROLE_LABEL = f"{IMAGE_LABEL}.role"


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
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


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
    """Remove containers, then networks, of runs whose owner process is gone; returns their names."""
    if client is None:
        client = docker_client()
    removed = []
    for container in client.containers.list(all=True, filters={"label": RUN_LABEL}):
        if owner_gone(container.labels) and _removed(container.remove, force=True, v=True):
            removed.append(f"container {container.name}")
    for network in client.networks.list(filters={"label": RUN_LABEL}):
        if owner_gone(network.attrs.get("Labels") or {}) and _removed(network.remove):
            removed.append(f"network {network.name}")
    return removed


def _removed(remove, **kwargs) -> bool:
    """Call a Docker object's ``remove``; False when it was gone already."""
    try:
        remove(**kwargs)
    except docker.errors.NotFound:
        return False
    return True
