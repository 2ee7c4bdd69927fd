"""``pytest-tcpcopy record`` for real: the example JSON service in a container (and on this host's
loopback), the example's client making its 30 scripted sessions (54 requests), the command
capturing them with AF_PACKET. The recording must hold exactly what the client did: its sessions
in order, each request (method, target, body), each answered.

Containers run on an internal Docker network made here, labelled with a run id and removed at
the end, also on failure; the loopback test's traffic never leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import runpy
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import require

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.compare.exchange import HttpRequest, HttpResponse
from pytest_tcpcopy.compare.pairing import exchanges_from_capture
from pytest_tcpcopy.flows import assemble_sessions

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jsonservice"
SCRIPT = runpy.run_path(str(EXAMPLE / "client.py"))["SESSIONS"]  # [(style, [(method, path, document)])]
PORT = 8080


def recorder(*args: str) -> subprocess.Popen:
    """``pytest-tcpcopy record ARGS --json`` once it says it is recording (the capture is armed).
    The command sets its own SIGINT and SIGTERM handlers, whatever it inherited from us."""
    process = subprocess.Popen([sys.executable, "-m", "pytest_tcpcopy", "record", *args, "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    first = process.stderr.readline()
    if not first.startswith("record: recording"):
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"record did not start: {first}{err}{out}")
    return process


def finished(process: subprocess.Popen, timeout: float = 60) -> tuple[dict, list[str]]:
    """The summary document and the progress lines of a recorder that stops by itself."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return json.loads(out), [line for line in err.splitlines() if line.startswith("record: ")]


def assert_holds_the_script(path: Path, port: int = PORT) -> None:
    """The recording's sessions are the client's, in order: every request as sent, answered."""
    with open_capture(path) as reader:
        sessions = sorted(assemble_sessions(reader, [port]), key=lambda s: s.index)
    assert len(sessions) == len(SCRIPT)
    for session, (style, requests) in zip(sessions, SCRIPT):
        assert session.handshake and session.closed and not session.gaps, session
        exchanges = exchanges_from_capture(session)
        assert [(e.request.method, e.request.target) for e in exchanges] == [(m, p) for m, p, _ in requests]
        for exchange, (_, _, document) in zip(exchanges, requests):
            assert isinstance(exchange.request, HttpRequest) and exchange.malformed is None, exchange
            assert exchange.request.body == (b"" if document is None else json.dumps(document).encode())
            assert isinstance(exchange.response, HttpResponse) and exchange.response.status < 500
        if style == "close":
            assert dict(exchanges[-1].request.headers)["Connection"] == "close"


# --- a container's network namespace -------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        require(False, f"a Docker daemon (run docker/ci-setup.sh as root): {exc}")
    return client


@pytest.fixture(scope="module")
def service_image(client):
    """Release v1 of the example service, built from its Dockerfile (EXPOSE 8080)."""
    from pytest_tcpcopy.backends.docker.build import BuildSpec, build_image
    from pytest_tcpcopy.backends.docker.images import BASE_IMAGE, image_exists

    require(image_exists(client, BASE_IMAGE), f"the base image {BASE_IMAGE} (run docker/ci-setup.sh as root)")
    spec = BuildSpec.parse(f"build:{EXAMPLE}", {"BASE_IMAGE": BASE_IMAGE, "RELEASE": "v1"})
    return build_image(client, spec, log=lambda _: None)


@pytest.fixture
def service(client, service_image):
    """The service's container on an internal network of its own, up; and a client runner."""
    from pytest_tcpcopy.backends.docker.images import BASE_IMAGE
    from pytest_tcpcopy.backends.docker.runs import RunLabels

    run = RunLabels.fresh()
    containers, network = [], None
    try:
        network = client.networks.create(f"tcpcopy-{run.run_id}-rec", internal=True, labels=run.labels("network"))
        sut = client.containers.run(service_image, detach=True, name=f"tcpcopy-{run.run_id}-service",
                                    network=network.name, labels=run.labels("sut"))  # fmt: skip
        containers.append(sut)
        deadline = time.monotonic() + 30
        while "listening" not in sut.logs().decode(errors="replace"):
            sut.reload()
            assert sut.status == "running" and time.monotonic() < deadline, sut.logs().decode(errors="replace")
            time.sleep(0.1)

        def play() -> None:
            """The example's client, in a container beside the service, whole."""
            player = client.containers.run(
                BASE_IMAGE, ["python3", "/app/client.py", sut.name, str(PORT)], detach=True,
                name=f"tcpcopy-{run.run_id}-client", network=network.name, labels=run.labels("client"),
                volumes={str(EXAMPLE): {"bind": "/app", "mode": "ro"}},
            )  # fmt: skip
            containers.append(player)
            status = player.wait(timeout=120)
            assert status["StatusCode"] == 0, player.logs().decode(errors="replace")

        yield sut, play
    finally:
        for container in containers:
            container.remove(force=True)
        if network is not None:
            network.remove()


def test_recording_a_container_holds_what_its_client_did(service, tmp_path, root):
    sut, play = service
    out = tmp_path / "service.pcapng.gz"
    process = recorder("--container", sut.name, "--count", str(len(SCRIPT)), "--duration", "120",
                       "--progress", "0.2", "-o", str(out))  # fmt: skip
    try:
        play()
        summary, progress = finished(process)
    finally:
        process.kill()
        process.wait()
    assert summary["stopped"] == "count reached" and summary["format"] == "pcapng, gzip-compressed"
    assert (summary["sessions"], summary["whole_sessions"], summary["exchanges"]) == (30, 30, 54)
    assert summary["exchanges_by_codec"] == {"http": 54} and summary["notes"] == []
    assert progress and "sessions" in progress[-1]
    assert_holds_the_script(out)


def test_a_stopped_container_is_a_usage_error(client, service_image, tmp_path):
    from pytest_tcpcopy.backends.docker.runs import RunLabels

    run = RunLabels.fresh()
    stopped = client.containers.create(service_image, name=f"tcpcopy-{run.run_id}-stopped", labels=run.labels("sut"),
                                       network_mode="none")  # fmt: skip
    try:
        for ref, says in ((stopped.name, "is created"), (f"tcpcopy-{run.run_id}-nothing", "no such container")):
            done = subprocess.run([sys.executable, "-m", "pytest_tcpcopy", "record", "--container", ref,
                                   "-o", str(tmp_path / "x.pcap")], capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
            assert done.returncode == 2 and says in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    finally:
        stopped.remove(force=True)
    assert not (tmp_path / "x.pcap").exists()


# --- a port of this host ---------------------------------------------------------------------


@pytest.fixture
def local_service():
    """Release v1 of the example service on 127.0.0.1 (a thread of this process); its port."""
    app = runpy.run_path(str(EXAMPLE / "app.py"))
    handler = type("V1", (app["JsonServiceHandler"],), {"release": "v1", "log_message": lambda *a: None})
    server = app["JsonServiceServer"](("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_recording_a_host_port_until_interrupted(local_service, tmp_path, root):
    port = local_service
    out = tmp_path / "local.pcap"
    process = recorder("--iface", "lo", "--port", str(port), "-o", str(out))
    try:
        subprocess.run([sys.executable, str(EXAMPLE / "client.py"), "127.0.0.1", str(port)], check=True, timeout=120)
        time.sleep(0.5)  # the last ACKs
        process.send_signal(signal.SIGINT)
        summary, _ = finished(process)
    finally:
        process.kill()
        process.wait()
    assert summary["stopped"] == "stopped" and summary["format"] == "pcap"
    assert (summary["sessions"], summary["whole_sessions"], summary["exchanges"]) == (30, 30, 54)
    assert_holds_the_script(out, port)
