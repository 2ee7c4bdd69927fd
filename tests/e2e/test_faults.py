"""Faults injected into real runs, and what must hold after each: nothing of the run is left,
checked without starting another run.

- The owner of a netns run (``netns-run``) and of a Docker run (``docker-run``) is signalled at
  several points: SIGKILL (the rig's supervisor or the run's reaper removes everything), SIGINT
  and SIGTERM (the owner's own teardown does; its signal dispositions are set by the victim
  itself, since CI may start us with SIGINT ignored).
- Two runs at once, for each backend: both succeed, neither touches the other's objects.
- Hostile captures (a gzip bomb, a 4 GiB snap length, cut files, a million SYN-only sessions):
  a clear error or warning in bounded time and memory, before any SUT starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import require_root, require_tools
from docker_support import PORT, agent_image, client, eventually, left_of_owner, left_of_run, sut_image  # noqa: F401
from hostile_captures import cut_in_header, cut_in_record, gzip_bomb, huge_snaplen, syn_only
from replay_support import RECORDING_SERVER, make_capture

from pytest_tcpcopy.backends.docker.labels import PID_LABEL, ROLE_LABEL, RUN_LABEL
from pytest_tcpcopy.backends.docker.runs import RunLabels, reap

GONE_WITHIN = 20.0  # seconds: "within seconds", with room for a machine shared by other jobs
SLOW = "0.05"  # replay speed at which the capture below lasts about 7 s: killed mid-replay

# The victim sets its own signal dispositions (CI may start us with SIGINT ignored, and children
# inherit that), then runs the pytest-tcpcopy command line.
VICTIM = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
from pytest_tcpcopy.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _command(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", VICTIM, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait_for(found, what: str, victim: subprocess.Popen, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        if victim.poll() is not None:
            out, err = victim.communicate()
            pytest.fail(f"the victim exited ({victim.returncode}) before {what}: {err[-2000:]}{out[-500:]}")
        time.sleep(0.02)
    victim.kill()
    pytest.fail(f"no {what} within {timeout:g} s")


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    require_root()
    require_tools("ip", "tcpdump", "ethtool")
    base = tmp_path_factory.mktemp("fault-captures")
    server = [sys.executable, RECORDING_SERVER, "http", str(PORT), str(base / "capture-record.jsonl")]
    return make_capture(base / "faults.pcap", PORT, server, [["oneshot", "20"], ["keepalive", "3", "8"]])


def _server(tmp_path: Path, delay: float = 0.0) -> list[str]:
    """The recording server, started after ``delay`` seconds (a SUT that is slow to come up)."""
    server = f"{sys.executable} {RECORDING_SERVER} http {PORT} {tmp_path / 'record.jsonl'}"
    return ["sh", "-c", f"sleep {delay}; exec {server}"]


# --- netns -----------------------------------------------------------------------------------


def _netns_run_of(pid: int) -> str | None:
    """The netns run (``<prefix>-<id>``) whose owner is ``pid``, from the runs' owner files."""
    root = Path("/run/pytest-tcpcopy")
    for owner in root.glob("*/owner") if root.is_dir() else ():
        try:
            if owner.read_text().split()[0] == str(pid):
                return owner.parent.name
        except (OSError, IndexError):
            continue
    return None


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _pids_in(namespace: str) -> set[int]:
    done = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True)
    return {int(p) for p in done.stdout.split()} if done.returncode == 0 else set()


def _children(pid: int, needle: bytes) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == pid and needle in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _left_of_netns_run(run: str, pids: set[int]) -> list[str]:
    left = sorted(ns for ns in _namespaces() if ns in (f"{run}-cli", f"{run}-sut"))
    left += [p for p in (f"/run/pytest-tcpcopy/{run}", f"/etc/netns/{run}-cli", f"/etc/netns/{run}-sut") if os.path.exists(p)]
    left += [f"process {pid}" for pid in sorted(pids) if _alive(pid)]
    return left


@pytest.mark.parametrize(
    ("signum", "point"),
    [(signal.SIGKILL, "starting"), (signal.SIGKILL, "replaying"), (signal.SIGINT, "starting"),
     (signal.SIGTERM, "replaying")],  # fmt: skip
    ids=["SIGKILL-starting", "SIGKILL-replaying", "SIGINT-starting", "SIGTERM-replaying"],
)
def test_a_signalled_netns_run_leaves_nothing(capture, tmp_path, signum, point):
    victim = _command("netns-run", str(capture), "--port", str(PORT), "--speed", SLOW, "--",
                      *_server(tmp_path, delay=0.5))  # fmt: skip
    try:
        run = _wait_for(lambda: _netns_run_of(victim.pid), "netns run", victim)
        if point == "replaying":
            _wait_for(lambda: _children(victim.pid, b"pytest_tcpcopy\0replay"), "copier", victim)
            time.sleep(0.5)
        pids = _pids_in(f"{run}-sut") | _pids_in(f"{run}-cli")
        victim.send_signal(signum)
        victim.communicate(timeout=60)
    finally:
        victim.kill()
        victim.wait()
    assert victim.returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 130)
    if point == "replaying":
        assert len(pids) >= 3, pids  # the SUT, the intercept and the copier were running
    left, _ = eventually(lambda: _left_of_netns_run(run, pids), GONE_WITHIN)
    assert left == []


def test_two_netns_runs_at_once_both_succeed(capture, tmp_path):
    for i in range(2):
        (tmp_path / str(i)).mkdir()
    runs = [_command("netns-run", str(capture), "--port", str(PORT), "--json", "--", *_server(tmp_path / str(i)))
            for i in range(2)]  # fmt: skip
    outcomes = [run.communicate(timeout=120) for run in runs]
    for run, (out, err) in zip(runs, outcomes):
        assert run.returncode == 0, err[-2000:]
        doc = json.loads(out)
        assert doc["totals"]["completed"] == doc["totals"]["sessions"] > 0, doc["totals"]


# --- Docker ----------------------------------------------------------------------------------


def _docker_run(agent: str, image: str, capture: Path, *extra: str) -> subprocess.Popen:
    return _command("docker-run", str(capture), "--image", image, "--port", str(PORT), "--agent-image", agent, *extra)


def _role_of(client, pid: int, role: str) -> list[dict]:
    return client.api.containers(filters={"label": [f"{PID_LABEL}={pid}", f"{ROLE_LABEL}={role}"]}, all=True)


@pytest.mark.parametrize(
    ("signum", "point"),
    [(signal.SIGKILL, "starting"), (signal.SIGKILL, "replaying"), (signal.SIGINT, "starting"),
     (signal.SIGTERM, "starting"), (signal.SIGTERM, "replaying")],  # fmt: skip
    ids=["SIGKILL-starting", "SIGKILL-replaying", "SIGINT-starting", "SIGTERM-starting", "SIGTERM-replaying"],
)
def test_a_signalled_docker_run_leaves_nothing(client, agent_image, sut_image, capture, signum, point):
    """"starting": as soon as the SUT container exists in the daemon, while its owner is still in
    the call that creates and starts it; "replaying": half a second into the copier's replay."""
    victim = _docker_run(agent_image, sut_image, capture, "--speed", SLOW)
    try:
        role = "sut" if point == "starting" else "copier"
        [found] = _wait_for(lambda: _role_of(client, victim.pid, role), f"{role} container", victim)
        if point == "replaying":
            time.sleep(0.5)
        victim.send_signal(signum)
        victim.communicate(timeout=120)
    finally:
        victim.kill()
        victim.wait()
    assert victim.returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 130)
    left, _ = eventually(lambda: left_of_run(client, found["Labels"][RUN_LABEL]), GONE_WITHIN)
    assert left == []


_HOST_REAPED = """
import signal, sys, time
import docker
from pytest_tcpcopy.backends.docker.reaper import ProcessReaper
from pytest_tcpcopy.backends.docker.runs import RunLabels
client = docker.from_env()
run = RunLabels.fresh(sys.argv[1])
reaper = ProcessReaper(client, run)
client.networks.create(f"tcpcopy-{run.run_id}", internal=True, labels=run.labels("network"))
client.containers.create(sys.argv[2], ["sleep", "60"], name=f"tcpcopy-{run.run_id}-sut", labels=run.labels("sut"))
print("up", flush=True)
time.sleep(600)
"""


def test_the_host_process_reaper_removes_a_killed_owners_objects(client, agent_image):
    """Where no reaper container can run, a host process in a session of its own does the same."""
    run_id = f"hostreaped{os.getpid()}"
    victim = subprocess.Popen([sys.executable, "-c", _HOST_REAPED, run_id, agent_image], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = victim.stdout.readline()
        assert line == "up\n", victim.stderr.read() if not line else line
        assert len(left_of_run(client, run_id)) == 2
        victim.kill()
        victim.wait()
        left, _ = eventually(lambda: left_of_run(client, run_id), GONE_WITHIN)
    finally:
        victim.kill()
        victim.wait()
        reap(client)
    assert left == []


def test_two_docker_runs_at_once_both_succeed(client, agent_image, sut_image, capture):
    runs = [_docker_run(agent_image, sut_image, capture, "--json") for _ in range(2)]
    outcomes = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outcomes):
        assert run.returncode == 0, err[-2000:]
        [doc] = json.loads(out)
        assert doc["totals"]["completed"] == doc["totals"]["sessions"] > 0, doc["totals"]
        assert left_of_owner(client, run.pid) == []


def test_reaping_at_once_with_another_reaper_never_fails(client, agent_image):
    """Several processes reap the same dead run's objects at the same time (each run reaps
    leftovers on enter; a run's reaper sweeps it): each either removes an object or finds it gone."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mine = RunLabels.fresh()
    run = RunLabels(f"dead{os.getpid()}", dead.pid, mine.start, mine.host)
    network = client.networks.create(f"tcpcopy-{run.run_id}", internal=True, labels=run.labels("network"))
    for i in range(6):
        client.containers.create(agent_image, ["sleep", "60"], name=f"tcpcopy-{run.run_id}-c{i}",
                                 labels=run.labels("sut"), network=network.name)  # fmt: skip
    removed: list[list[str]] = []
    failures: list[BaseException] = []

    def reaper() -> None:
        try:
            removed.append(reap(client))
        except BaseException as exc:  # noqa: BLE001 - any escape is the failure under test
            failures.append(exc)

    threads = [threading.Thread(target=reaper) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    mine_removed = [name for names in removed for name in names if run.run_id in name]
    assert len(mine_removed) == len(set(mine_removed))  # each object removed once, by one of them
    reap(client)  # a network that was still in use while the others removed its containers
    assert left_of_run(client, run.run_id) == []


# --- errors that say what happened -----------------------------------------------------------

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


@pytest.mark.parametrize("backend", ["netns", "docker"])
def test_a_sut_that_dies_mid_replay_is_said_first_with_its_code_and_output(request, capture, backend):
    dies = ["python3", "-u", "-c", _DIES_ON_FIRST_REPLAYED_CLIENT]
    if backend == "docker":
        agent, image = request.getfixturevalue("agent_image"), request.getfixturevalue("sut_image")
        victim = _docker_run(agent, image, capture, "--json", "--", *dies)
        said = f"the SUT 'candidate' ({image}) exited with code 7 during the replay"
    else:
        victim = _command("netns-run", str(capture), "--port", str(PORT), "--json", "--", sys.executable, *dies[1:])
        said = "the SUT 'candidate' exited with code 7 during the replay"
    out, err = victim.communicate(timeout=300)
    assert victim.returncode == 1, err
    assert said in err
    doc = json.loads(out)
    doc = doc[0] if backend == "docker" else doc
    assert doc["notes"][0] == said  # before the unsent packets and resets it caused
    assert doc["sut_exit"]["code"] == 7
    assert "crashing on 198.1" in doc["sut_logs"]


# --- hostile captures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, capture) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hostile")
    return {
        "gzip bomb": gzip_bomb(base / "bomb.pcap.gz", gib=10),
        "huge snap length": huge_snaplen(base / "snaplen.pcap"),
        "cut in the file header": cut_in_header(capture, base / "cut-header.pcap"),
    }


_HOSTILE_ERRORS = {
    "gzip bomb": "decompression bomb",
    "huge snap length": "over the 16777216-byte limit",
    "cut in the file header": "file ends inside the 24-byte pcap header",
}


@pytest.mark.parametrize("kind", list(_HOSTILE_ERRORS))
def test_a_hostile_capture_is_refused_before_the_sut_starts(hostile, tmp_path, kind):
    marker = tmp_path / "sut-started"
    victim = _command("netns-run", str(hostile[kind]), "--port", str(PORT), "--",
                      "sh", "-c", f"touch {marker}; exec sleep 60")  # fmt: skip
    out, err = victim.communicate(timeout=120)
    assert victim.returncode == 2, err
    assert _HOSTILE_ERRORS[kind] in err and str(hostile[kind]) in err
    assert "Traceback" not in err
    assert not marker.exists()


def test_a_hostile_capture_starts_no_container(client, agent_image, sut_image, hostile):
    since = time.time() - 1
    victim = _docker_run(agent_image, sut_image, hostile["gzip bomb"])
    out, err = victim.communicate(timeout=120)
    assert victim.returncode == 2 and "decompression bomb" in err, err
    events = client.api.events(since=since, until=time.time() + 1, decode=True,
                               filters={"label": f"{PID_LABEL}={victim.pid}"})  # fmt: skip
    assert [event for event in events] == []


def test_a_capture_cut_in_its_last_record_is_read_up_to_the_cut(capture, tmp_path):
    cut = cut_in_record(capture, tmp_path / "cut-record.pcap")
    victim = _command("inspect", str(cut), "--json")
    out, err = victim.communicate(timeout=60)
    assert victim.returncode == 0, err
    doc = json.loads(out)
    assert any("truncated tail" in note and "file ends" in note for note in doc["notes"]), doc["notes"]
    assert doc["sessions"] and "Traceback" not in err


def test_a_million_syn_only_sessions_are_checked_in_flat_memory(tmp_path):
    path = syn_only(tmp_path / "syn.pcap", 1_000_000)
    script = (
        "import resource, sys\n"
        "from pytest_tcpcopy.capture.check import check_capture\n"
        "stats = check_capture(sys.argv[1])\n"
        "print(stats.tcp_packets, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    packets, max_rss_kib = map(int, done.stdout.split())
    assert packets == 1_000_000
    assert max_rss_kib < 200 * 1024  # streaming: the 70 MB file is never held, nor its sessions
