"""The Docker backend for real: a real daemon, real images, real replays into SUT containers.

The SUT image is the recording server (tests/e2e/servers) FROM the agent's base image, writing
its per-connection record to stdout, so the container's logs say what the SUT received. Captures
are made once per module with real clients in throw-away namespaces (root). Images are built once
and cached by content; every test ends with nothing of its run left (checked by label).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import require_root, require_tools
from docker_support import agent_image, client, left_of_run, sut_image  # noqa: F401 - fixtures
from replay_support import RECORDING_SERVER, captured_sessions, make_capture, recorded_connections

from pytest_tcpcopy import speedups
from pytest_tcpcopy.backends.base import SutSpec
from pytest_tcpcopy.backends.docker.backend import DockerBackend, pair_results
from pytest_tcpcopy.commands import docker_run
from pytest_tcpcopy.backends.docker.images import IMAGE_LABEL, apt_mirror
from pytest_tcpcopy.backends.docker.runs import RUN_LABEL, RunLabels, owner_gone, reap
from pytest_tcpcopy.errors import EnvironmentProblem, SutError
from pytest_tcpcopy.replay.contract import CopierSettings
from pytest_tcpcopy.replay.results import ReplayResult, SessionResult

PORT = 8080
REPLAY_NET = "198.18.0.0/15"


# --- without a daemon: the pure parts --------------------------------------------------------


def test_pair_results_lines_up_sessions_by_session_and_copy():
    def result(*keys: tuple[int, int]) -> ReplayResult:
        return ReplayResult([SessionResult(session, copy, "", "", "") for session, copy in keys], 0.0)

    a, b = result((0, 0), (1, 0)), result((1, 0), (0, 1))
    paired = pair_results([a, b])
    assert paired == {
        (0, 0): [a.sessions[0], None],
        (1, 0): [a.sessions[1], b.sessions[0]],
        (0, 1): [None, b.sessions[1]],
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
def capture(tmp_path_factory):
    """A real capture: one-shot requests, keep-alive sessions and an upload, made once."""
    require_root()
    require_tools("ip", "tcpdump", "ethtool")
    base = tmp_path_factory.mktemp("docker-captures")
    server = [sys.executable, RECORDING_SERVER, "http", str(PORT), str(base / "capture-record.jsonl")]
    runs = [["oneshot", "12"], ["keepalive", "3", "8"], ["upload", "200000"]]
    return make_capture(base / "mixed.pcap", PORT, server, runs)


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


def _check_delivery(result: ReplayResult, capture: Path, records) -> None:
    """Every session completed, and the SUT received exactly the captured client stream of each,
    on its own connection, and sent what the copier saw."""
    sessions = captured_sessions(capture, PORT)
    assert result.totals()["sessions"] == len(sessions)
    assert result.totals()["completed"] == len(sessions), result.totals()
    by_peer = {}
    for peer, received, sent in records:
        assert peer not in by_peer, f"two connections from {peer}"
        by_peer[peer] = (received, sent)
    assert len(by_peer) == len(sessions)
    for s in result.sessions:
        received, sent = by_peer[s.client]
        assert received == sessions[s.captured_client].client_stream.data(), s
        assert s.response_bytes == sent, s
    assert Counter(s.captured_client for s in result.sessions) == {c: 1 for c in sessions}


def test_replay_into_a_sut_container_delivers_every_captured_stream(client, agent_image, sut_image, capture, tmp_path):
    with DockerBackend(client=client, agent_image=agent_image) as run:
        sut = run.start_sut(SutSpec("candidate", PORT, image=sut_image))
        [replayed] = run.replay(capture, CopierSettings(max_duration=60))
        records = _records(sut, len(replayed.result.sessions), tmp_path, "candidate")
    _check_delivery(replayed.result, capture, records)
    assert replayed.sut == "candidate" and replayed.sut_logs is None
    assert replayed.result.notes == []
    assert left_of_run(client, run.run_id) == []


def test_side_by_side_replays_the_same_sessions_into_each_sut(client, agent_image, sut_image, capture, tmp_path):
    names = ("candidate", "baseline", "baseline2")
    with DockerBackend(client=client, agent_image=agent_image) as run:
        suts = [run.start_sut(SutSpec(name, PORT, image=sut_image)) for name in names]
        replays = run.replay(capture, CopierSettings(max_duration=60))
        records = [_records(sut, len(r.result.sessions), tmp_path, sut.name) for sut, r in zip(suts, replays)]
    assert [r.sut for r in replays] == list(names)
    assert len({s.address for s in suts}) == len(suts)
    for replayed, recorded in zip(replays, records):
        _check_delivery(replayed.result, capture, recorded)
    paired = pair_results([r.result for r in replays])
    assert len(paired) == len(captured_sessions(capture, PORT))
    for key, row in paired.items():
        assert all(s is not None for s in row), key
        assert len({s.captured_client for s in row}) == 1, row
        assert len({s.response_data() for s in row}) == 1, key  # the same server answered the same
    assert left_of_run(client, run.run_id) == []


def test_a_sut_that_exits_at_start_fails_fast_with_its_logs(client, agent_image):
    with pytest.raises(SutError) as caught, DockerBackend(client=client, agent_image=agent_image) as run:
        run.start_sut(SutSpec("candidate", PORT, image=agent_image,
                              command=("sh", "-c", "echo no-config-found >&2; exit 3"), ready_timeout=300))
    message = str(caught.value)
    assert "exited with code 3 before accepting connections" in message  # not the 300 s timeout
    assert "no-config-found" in caught.value.logs
    assert left_of_run(client, run.run_id) == []


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
        run.start_sut(SutSpec("candidate", PORT, image=sut_image,
                              command=("python3", "-u", "-c", _DIES_ON_FIRST_REPLAYED_CLIENT)))
        [replayed] = run.replay(capture, CopierSettings(max_duration=10))
    assert replayed.result.notes[0] == f"the SUT 'candidate' ({sut_image}) exited with code 7 during the replay"
    assert replayed.sut_exit == ("exited", 7)
    assert "crashing on 198.1" in replayed.sut_logs
    assert replayed.result.totals()["completed"] < replayed.result.totals()["sessions"]
    assert left_of_run(client, run.run_id) == []


def test_a_sut_that_never_listens_times_out_with_its_logs(client, agent_image):
    with pytest.raises(SutError) as caught, DockerBackend(client=client, agent_image=agent_image) as run:
        run.start_sut(SutSpec("candidate", PORT, image=agent_image,
                              command=("sh", "-c", "echo warming-up; exec sleep 600"), ready_timeout=1))
    assert "not ready" in str(caught.value) and "probed from inside the run's network" in str(caught.value)
    assert f"connect to {run.suts[0].target}: Connection refused" in str(caught.value)
    assert "Warning" not in str(caught.value)  # the probe's own reason, nothing of Python's
    assert "warming-up" in caught.value.logs
    assert left_of_run(client, run.run_id) == []


def test_cleanup_when_setup_fails_leaves_nothing(client, sut_image):
    run = DockerBackend(client=client, agent_image="pytest-tcpcopy-agent:no-such-tag")
    with pytest.raises(EnvironmentProblem, match="agent image"), run:
        run.start_sut(SutSpec("candidate", PORT, image=sut_image))  # the SUT starts, then its probe cannot
    assert left_of_run(client, run.run_id) == []


def test_the_run_network_is_internal_and_replay_traffic_stays_in_the_sut(client, agent_image, sut_image, capture):
    require_tools("tcpdump")
    with DockerBackend(client=client, agent_image=agent_image) as run:
        sut = run.start_sut(SutSpec("candidate", PORT, image=sut_image))
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
            [replayed] = run.replay(capture, CopierSettings(max_duration=60))
        finally:
            dump.send_signal(signal.SIGINT)
            leaked, _ = dump.communicate(timeout=10)
    assert replayed.result.totals()["completed"] == replayed.result.totals()["sessions"] > 0
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
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
from pytest_tcpcopy.backends.base import SutSpec
from pytest_tcpcopy.backends.docker.backend import DockerBackend
with DockerBackend(agent_image=sys.argv[1], run_id=sys.argv[2]) as run:
    run.start_sut(SutSpec("candidate", {port}, image=sys.argv[3]))
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
        assert len(left_of_run(client, run_id)) == 5  # network, SUT, probe, intercept, reaper
        victim.send_signal(signum)
        _, err = victim.communicate(timeout=60)
    finally:
        victim.kill()
        victim.wait()
    assert "KeyboardInterrupt" in err
    assert left_of_run(client, run_id) == []


def test_keep_leaves_the_run_up_and_says_how_to_reach_it(client, agent_image, sut_image):
    lines = []
    try:
        with DockerBackend(client=client, agent_image=agent_image, keep=True, log=lines.append) as run:
            sut = run.start_sut(SutSpec("candidate", PORT, image=sut_image))
        kept = left_of_run(client, run.run_id)
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
from pytest_tcpcopy.backends.base import SutSpec
from pytest_tcpcopy.backends.docker.backend import DockerBackend
run = DockerBackend(agent_image=sys.argv[1], run_id=sys.argv[2]).__enter__()
run.start_sut(SutSpec("candidate", {port}, image=sys.argv[3]))
print("up", flush=True)
sys.stdin.read()
"""


def test_reap_removes_what_a_killed_run_left_when_its_reaper_is_gone_too(client, agent_image, sut_image):
    """The reaper removes a killed run's objects within seconds (tests/e2e/test_faults.py); were the
    reaper killed as well (the daemon restarted, someone removed it), the next run's reap() does."""
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
        reaper = client.containers.get(f"tcpcopy-{run_id}-reaper")
        reaper.kill()  # SIGKILL: it sweeps nothing, and removes itself (auto_remove)
        client.api.wait(reaper.id, condition="removed", timeout=30)
        assert len(left_of_run(client, run_id)) == 4  # network, SUT, probe, intercept
    finally:
        victim.kill()
        victim.wait()
    removed = reap(client)
    assert left_of_run(client, run_id) == []
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
