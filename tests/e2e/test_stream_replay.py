"""Live traffic streamed by this process to the copier (``replay --stdin-stream``) while it is
recorded: the copier numbers the sessions as the recording's readers (``inspect``, the plugin's
items) do, and replays every one of them into a real SUT through the real intercept."""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from pathlib import Path

import pytest
from conftest import require_root, require_tools

from pytest_tcpcopy.backends.base import SutSpec
from pytest_tcpcopy.backends.netns.backend import NetnsBackend
from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.flows import assemble_sessions
from pytest_tcpcopy.live import record_to_pcap
from pytest_tcpcopy.backends.netns.steering import auto_steer
from pytest_tcpcopy.replay.contract import CopierSettings
from pytest_tcpcopy.replay.results import Outcome

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jsonservice"
PORT = 8080


@pytest.fixture(autouse=True)
def _prerequisites():
    require_root()
    require_tools("ip", "iptables", "ethtool")


class ArrivingSource:
    """A PacketSource handing out the packets of a capture a few at a time, as if they arrived;
    the sessions are interleaved (each batch mixes the ends of some with the starts of others)."""

    def __init__(self, packets, batch: int) -> None:
        self._batches = [packets[i : i + batch] for i in range(0, len(packets), batch)]
        self._r, self._w = socket.socketpair()
        self._w.send(b"x")  # always readable: the next batch is there

    @property
    def finished(self) -> bool:
        return not self._batches

    def filenos(self) -> list[int]:
        return [self._r.fileno()]

    def read_packets(self):
        return self._batches.pop(0) if self._batches else []

    def close(self) -> None:
        self._r.close()
        self._w.close()


def interleaved(packets):
    """The capture's packets with its sessions overlapping: session k's packets shifted in."""
    by_client: dict = {}
    for p in packets:
        client = (p.src, p.sport) if p.dport == PORT else (p.dst, p.dport)
        by_client.setdefault(client, []).append(p)
    out, queues = [], list(by_client.values())
    while any(queues):
        for queue in queues:
            out.extend(queue[:3])
            del queue[:3]
    return out


def test_the_copier_numbers_streamed_sessions_as_the_recording_does(tmp_path):
    with open_capture(EXAMPLE / "traffic.pcap.gz") as reader:
        packets = interleaved(list(reader))
    recording = tmp_path / "live.pcap"
    source = ArrivingSource(packets, batch=7)
    try:
        with NetnsBackend(prefix="tcpcp-str") as backend:
            backend.start_sut(SutSpec("candidate", PORT, command=(sys.executable, str(EXAMPLE / "app.py"))))
            result = backend.replay_stream(
                lambda stream: record_to_pcap(source, recording, 60, also=(stream,)),
                CopierSettings(server_ports=(PORT,)),
            ).result
    finally:
        source.close()
    with open_capture(recording) as reader:
        recorded = {s.index: str(s.client) for s in assemble_sessions(reader, (PORT,))}
    assert len(recorded) > 1
    assert {s.session: s.captured_client for s in result.sessions} == recorded
    assert {s.outcome for s in result.sessions} == {Outcome.COMPLETE}, result.sessions
    assert result.totals()["requests_sent"] > len(recorded)


def _copier_pids(target: str) -> list[int]:
    """Live copier processes replaying into ``target``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"pytest_tcpcopy" in argv and b"replay" in argv and target.encode() in argv:
            pids.append(int(proc.name))
    return pids


@pytest.mark.parametrize("steer", [None, True, False])
def test_the_backend_pins_its_copier_when_it_steers(steer):
    """Told to steer (or, by default, with three CPUs or more), the copier runs on the rig's
    copier CPU; else on every CPU this process may use."""
    seen = []

    def feed(stream) -> None:
        deadline = time.monotonic() + 5.0
        while not seen and time.monotonic() < deadline:  # its cmdline reads empty while it execs
            seen.extend(os.sched_getaffinity(pid) for pid in _copier_pids(sut.target))
            time.sleep(0.01)
        stream.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # no packets

    app = [sys.executable, str(EXAMPLE / "app.py")]
    allowed = os.sched_getaffinity(0)
    with NetnsBackend(prefix="tcpcp-str", steer_receive=steer) as backend:
        sut = backend.start_sut(SutSpec("candidate", PORT, command=tuple(app)))
        result = backend.replay_stream(feed, CopierSettings(server_ports=(PORT,))).result
        pinned = sut.rig.copier_cpus
    assert result.totals()["sessions"] == 0
    steers = auto_steer(allowed) if steer is None else steer
    if not steers or len(allowed) == 1:  # one CPU: nothing to steer to
        assert pinned is None and seen == [allowed]
    else:
        assert pinned is not None and len(pinned) == 1 and seen == [pinned]
