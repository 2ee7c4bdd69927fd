"""Record ``traffic.pcap.gz``: real client traffic against release v1, as root.

    python3 examples/jsonservice/make_capture.py [--out PATH]

v1 runs in the SUT namespace of a ``NetnsRig`` (two namespaces on a veth pair, MTU 1500, offloads
off); tcpdump listens on the client's end of the veth while ``client.py`` plays its script from the
client namespace. The file is then checked: one captured session per scripted session, each with
its handshake and its close. Nothing leaves the namespaces the rig creates, and the rig removes
them on exit, also on failure.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from client import SESSIONS  # this directory is on sys.path when run as a script

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.errors import EnvironmentProblem
from pytest_tcpcopy.flows import assemble_sessions
from pytest_tcpcopy.backends.netns import NetnsRig

HERE = Path(__file__).resolve().parent
APP = HERE / "app.py"
CLIENT = HERE / "client.py"
PORT = 8080
SETTLE = 0.5  # seconds for the last FINs and ACKs to reach tcpdump


def record(out: Path) -> None:
    """Capture ``client.py`` against v1 into ``out`` (gzip-compressed when it ends in ``.gz``)."""
    for tool in ("tcpdump", "ethtool"):
        if shutil.which(tool) is None:
            raise EnvironmentProblem(f"make_capture needs `{tool}` on PATH; install the {tool} package")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "traffic.pcap"
        with NetnsRig("tcpcp-exsvc") as rig:
            service = ["env", "JSONSERVICE_RELEASE=v1", f"JSONSERVICE_PORT={PORT}", sys.executable, str(APP)]
            rig.start_sut(service, PORT, http_path="/health")
            dump = rig.run_in(
                "client",
                ["tcpdump", "--immediate-mode", "-B", "65536", "-U", "-s", "0", "-w", str(raw),
                 "-i", rig.client_if, f"tcp port {PORT}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            _wait_until_listening(dump)
            subprocess.run(
                ["ip", "netns", "exec", rig.client_ns, sys.executable, str(CLIENT), rig.sut_addr, str(PORT)],
                check=True, timeout=120,
            )  # fmt: skip
            time.sleep(SETTLE)
            dump.send_signal(signal.SIGINT)
            dump.wait(timeout=10)
        if out.suffix == ".gz":
            with (
                open(raw, "rb") as src,
                open(out, "wb") as dst,
                gzip.GzipFile(filename=out.stem, mode="wb", fileobj=dst, mtime=0) as packed,
            ):
                shutil.copyfileobj(src, packed)
        else:
            shutil.copyfile(raw, out)


def _wait_until_listening(dump: subprocess.Popen) -> None:
    assert dump.stderr is not None
    line = dump.stderr.readline().decode(errors="replace")  # "listening on ..." once bound
    if "listening on" not in line:
        raise EnvironmentProblem(f"tcpdump did not start: {line.strip() or dump.wait(timeout=10)}")


def check(capture: Path, expected_sessions: int) -> str:
    """A one-line summary of ``capture``; raises SystemExit unless it holds ``expected_sessions``
    sessions, each with its handshake and its close."""
    with open_capture(capture) as reader:
        sessions = list(assemble_sessions(reader, [PORT]))
    incomplete = [str(s.client) for s in sessions if not (s.handshake and s.closed) or s.gaps]
    if len(sessions) != expected_sessions or incomplete:
        raise SystemExit(
            f"{capture}: {len(sessions)} sessions (expected {expected_sessions}); "
            f"without handshake, close or whole streams: {', '.join(incomplete) or 'none'}"
        )
    packets = sum(s.packets for s in sessions)
    return f"{capture}: {os.path.getsize(capture)} bytes, {len(sessions)} sessions, {packets} packets"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "traffic.pcap.gz", help="default: %(default)s")
    args = parser.parse_args()
    record(args.out)
    print(check(args.out, len(SESSIONS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
