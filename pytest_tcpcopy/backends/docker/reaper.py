"""One reaper per Docker run: whatever kills the run's owner, the run's objects go within seconds.

As testcontainers' Ryuk, the reaper is a small container, ``tcpcopy-<run id>-reaper``, started
before anything else of the run: the agent image running ``python3 -m
pytest_tcpcopy.backends.docker.sweep RUN_ID`` (see ``sweep``) with the daemon's socket mounted, no network,
no capability, a read-only root, ``no-new-privileges`` and, when the socket's group may use it,
uid 65534. Its owner attaches to its stdin (``StdinOnce``) and holds the connection; when the owner
dies, by any signal, the kernel closes that connection, the daemon closes the reaper's stdin, and
the reaper removes every container and network labelled with the run, then itself
(``auto_remove``). It finds them by the run label, never by a list kept by the owner, so an
object whose creation was under way when the owner died goes too.

Where the container cannot run (the daemon's socket cannot be mounted, or does not answer from
inside), the same program runs as a host process in a session of its own, reading a pipe from its
owner, and talks to the daemon the owner talks to (a unix socket or plain ``tcp://``). Without
either, a warning says that a killed run's objects stay until the next run reaps them.

``release`` ends the watch when the owner is done: after a clean teardown it removes the reaper
at once; after a failure (an interrupt may have left a creation under way) it lets the reaper sweep
until the run has settled and waits for it to be gone.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from typing import Any

import docker.errors
from docker.types import LogConfig
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ReadTimeout

from ..watchdog import READY_TIMEOUT, WatchdogNotReady, start_watchdog
from .labels import REAPER_ROLE
from .runs import RunLabels
from .sweep import DEFAULT_SOCKET, LIMIT

Log = Callable[[str], None]
_SOCKET_IN_CONTAINER = "/var/run/docker.sock"
_NOBODY = 65534
_PROGRAM = ["python3", "-I", "-m", "pytest_tcpcopy.backends.docker.sweep"]


class ReaperUnavailable(Exception):
    """This kind of reaper cannot watch the run here; the message says why."""


class ContainerReaper:
    """The run's reaper as a container attached to by its owner."""

    def __init__(self, client, run: RunLabels, agent_image: str) -> None:
        self._client = client
        self.name = f"tcpcopy-{run.run_id}-{REAPER_ROLE}"
        api = client.api
        socket_path = daemon_socket(client) or DEFAULT_SOCKET
        host_config = api.create_host_config(
            binds={socket_path: {"bind": _SOCKET_IN_CONTAINER, "mode": "rw"}},
            network_mode="none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            read_only=True,
            auto_remove=True,
            log_config=LogConfig(type=LogConfig.types.JSON),
        )
        try:
            self.id = api.create_container(
                agent_image,
                [*_PROGRAM, run.run_id, "--docker", _SOCKET_IN_CONTAINER],
                name=self.name,
                labels=run.labels(REAPER_ROLE),
                user=_socket_user(socket_path),
                stdin_open=True,
                detach=False,  # with stdin_open: StdinOnce, the daemon closes stdin when the owner lets go
                host_config=host_config,
            )["Id"]
        except docker.errors.APIError as exc:
            raise ReaperUnavailable(f"creating {self.name}: {exc.explanation or exc}") from None
        self._stream: Any = None
        self._socket: socket.socket | None = None
        try:
            self._stream = api.attach_socket(self.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            self._socket = getattr(self._stream, "_sock", self._stream)
            api.start(self.id)
            _await_ready(self._socket, self.name)
        except BaseException as exc:
            self._remove()
            self._close_stream()
            if isinstance(exc, (docker.errors.APIError, OSError)):
                raise ReaperUnavailable(f"{self.name}: {exc}") from None
            raise

    def release(self, *, settle: bool) -> None:
        """End the watch; with ``settle``, let the reaper sweep until the run has settled first."""
        if settle:
            self._close_stream()
            try:
                self._client.api.wait(self.id, timeout=LIMIT + 10, condition="removed")
            except (docker.errors.APIError, ReadTimeout, RequestsConnectionError):
                pass  # gone already, or taking too long: removed below
        self._remove()
        self._close_stream()

    def _close_stream(self) -> None:
        for closable in (self._socket, self._stream):
            if closable is not None:
                try:
                    closable.close()
                except OSError:
                    pass

    def _remove(self) -> None:
        try:
            self._client.api.remove_container(self.id, force=True)
        except docker.errors.APIError:
            pass  # gone already (auto_remove), or going


class ProcessReaper:
    """The run's reaper as a host process reading a pipe from its owner."""

    def __init__(self, client, run: RunLabels) -> None:
        address = daemon_address(client)
        if address is None:
            raise ReaperUnavailable(f"a host reaper speaks unix:// and plain tcp:// only, not {client.api.base_url}")
        try:
            self._process = start_watchdog("pytest_tcpcopy.backends.docker.sweep", run.run_id, "--docker", address)
        except WatchdogNotReady as exc:
            raise ReaperUnavailable(f"the host reaper did not start: {exc.reason}") from None

    def release(self, *, settle: bool) -> None:
        """End the watch; with ``settle``, let the reaper sweep until the run has settled first."""
        assert self._process.stdin is not None
        if not settle:
            self._process.kill()
        self._process.stdin.close()
        try:
            self._process.wait(timeout=LIMIT + 10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stderr is not None:
            self._process.stderr.close()


def start_reaper(client, run: RunLabels, agent_image: str, log: Log) -> ContainerReaper | ProcessReaper | None:
    """The run's reaper: a container, else a host process, else None (said in the log)."""
    try:
        return ContainerReaper(client, run, agent_image)
    except ReaperUnavailable as exc:
        log(f"the reaper container could not start ({exc}); a host process watches run {run.run_id} instead")
    try:
        return ProcessReaper(client, run)
    except ReaperUnavailable as exc:
        log(f"no reaper watches run {run.run_id} ({exc}): if this process is killed, its containers "
            f"stay until the next run reaps them")  # fmt: skip
    return None


def daemon_socket(client) -> str | None:
    """The unix socket path the client talks to, or None when it speaks TCP."""
    adapter = client.api.get_adapter(client.api.base_url)
    return getattr(adapter, "socket_path", None)


def daemon_address(client) -> str | None:
    """The client's daemon as the sweep program takes it, or None (TLS, SSH)."""
    path = daemon_socket(client)
    if path is not None:
        return f"unix://{path}"
    base = client.api.base_url
    return "tcp://" + base.removeprefix("http://") if base.startswith("http://") else None


def _socket_user(path: str) -> str:
    """uid 65534 with the socket's group when that group may read and write it, else root (with
    no capability, which still owns a root-owned socket)."""
    try:
        info = os.stat(path)
    except OSError:
        return "0:0"
    return f"{_NOBODY}:{info.st_gid}" if info.st_mode & 0o060 == 0o060 and info.st_gid != 0 else "0:0"


def _await_ready(sock: socket.socket, name: str) -> None:
    """Read the attach stream (8-byte frame headers: stream, size) until the reaper says ``ready``;
    raise ReaperUnavailable with what it wrote instead when it exits or takes too long."""
    deadline = time.monotonic() + READY_TIMEOUT
    pending = b""
    said = {1: b"", 2: b""}
    sock.settimeout(1.0)
    try:
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                break
            pending += chunk
            while len(pending) >= 8:
                stream, size = struct.unpack(">BxxxL", pending[:8])
                if len(pending) < 8 + size:
                    break
                said[stream] = said.get(stream, b"") + pending[8 : 8 + size]
                pending = pending[8 + size :]
            if b"ready\n" in said[1]:
                return
        reason = (said[2] or said[1]).decode(errors="replace").strip() or "it said nothing"
        raise ReaperUnavailable(f"{name} did not get ready: {reason}")
    finally:
        sock.settimeout(None)
