"""The copier's outcomes for real (netns rig, real kernel TCP, real NFQUEUE intercept): a replay
whose intercept dies still reports every session of the capture, and ``netns-run`` fails; a
capture with more sessions than the copier keeps live and waiting does not stall it."""

from __future__ import annotations

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
from replay_support import RECORDING_SERVER, captured_sessions, make_capture, netns_run

from pytest_tcpcopy.capture.packet import SYN, Packet
from pytest_tcpcopy.commands.replay import EXIT_INCOMPLETE
from pytest_tcpcopy.endpoint import parse_addr
from pytest_tcpcopy.live.source import PcapWriter

PORT = 8080


@pytest.fixture(scope="module", autouse=True)
def _prerequisites():
    require_root()
    require_tools("ip", "tcpdump", "iptables", "ethtool")


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def _descendant(pid: int, *words: str, timeout: float = 60.0) -> int:
    """The pid of a descendant of ``pid`` whose command line holds every one of ``words``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        todo = _children(pid)
        while todo:
            child = todo.pop()
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if all(word.encode() in argv for word in words):
                return child
            todo += _children(child)
        time.sleep(0.05)
    raise AssertionError(f"no process {words} under {pid} within {timeout} s")


def test_a_dead_intercept_leaves_every_session_reported_and_netns_run_failing(tmp_path):
    server = [sys.executable, RECORDING_SERVER, "http", str(PORT), str(tmp_path / "record.jsonl")]
    capture = make_capture(tmp_path / "oneshot.pcap", PORT, server, [["oneshot", "30"]])
    sessions = captured_sessions(capture, PORT).values()
    assert len(sessions) == 30
    span = max(s.last_ts for s in sessions) - min(s.first_ts for s in sessions)
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest_tcpcopy", "netns-run", str(capture), "--port", str(PORT), "--json",
         "--capture-responses", "--speed", f"{span / 6:.6f}", "--max-duration", "60", "--", *server],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        intercept = _descendant(run.pid, "intercept", "--listen")
        _descendant(run.pid, "replay", "--target")  # the copier runs: kill the intercept under it
        time.sleep(1.0)
        os.kill(intercept, signal.SIGKILL)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == EXIT_INCOMPLETE, err
    doc = json.loads(out)
    assert doc["stopped"]["failure"] is True and "intercept" in doc["stopped"]["reason"], doc["stopped"]
    # Every captured session is in the result, once ...
    assert sorted(s["captured_client"] for s in doc["sessions"]) == sorted(str(s.client) for s in sessions)
    assert doc["totals"]["sessions"] == 30
    outcomes = Counter(s["outcome"] for s in doc["sessions"])
    assert outcomes["not_replayed"] >= 10, outcomes  # most were still to come when it died
    assert set(outcomes) <= {"complete", "unfinished", "not_replayed"}, outcomes
    # ... and each one the replay did not finish says why.
    for s in doc["sessions"]:
        if s["outcome"] != "complete":
            assert "the replay stopped" in s["reason"] and "intercept" in s["reason"], s
            assert all(not e["complete"] for e in s["exchanges"][-1:]), s


def _syn_only_capture(path: Path, sessions: int) -> Path:
    """A capture of ``sessions`` connections that each show only their client's SYN."""
    client, server = parse_addr("192.0.2.10"), parse_addr("192.0.2.1")
    options = b"\x02\x04\x05\xb4"  # MSS 1460
    packets = [
        Packet(i, 1000.0 + i * 1e-6, client, server, 10000 + i, PORT, 7000 + i, 0, SYN, 64240, options, b"", 0, i, 64)
        for i in range(sessions)
    ]
    with open(path, "wb") as out:
        PcapWriter(out).write(packets)
    return path


def test_more_waiting_sessions_than_the_bound_do_not_stall_the_copier(tmp_path):
    # 10,000 live (--max-sessions) and 20,000 waiting is as far as the copier reads ahead; each of
    # these sessions ends only once the capture is read through. A SUT that accepts and closes.
    capture = _syn_only_capture(tmp_path / "syn-only.pcap", 31_000)
    accept_and_close = (
        "import socket\n"
        f"s = socket.create_server(('0.0.0.0', {PORT}), backlog=4096)\n"
        "while True:\n"
        "    s.accept()[0].close()\n"
    )
    sut = [sys.executable, "-c", accept_and_close]
    doc = netns_run(capture, PORT, sut, "--max-duration", "600", timeout=900)
    assert not any("time limit" in note for note in doc["notes"]), doc["notes"]  # it ended by itself
    assert doc["stopped"] is None
    assert doc["totals"]["sessions"] == 31_000
    assert {s["session"] for s in doc["sessions"]} == set(range(31_000))
    outcomes = Counter(s["outcome"] for s in doc["sessions"])
    assert set(outcomes) <= {"complete", "not_established"}, outcomes
    assert doc["totals"]["delayed_starts"] > 0  # the bound on live sessions was reached


# A keep-alive HTTP SUT that answers as the recording server does, byte for byte, but stalls
# 300 ms between each response's header block and its body.
_STALLING_SUT = """
import socket, sys, threading, time
def serve(conn):
    buf = b""
    while True:
        while b"\\r\\n\\r\\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return conn.close()
            buf += data
        head, _, buf = buf.partition(b"\\r\\n\\r\\n")
        path = head.split(b" ")[1].decode()
        body = f"you asked for {path}\\n".encode()
        conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/octet-stream\\r\\n"
                     + b"Content-Length: %d\\r\\n\\r\\n" % len(body))
        time.sleep(0.3)
        conn.sendall(body)
s = socket.create_server(("0.0.0.0", int(sys.argv[1])))
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""


@pytest.mark.parametrize("payload", [True, False], ids=["framing", "captured-length"])
def test_a_sut_that_stalls_between_head_and_body_is_waited_for(tmp_path, payload):
    server = [sys.executable, RECORDING_SERVER, "http", str(PORT), str(tmp_path / "record.jsonl")]
    capture = make_capture(tmp_path / "keepalive.pcap", PORT, server, [["keepalive", "4", "5"]])
    sut = [sys.executable, "-c", _STALLING_SUT, str(PORT)]
    argv = [sys.executable, "-m", "pytest_tcpcopy", "netns-run", str(capture), "--port", str(PORT), "--json",
            "--max-duration", "60", *(["--capture-responses"] if payload else []), "--", *sut]  # fmt: skip
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["totals"]["sessions"] == 4 and doc["totals"]["completed"] == 4, doc["totals"]
    exchanges = [e for s in doc["sessions"] for e in s["exchanges"]]
    assert len(exchanges) == 20
    rule = "framing" if payload else "captured_length"
    assert all(e["complete"] and e["response_end"] == rule for e in exchanges), exchanges
    assert all(e["response_bytes"] == e["expected_response_bytes"] for e in exchanges), exchanges
    # every request went out only after the previous body: 5 stalls in a row per session
    assert all(s["finished_at"] - s["established_at"] > 5 * 0.3 for s in doc["sessions"])
