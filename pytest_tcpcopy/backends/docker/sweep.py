"""Removing a run's labelled containers and networks, and the reaper program that does it when
the run's owner is gone.

``sweep`` removes, once, the containers and then the networks a label filter selects; an object
that is already gone, or that someone else is removing, is no failure (two runs, the owner and
its reaper may sweep at the same time). It talks to the Docker Engine through ``EngineCalls``,
four calls that the owner makes with its Docker SDK client (``runs``) and the reaper with
``EngineApi``, a standard-library client, because the reaper runs inside the agent image, which
has no Docker SDK.

The reaper (``python3 -m pytest_tcpcopy.backends.docker.sweep RUN_ID``, see ``reaper``) is testcontainers'
Ryuk for one run: it checks that the Docker API answers, prints ``ready``, then reads its stdin
until end of file. Its owner holds that stdin (a Docker attach connection, or a pipe when the
reaper is a host process), so the end of file comes when the owner lets go or dies, by any
signal, SIGKILL included. It then sweeps the run until nothing of it has turned up for
``SETTLE`` seconds (a container the owner asked for just before it died may appear in the daemon
a moment later) and exits.
"""

from __future__ import annotations

import argparse
import enum
import http.client
import json
import signal
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .labels import REAPER_ROLE, ROLE_LABEL, run_filter

SETTLE = 2.0  # seconds without anything of the run turning up before the reaper is done
LIMIT = 60.0  # the reaper gives up after this long (a daemon that keeps failing)
_POLL = 0.25
DEFAULT_SOCKET = "/var/run/docker.sock"


class Removal(enum.Enum):
    REMOVED = "removed"
    GONE = "gone"  # not found, or its removal is already in progress elsewhere
    BUSY = "busy"  # still in use (a network with endpoints): try again later


class EngineCalls(Protocol):
    """The Docker Engine calls a sweep makes; listings are dicts as the Engine API returns them
    (``GET /containers/json``: Id, Names, Labels; ``GET /networks``: Id, Name, Labels)."""

    def containers(self, label: str) -> list[dict]: ...

    def networks(self, label: str) -> list[dict]: ...

    def remove_container(self, ident: str) -> Removal: ...

    def remove_network(self, ident: str) -> Removal: ...


@dataclass
class Swept:
    """What one sweep did: objects removed (``"container NAME"``, ``"network NAME"``) and those
    it found but could not remove yet."""

    removed: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.removed or self.busy)


def sweep(api: EngineCalls, label: str, select: Callable[[Mapping[str, str]], bool] = lambda labels: True) -> Swept:
    """Remove the containers, then the networks, carrying ``label`` (a Docker label filter,
    ``key`` or ``key=value``) whose labels ``select`` accepts."""
    swept = Swept()
    for kind, listing, remove in (
        ("container", api.containers, api.remove_container),
        ("network", api.networks, api.remove_network),
    ):
        for found in listing(label):
            if not select(found.get("Labels") or {}):
                continue
            outcome = remove(found["Id"])
            name = f"{kind} {_name(found)}"
            if outcome is Removal.REMOVED:
                swept.removed.append(name)
            elif outcome is Removal.BUSY:
                swept.busy.append(name)
    return swept


def _name(found: dict) -> str:
    if "Name" in found:
        return found["Name"]
    names = found.get("Names") or [found["Id"][:12]]
    return names[0].lstrip("/")


def not_a_reaper(labels: Mapping[str, str]) -> bool:
    return labels.get(ROLE_LABEL) != REAPER_ROLE


def sweep_until_settled(
    api: EngineCalls,
    run_id: str,
    *,
    settle: float = SETTLE,
    limit: float = LIMIT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Sweep the run (but its reapers) until nothing of it has turned up for ``settle`` seconds,
    or for at most ``limit`` seconds; returns what was removed."""
    start = clock()
    quiet_since = start
    removed: list[str] = []
    while True:
        swept = sweep(api, run_filter(run_id), not_a_reaper)
        removed += swept.removed
        now = clock()
        if swept.found:
            quiet_since = now
        if now - quiet_since >= settle or now - start >= limit:
            return removed
        sleep(_POLL)


class EngineApi:
    """A minimal Docker Engine API client over a unix socket (``unix:///path`` or a path) or plain
    TCP (``tcp://host:port``), one connection per call: the standard library only."""

    def __init__(self, address: str = DEFAULT_SOCKET, timeout: float = 30.0) -> None:
        if address.startswith("tcp://"):
            host, _, port = address.removeprefix("tcp://").rstrip("/").rpartition(":")
            self._connect: Callable[[], http.client.HTTPConnection] = lambda: http.client.HTTPConnection(
                host, int(port), timeout=timeout
            )
        elif address.startswith("unix://") or address.startswith("/"):
            path = address.removeprefix("unix://")
            self._connect = lambda: _UnixConnection(path, timeout)
        else:
            raise ValueError(f"Docker address {address!r}: only unix:// and tcp:// (plain HTTP) are spoken")
        self.address = address

    def ping(self) -> None:
        """Raise OSError unless the daemon answers."""
        status, body = self._call("GET", "/_ping")
        if status != 200:
            raise OSError(f"the Docker API at {self.address} answered {status}: {body[:200]!r}")

    def containers(self, label: str) -> list[dict]:
        return self._listing("/containers/json", {"all": "1", "filters": json.dumps({"label": [label]})})

    def networks(self, label: str) -> list[dict]:
        return self._listing("/networks", {"filters": json.dumps({"label": [label]})})

    def remove_container(self, ident: str) -> Removal:
        return self._removal("DELETE", f"/containers/{ident}?force=1&v=1")

    def remove_network(self, ident: str) -> Removal:
        return self._removal("DELETE", f"/networks/{ident}")

    def _listing(self, path: str, query: dict[str, str]) -> list[dict]:
        status, body = self._call("GET", f"{path}?{urllib.parse.urlencode(query)}")
        if status != 200:
            raise OSError(f"GET {path} answered {status}: {body[:200]!r}")
        return json.loads(body)

    def _removal(self, method: str, path: str) -> Removal:
        status, body = self._call(method, path)
        if status in (200, 204):
            return Removal.REMOVED
        if status == 404 or (status == 409 and b"in progress" in body):
            return Removal.GONE
        if status in (403, 409, 500):  # in use: a network with endpoints, a container being made
            return Removal.BUSY
        raise OSError(f"{method} {path} answered {status}: {body[:200]!r}")

    def _call(self, method: str, path: str) -> tuple[int, bytes]:
        conn = self._connect()
        try:
            conn.request(method, path, headers={"Host": "docker"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m pytest_tcpcopy.backends.docker.sweep",
        description="Wait for end of file on stdin, then remove the run's containers and networks.",
    )
    parser.add_argument("run_id")
    parser.add_argument("--docker", default=DEFAULT_SOCKET, metavar="ADDRESS",
                        help=f"the Docker API: a unix socket path or unix:// or tcp:// URL (default {DEFAULT_SOCKET})")
    args = parser.parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGHUP):  # the owner's terminal going away is no reason to stop
        signal.signal(signum, signal.SIG_IGN)
    try:
        api = EngineApi(args.docker)
        api.ping()
    except (OSError, ValueError) as exc:
        print(f"reaper: no Docker API at {args.docker}: {exc}", file=sys.stderr, flush=True)
        return 3
    print("ready", flush=True)
    while sys.stdin.buffer.read(65536):
        pass
    try:
        sweep_until_settled(api, args.run_id)
    except OSError as exc:
        print(f"reaper: sweeping run {args.run_id} failed: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
