"""The Docker backend for real: a real daemon, real images, real replays into SUT containers.

The SUT image is the recording server (tests/e2e/servers) FROM the agent's base image, writing
its per-connection record to stdout, so the container's logs say what the SUT received. Captures
are made once per module with real clients in throw-away namespaces (root). Images are built once
and cached by content; every test ends with nothing of its run left (checked by label).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import require, require_root, require_tools
from replay_support import RECORDING_SERVER, captured_sessions, make_capture, recorded_connections

import docker
from pytest_tcpcopy import speedups
from pytest_tcpcopy.backends.docker import DockerBackend, pair_results
from pytest_tcpcopy.commands import docker_run
from pytest_tcpcopy.docker.images import IMAGE_LABEL, apt_mirror, default_base_image, ensure_agent_image
from pytest_tcpcopy.docker.runs import RUN_LABEL, RunLabels, owner_gone, reap
from pytest_tcpcopy.errors import EnvironmentProblem, SutError

PORT = 8080
REPLAY_NET = "198.18.0.0/15"


# --- without a daemon: the pure parts --------------------------------------------------------


def test_pair_results_lines_up_sessions_by_session_and_copy():
    a = {"sessions": [{"session": 0, "copy": 0, "v": "a0"}, {"session": 1, "copy": 0, "v": "a1"}]}
    b = {"sessions": [{"session": 1, "copy": 0, "v": "b1"}, {"session": 0, "copy": 1, "v": "b01"}]}
    paired = pair_results([a, b])
    assert paired == {
        (0, 0): [a["sessions"][0], None],
        (1, 0): [a["sessions"][1], b["sessions"][0]],
        (0, 1): [None, b["sessions"][1]],
    }


def test_apt_mirror_from_deb822_and_legacy_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
    )
    assert apt_mirror(str(tmp_path)) == "http://mirror.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://legacy.example/debian bookworm main\n")
    assert apt_mirror(str(tmp_path)) == "http://legacy.example/debian"
    (tmp_path / "sources.list").unlink()
    assert apt_mirror(str(tmp_path)) == "http://deb.debian.org/debian"


def test_owner_gone_only_for_dead_processes_of_this_host():
    me = RunLabels.fresh()
    assert not owner_gone(me.labels("sut"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = RunLabels(me.run_id, dead.pid, me.start, me.host)
    assert owner_gone(gone.labels("sut"))
    assert not owner_gone(RunLabels(me.run_id, dead.pid, me.start, "another-host").labels("sut"))
    assert not owner_gone(RunLabels(me.run_id, dead.pid, me.start, me.host, keep=True).labels("sut"))
    recycled = RunLabels(me.run_id, me.pid, "1", me.host)  # our pid, someone else's start time
    assert owner_gone(recycled.labels("sut"))


# --- with a daemon ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    try:
        found = docker.from_env()
        found.ping()
    except docker.errors.DockerException as exc:
        require(False, f"a Docker daemon (run docker/ci-setup.sh as root): {exc}")
    return found


@pytest.fixture(scope="module")
def agent_image(client):
    try:
        return ensure_agent_image(client)
    except EnvironmentProblem as exc:
        require(False, f"the agent image (run docker/ci-setup.sh as root to make the base image): {exc}")


@pytest.fixture(scope="module")
def sut_image(client, agent_image):
    """The recording server FROM the agent's base, tagged by the server's content; built once."""
    source = Path(RECORDING_SERVER).read_bytes()
    base = default_base_image(client)
    tag = f"pytest-tcpcopy-test-sut:{hashlib.sha256(source + base.encode()).hexdigest()[:12]}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    dockerfile = textwrap.dedent(f"""\
        FROM {base}
        COPY recording_server.py /srv/recording_server.py
        CMD ["python3", "-u", "/srv/recording_server.py", "http", "{PORT}", "/dev/stdout"]
    """).encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("recording_server.py", source)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, labels={IMAGE_LABEL: "1"}, rm=True)
    return tag


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """A real capture: one-shot requests, keep-alive sessions and an upload, made once."""
    require_root()
    require_tools("ip", "tcpdump", "ethtool")
    base = tmp_path_factory.mktemp("docker-captures")
    server = [sys.executable, RECORDING_SERVER, "http", str(PORT), str(base / "capture-record.jsonl")]
    runs = [["oneshot", "12"], ["keepalive", "3", "8"], ["upload", "200000"]]
    return make_capture(base / "mixed.pcap", PORT, server, runs)


def _left(client, run_id: str) -> list[str]:
    """Every container or network of the run still present."""
    label = {"label": f"{RUN_LABEL}={run_id}"}
    return [f"container {c.name}" for c in client.containers.list(all=True, filters=label)] + [
        f"network {n.name}" for n in client.networks.list(filters=label)
    ]


def _records(sut, expected: int, tmp_path: Path, name: str) -> list[tuple[str, bytes, int]]:
    """The recording server's connections from replayed clients, once ``expected`` are logged
    (it logs a connection when the connection ends, which may trail the copier's result)."""
    path = tmp_path / f"{name}.record.jsonl"
    for _ in range(100):
        lines = [line for line in sut.logs().splitlines() if line.startswith('{"peer"')]
        path.write_text("\n".join(lines) + "\n")
        found = recorded_connections(path)
        if len(found) >= expected:
            return found
        time.sleep(0.1)
    return found


def _check_delivery(doc: dict, capture: Path, records) -> None:
    """Every session completed, and the SUT received exactly the captured client stream of each,
    on its own connection, and sent what the copier saw."""
    sessions = captured_sessions(capture, PORT)
    assert doc["totals"]["sessions"] == len(sessions)
    assert doc["totals"]["completed"] == len(sessions), doc["totals"]
    by_peer = {}
    for peer, received, sent in records:
        assert peer not in by_peer, f"two connections from {peer}"
        by_peer[peer] = (received, sent)
    assert len(by_peer) == len(sessions)
    for s in doc["sessions"]:
        received, sent = by_peer[s["client"]]
        assert received == sessions[s["captured_client"]].client_stream.data(), s
        assert s["response_bytes"] == sent, s
    assert Counter(s["captured_client"] for s in doc["sessions"]) == {c: 1 for c in sessions}


def test_replay_into_a_sut_container_delivers_every_captured_stream(client, agent_image, sut_image, capture, tmp_path):
    with DockerBackend(client=client, agent_image=agent_image) as run:
        sut = run.start_sut(sut_image, PORT)
        [doc] = run.replay(capture, [sut], "--max-duration", "60")
        records = _records(sut, doc["totals"]["sessions"], tmp_path, "candidate")
    _check_delivery(doc, capture, records)
    assert doc["sut"] == {"name": "candidate", "image": sut_image}
    assert doc["notes"] == []
    assert _left(client, run.run_id) == []


def test_side_by_side_replays_the_same_sessions_into_each_sut(client, agent_image, sut_image, capture, tmp_path):
    names = ("candidate", "baseline", "baseline2")
    with DockerBackend(client=client, agent_image=agent_image) as run:
        suts = [run.start_sut(sut_image, PORT, name=name) for name in names]
        docs = run.replay(capture, suts, "--max-duration", "60")
        records = [_records(sut, doc["totals"]["sessions"], tmp_path, sut.name) for sut, doc in zip(suts, docs)]
    assert [d["sut"]["name"] for d in docs] == list(names)
    assert len({s.address for s in suts}) == len(suts)
    for doc, recorded in zip(docs, records):
        _check_delivery(doc, capture, recorded)
    paired = pair_results(docs)
    assert len(paired) == len(captured_sessions(capture, PORT))
    for key, row in paired.items():
        assert all(s is not None for s in row), key
        assert len({s["captured_client"] for s in row}) == 1, row
        assert len({s["response"] for s in row}) == 1, key  # the same server answered the same
    assert _left(client, run.run_id) == []


def test_a_sut_that_exits_at_start_fails_fast_with_its_logs(client, agent_image):
    with pytest.raises(SutError) as caught, DockerBackend(client=client, agent_image=agent_image) as run:
        run.start_sut(agent_image, PORT, command=["sh", "-c", "echo no-config-found >&2; exit 3"], ready_timeout=300)
    message = str(caught.value)
    assert "exited with code 3 before accepting connections" in message  # not the 300 s timeout
    assert "no-config-found" in caught.value.logs
    assert _left(client, run.run_id) == []


_DIES_ON_FIRST_REPLAYED_CLIENT = f"""
import socket, sys
listener = socket.create_server(("0.0.0.0", {PORT}))
while True:
    conn, peer = listener.accept()
    if peer[0].startswith(("198.18.", "198.19.")):
        print("crashing on", peer[0], flush=True)
        sys.exit(7)
    conn.close()
"""


def test_a_sut_that_dies_during_the_replay_is_noted_with_its_logs(client, agent_image, sut_image, capture):
    with DockerBackend(client=client, agent_image=agent_image) as run:
        sut = run.start_sut(sut_image, PORT, command=["python3", "-u", "-c", _DIES_ON_FIRST_REPLAYED_CLIENT])
        [doc] = run.replay(capture, [sut], "--max-duration", "10")
    assert "the SUT 'candidate' exited with code 7 during the replay" in doc["notes"]
    assert "crashing on 198.1" in doc["sut_logs"]
    assert doc["totals"]["completed"] < doc["totals"]["sessions"]
    assert _left(client, run.run_id) == []


def test_a_sut_that_never_listens_times_out_with_its_logs(client, agent_image):
    with pytest.raises(SutError) as caught, DockerBackend(client=client, agent_image=agent_image) as run:
        run.start_sut(agent_image, PORT, command=["sh", "-c", "echo warming-up; exec sleep 600"], ready_timeout=1)
    assert "not ready" in str(caught.value) and "probed from inside the run's network" in str(caught.value)
    assert "warming-up" in caught.value.logs
    assert _left(client, run.run_id) == []


def test_cleanup_when_setup_fails_leaves_nothing(client, sut_image):
    run = DockerBackend(client=client, agent_image="pytest-tcpcopy-agent:no-such-tag")
    with pytest.raises(EnvironmentProblem, match="agent image"), run:
        run.start_sut(sut_image, PORT)  # the SUT starts, then its probe cannot
    assert _left(client, run.run_id) == []


def test_the_run_network_is_internal_and_replay_traffic_stays_in_the_sut(client, agent_image, sut_image, capture):
    require_tools("tcpdump")
    with DockerBackend(client=client, agent_image=agent_image) as run:
        sut = run.start_sut(sut_image, PORT)
        run.network.reload()
        assert run.network.attrs["Internal"] is True
        assert run.network.attrs["Labels"][RUN_LABEL] == run.run_id
        assert sut.container.attrs["HostConfig"]["PortBindings"] in (None, {})
        # Nothing addressed to or from a replayed client crosses the run's bridge.
        bridge = f"br-{run.network.id[:12]}"
        dump = subprocess.Popen(
            ["tcpdump", "-n", "-i", bridge, "-l", f"net {REPLAY_NET}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            while "listening on" not in (line := dump.stderr.readline()):
                assert line, "tcpdump exited before listening"
            [doc] = run.replay(capture, [sut], "--max-duration", "60")
        finally:
            dump.send_signal(signal.SIGINT)
            leaked, _ = dump.communicate(timeout=10)
    assert doc["totals"]["completed"] == doc["totals"]["sessions"] > 0
    assert leaked.strip() == ""


def test_the_agent_runs_our_commands_without_the_host_only_packages(client, agent_image):
    script = (
        "import importlib.util, sys\n"
        "from pytest_tcpcopy import cli\n"
        "for name in ('build_base_image', 'docker_run', *cli.COMMANDS):\n"
        "    __import__(f'pytest_tcpcopy.commands.{name}')\n"
        "import netfilterqueue\n"
        "print(sorted(m for m in ('pytest', 'scapy', 'docker', 'deepdiff') if importlib.util.find_spec(m)))\n"
    )
    assert _python_in_agent(client, agent_image, script) == "[]"


def test_the_agent_runs_the_compiled_hot_path(client, agent_image):
    script = (
        "import pytest_tcpcopy.speedups as s\n"
        "print(s.compilable_modules() == s.compiled_modules(), len(s.compilable_modules()))\n"
    )
    assert _python_in_agent(client, agent_image, script).split() == ["True", str(len(speedups.compilable_modules()))]


def _python_in_agent(client, agent_image: str, script: str) -> str:
    """What ``script`` prints, run by the agent image's python3 with no network."""
    out = client.containers.run(
        agent_image, ["python3", "-c", script], remove=True, network_mode="none", labels={IMAGE_LABEL: "1"}
    )
    return out.decode().strip()


_INTERRUPTED_RUN = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever the test runner's was
from pytest_tcpcopy.backends.docker import DockerBackend
with DockerBackend(agent_image=sys.argv[1], run_id=sys.argv[2]) as run:
    run.start_sut(sys.argv[3], {port})
    print("up", flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_removes_everything(client, agent_image, sut_image, signum):
    run_id = f"interrupted{os.getpid()}{int(signum)}"
    victim = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED_RUN.format(port=PORT), agent_image, run_id, sut_image],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = victim.stdout.readline()
        assert line == "up\n", victim.stderr.read() if not line else line
        assert len(_left(client, run_id)) == 4
        victim.send_signal(signum)
        _, err = victim.communicate(timeout=60)
    finally:
        victim.kill()
        victim.wait()
    assert "KeyboardInterrupt" in err
    assert _left(client, run_id) == []


def test_keep_leaves_the_run_up_and_says_how_to_reach_it(client, agent_image, sut_image):
    lines = []
    try:
        with DockerBackend(client=client, agent_image=agent_image, keep=True, log=lines.append) as run:
            sut = run.start_sut(sut_image, PORT)
        kept = _left(client, run.run_id)
        assert len(kept) == 4, kept
        assert any(f"docker exec -it {sut.container.name} sh" in line for line in lines), lines
        assert any(run.network_name in line for line in lines), lines
        assert sut.alive
        assert not [r for r in reap(client) if run.run_id in r]  # a kept run is not a leftover
    finally:
        for container in client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run.run_id}"}):
            container.remove(force=True)
        client.networks.get(run.network_name).remove()


_KILLED_RUN = """
import sys
from pytest_tcpcopy.backends.docker import DockerBackend
run = DockerBackend(agent_image=sys.argv[1], run_id=sys.argv[2]).__enter__()
run.start_sut(sys.argv[3], {port})
print("up", flush=True)
sys.stdin.read()
"""


def test_reap_removes_what_a_killed_run_left(client, agent_image, sut_image):
    run_id = f"killed{os.getpid()}"
    victim = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN.format(port=PORT), agent_image, run_id, sut_image],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = victim.stdout.readline()
        assert line == "up\n", victim.stderr.read() if not line else line
        assert len(_left(client, run_id)) == 4  # network, SUT, probe, intercept
    finally:
        victim.kill()
        victim.wait()
    removed = reap(client)
    assert _left(client, run_id) == []
    assert sum(run_id in r for r in removed) == 4, removed


def test_docker_run_command_prints_one_document_per_sut(client, agent_image, sut_image, capture, capsys):
    parser = argparse.ArgumentParser()
    docker_run.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "docker-run",
            str(capture),
            "--image",
            sut_image,
            "--baseline-image",
            sut_image,
            "--port",
            str(PORT),
            "--agent-image",
            agent_image,
            "--json",
            "--max-duration",
            "60",
        ]
    )
    args.command_after_dashes = []
    assert args.func(args) == 0
    docs = json.loads(capsys.readouterr().out)
    assert [d["sut"]["name"] for d in docs] == ["candidate", "baseline"]
    sessions = len(captured_sessions(capture, PORT))
    for doc in docs:
        assert doc["totals"]["sessions"] == doc["totals"]["completed"] == sessions
