"""Docker backend overhead with warm images: what a replay costs beyond the replay itself.

Per round: ``DockerBackend`` enter (reap, agent image lookup, network), each SUT's start (container,
readiness probed from inside the network, intercept sidecar ready), the time from the round's
start and from the ``replay()`` call to the first replayed packet (seen by tcpdump inside the
first SUT's network namespace), the replay call, and teardown. The SUT is the e2e recording
server FROM the agent's base image; the capture is made once with real clients (as root).

Run as root:  python benchmarks/bench_docker_overhead.py [--rounds N] [--suts K]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from replay_support import RECORDING_SERVER, make_capture

from pytest_tcpcopy.backends.base import SutSpec
from pytest_tcpcopy.backends.docker.backend import DockerBackend
from pytest_tcpcopy.backends.docker.images import IMAGE_LABEL, default_base_image, ensure_agent_image
from pytest_tcpcopy.replay.contract import CopierSettings

PORT = 8080
SUT_TAG = "pytest-tcpcopy-bench-sut:latest"


def sut_image(client) -> str:
    dockerfile = (
        f"FROM {default_base_image(client)}\nCOPY recording_server.py /srv/recording_server.py\n"
        f'CMD ["python3", "-u", "/srv/recording_server.py", "http", "{PORT}", "/dev/null"]\n'
    ).encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("recording_server.py", Path(RECORDING_SERVER).read_bytes())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=SUT_TAG, labels={IMAGE_LABEL: "1"}, rm=True)
    return SUT_TAG


def first_packet_watch(pid: int) -> subprocess.Popen:
    """tcpdump in the SUT's network namespace, exiting at the first replayed packet (epoch stamp)."""
    argv = [
        "nsenter",
        "-t",
        str(pid),
        "-n",
        "tcpdump",
        "-tt",
        "-n",
        "-l",
        "--immediate-mode",
        "-c",
        "1",
        "-i",
        "any",
        "src net 198.18.0.0/15",
    ]
    dump = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while "listening on" not in (line := dump.stderr.readline()):
        if not line:
            raise RuntimeError("tcpdump did not start in the SUT's namespace")
    return dump


def one_round(client, agent: str, image: str, capture: Path, suts: int) -> dict[str, float]:
    t0 = time.time()
    with DockerBackend(client=client, agent_image=agent, log=lambda line: None) as run:
        t_enter = time.time()
        started, marks = [], []
        for i in range(suts):
            started.append(run.start_sut(SutSpec(f"sut{i}", PORT, image=image)))
            marks.append(time.time())
        dump = first_packet_watch(started[0].container.attrs["State"]["Pid"])
        t_replay = time.time()
        totals = [r.result.totals() for r in run.replay(capture, CopierSettings(max_duration=60))]
        t_done = time.time()
        first = float(dump.communicate(timeout=10)[0].split()[0])
    t_closed = time.time()
    assert all(t["completed"] == t["sessions"] for t in totals), totals
    figures = {"enter": t_enter - t0}
    for i, mark in enumerate(marks):
        figures[f"start sut{i} (+ready +intercept)"] = mark - (marks[i - 1] if i else t_enter)
    figures.update(
        {
            "start -> first replayed packet": first - t0,
            "replay() call -> first replayed packet": first - t_replay,
            f"replay() total ({totals[0]['sessions']} sessions x {suts} SUTs)": t_done - t_replay,
            "copier's own elapsed (sut0)": totals[0]["elapsed"],
            "teardown": t_closed - t_done,
            "round total": t_closed - t0,
        }
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--suts", type=int, default=2, help="SUTs side by side per round (default 2)")
    args = parser.parse_args()
    client = docker.from_env()
    agent = ensure_agent_image(client)
    image = sut_image(client)
    with tempfile.TemporaryDirectory(prefix="tcpcopy-bench-") as work:
        server = [sys.executable, RECORDING_SERVER, "http", str(PORT), "/dev/null"]
        capture = make_capture(Path(work, "bench.pcap"), PORT, server, [["oneshot", "20"], ["keepalive", "5", "10"]])
        one_round(client, agent, image, capture, args.suts)  # warm-up: page cache, image layers
        rounds = [one_round(client, agent, image, capture, args.suts) for _ in range(args.rounds)]
    print(f"docker backend overhead, warm images, {args.rounds} rounds, {args.suts} SUTs side by side (seconds)")
    print(f"{'':48} {'median':>8} {'min':>8} {'max':>8}")
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        print(f"{key:48} {statistics.median(values):8.3f} {min(values):8.3f} {max(values):8.3f}")


if __name__ == "__main__":
    main()
