"""The reaper's sweep against an engine in memory (objects that vanish, appear late or stay busy),
its standard-library Engine API client against an HTTP server on a unix socket, and the
privileges each container kind gets."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_tcpcopy.backends.docker.labels import REAPER_ROLE, ROLE_LABEL, RUN_LABEL, run_filter
from pytest_tcpcopy.backends.docker.privileges import agent_privileges, sut_privileges
from pytest_tcpcopy.backends.docker.sweep import EngineApi, Removal, not_a_reaper, sweep, sweep_until_settled
from pytest_tcpcopy.errors import UsageError


class Engine:
    """Containers and networks by id, with labels; removal outcomes can be scripted per id."""

    def __init__(self) -> None:
        self.containers_: dict[str, dict] = {}
        self.networks_: dict[str, dict] = {}
        self.outcomes: dict[str, list[Removal]] = {}
        self.calls: list[str] = []

    def add(self, kind: str, ident: str, run: str, role: str = "sut") -> None:
        labels = {RUN_LABEL: run, ROLE_LABEL: role}
        if kind == "container":
            self.containers_[ident] = {"Id": ident, "Names": [f"/{ident}"], "Labels": labels}
        else:
            self.networks_[ident] = {"Id": ident, "Name": ident, "Labels": labels}

    def _select(self, objects: dict[str, dict], label: str) -> list[dict]:
        key, _, value = label.partition("=")
        return [o for o in objects.values() if key in o["Labels"] and (not value or o["Labels"][key] == value)]

    def containers(self, label: str) -> list[dict]:
        return self._select(self.containers_, label)

    def networks(self, label: str) -> list[dict]:
        return self._select(self.networks_, label)

    def remove_container(self, ident: str) -> Removal:
        return self._remove(self.containers_, ident)

    def remove_network(self, ident: str) -> Removal:
        if any(c for c in self.containers_.values() if c["Labels"][RUN_LABEL] == self.networks_[ident]["Labels"][RUN_LABEL]
               and c["Labels"][ROLE_LABEL] != REAPER_ROLE):  # fmt: skip
            return Removal.BUSY  # containers of the run are attached
        return self._remove(self.networks_, ident)

    def _remove(self, objects: dict[str, dict], ident: str) -> Removal:
        self.calls.append(ident)
        scripted = self.outcomes.get(ident)
        outcome = scripted.pop(0) if scripted else Removal.REMOVED
        if outcome is not Removal.BUSY:
            objects.pop(ident, None)
        return outcome


def test_sweep_removes_containers_then_networks_of_the_run_only():
    engine = Engine()
    engine.add("network", "net-a", "a")
    engine.add("container", "sut-a", "a")
    engine.add("container", "reaper-a", "a", REAPER_ROLE)
    engine.add("container", "sut-b", "b")
    swept = sweep(engine, run_filter("a"), not_a_reaper)
    assert swept.removed == ["container sut-a", "network net-a"]
    assert engine.calls == ["sut-a", "net-a"]
    assert set(engine.containers_) == {"reaper-a", "sut-b"}


def test_objects_gone_or_going_elsewhere_are_no_failure_and_busy_ones_are_reported():
    engine = Engine()
    engine.add("container", "c1", "a")
    engine.add("container", "c2", "a")
    engine.add("network", "n", "a")
    engine.outcomes = {"c1": [Removal.GONE], "c2": [Removal.BUSY]}
    swept = sweep(engine, run_filter("a"))
    assert swept.removed == []
    assert swept.busy == ["container c2", "network n"]


def test_sweep_selects_by_labels():
    engine = Engine()
    engine.add("container", "old", "a")
    engine.add("container", "live", "b")
    swept = sweep(engine, run_filter(), lambda labels: labels[RUN_LABEL] == "a")
    assert swept.removed == ["container old"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.events: dict[float, Callable[[], None]] = {}

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for at in sorted(self.events):
            if at <= self.now:
                self.events.pop(at)()


def test_the_reaper_catches_an_object_that_appears_after_its_first_sweep():
    """The owner asked for a container just before it died; the daemon makes it a moment later."""
    engine = Engine()
    engine.add("container", "sut", "a")
    clock = Clock()
    clock.events[0.6] = lambda: engine.add("container", "late", "a")
    removed = sweep_until_settled(engine, "a", settle=2.0, limit=60.0, clock=clock, sleep=clock.sleep)
    assert removed == ["container sut", "container late"]
    assert engine.containers_ == {}
    assert 2.0 <= clock.now < 3.5


def test_the_reaper_keeps_trying_a_busy_object_until_its_limit():
    engine = Engine()
    engine.add("container", "stuck", "a")
    engine.outcomes = {"stuck": [Removal.BUSY] * 1000}
    clock = Clock()
    removed = sweep_until_settled(engine, "a", settle=2.0, limit=10.0, clock=clock, sleep=clock.sleep)
    assert removed == []
    assert 10.0 <= clock.now < 10.5


class _EngineHandler(http.server.BaseHTTPRequestHandler):
    engine: Engine
    seen: list[tuple[str, str, dict]]

    def _reply(self, status: int, body: object = None) -> None:
        self.send_response(status)
        if body is None:
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        self.seen.append(("GET", url.path, query))
        if url.path == "/_ping":
            self._reply(200, "OK")
            return
        [label] = json.loads(query["filters"])["label"]
        listing = self.engine.containers if url.path == "/containers/json" else self.engine.networks
        self._reply(200, listing(label))

    def do_DELETE(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        self.seen.append(("DELETE", url.path, dict(urllib.parse.parse_qsl(url.query))))
        ident = url.path.rsplit("/", 1)[1]
        if ident == "going":
            self._reply(409, {"message": "removal of container going is already in progress"})
        elif ident == "missing":
            self._reply(404, {"message": "No such container"})
        elif ident == "in-use":
            self._reply(403, {"message": "error while removing network: network in-use has active endpoints"})
        else:
            self._reply(204)

    def log_message(self, *args: object) -> None:
        pass


class _UnixHttpServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # BaseHTTPRequestHandler wants a (host, port) client address
        request, _ = super().get_request()
        return request, ("local", 0)


@pytest.fixture
def engine_socket(tmp_path: Path):
    engine = Engine()
    seen: list = []
    handler = type("Handler", (_EngineHandler,), {"engine": engine, "seen": seen})
    path = str(tmp_path / "docker.sock")
    server = _UnixHttpServer(path, handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield path, engine, seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_engine_api_client_speaks_the_docker_api_over_a_unix_socket(engine_socket):
    path, engine, seen = engine_socket
    engine.add("container", "c", "run1")
    engine.add("network", "n", "run1")
    api = EngineApi(f"unix://{path}")
    api.ping()
    assert [c["Id"] for c in api.containers(run_filter("run1"))] == ["c"]
    assert [n["Name"] for n in api.networks(run_filter("run1"))] == ["n"]
    assert seen[1] == ("GET", "/containers/json", {"all": "1", "filters": json.dumps({"label": [f"{RUN_LABEL}=run1"]})})
    assert api.remove_container("c") is Removal.REMOVED
    assert seen[-1] == ("DELETE", "/containers/c", {"force": "1", "v": "1"})
    assert api.remove_container("going") is Removal.GONE
    assert api.remove_container("missing") is Removal.GONE
    assert api.remove_network("in-use") is Removal.BUSY


def test_the_engine_api_client_refuses_what_it_cannot_speak():
    with pytest.raises(ValueError, match="only unix:// and tcp://"):
        EngineApi("ssh://somewhere")
    with pytest.raises(OSError):
        EngineApi("/nonexistent/docker.sock").ping()


def test_the_sut_runs_without_net_raw_and_new_privileges_unless_given_back():
    assert sut_privileges() == {"cap_drop": ["NET_RAW"], "cap_add": None, "security_opt": ["no-new-privileges:true"]}
    given = sut_privileges(["cap_net_raw", "SYS_PTRACE"], new_privileges=True)
    assert given == {"cap_drop": None, "cap_add": ["NET_RAW", "SYS_PTRACE"], "security_opt": None}
    with pytest.raises(UsageError, match="capability 'NET RAW'"):
        sut_privileges(["NET RAW"])


def test_agents_run_as_nobody_with_one_capability_through_their_python():
    probe = agent_privileges(["python3", "-m", "x"])
    assert probe == {"command": ["python3", "-m", "x"], "user": "65534:65534", "cap_drop": ["ALL"],
                     "security_opt": ["no-new-privileges:true"]}  # fmt: skip
    copier = agent_privileges(["python3", "-m", "pytest_tcpcopy", "replay"], "NET_RAW")
    assert copier["command"][0] == "python3-netraw" and copier["cap_add"] == ["NET_RAW"]
    assert "security_opt" not in copier  # file capabilities are granted at exec
    assert agent_privileges(["python3"], "NET_ADMIN")["command"] == ["python3-netadmin"]
    with pytest.raises(UsageError):
        agent_privileges(["sh"], "NET_RAW")
