"""End-to-end replays for real: captures of real clients, replayed through the raw-socket copier
into real servers in a network namespace, responses caught by the NFQUEUE intercept.

Per session the recording server's log must hold exactly the captured client stream, in order, and
the copier must have received every byte the server sent.
"""

from __future__ import annotations

import sys
from collections import Counter

import pytest

from conftest import require_root, require_tools
from replay_support import (
    RECORDING_SERVER,
    captured_sessions,
    make_capture,
    netns_run,
    recorded_connections,
)

PORT = 8080


@pytest.fixture(scope="module", autouse=True)
def _prerequisites():
    require_root()
    require_tools("ip", "tcpdump", "iptables", "ethtool")


def _server(record, *env: str) -> list[str]:
    return ["env", *env, sys.executable, RECORDING_SERVER, "http", str(PORT), str(record)]


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    """Captures made once per module, lazily, by name."""
    made = {}
    base = tmp_path_factory.mktemp("captures")

    def get(name: str, *runs: list[str], mode: str = "http"):
        if name not in made:
            record = base / f"{name}.capture-record.jsonl"
            server = [sys.executable, RECORDING_SERVER, mode, str(PORT), str(record)]
            made[name] = make_capture(base / f"{name}.pcap", PORT, server, list(runs))
        return made[name]

    return get


def _check_delivery(result: dict, capture, record_file, *, copies: int = 1) -> None:
    """Every replayed session delivered the captured client stream whole, in order, on its own
    connection, and the copier saw every response byte the SUT sent."""
    sessions = captured_sessions(capture, PORT)
    assert result["totals"]["sessions"] == len(sessions) * copies
    assert result["totals"]["completed"] == len(sessions) * copies, result["totals"]
    by_peer = {}
    for peer, received, sent in recorded_connections(record_file):
        assert peer not in by_peer, f"two connections from {peer}"
        by_peer[peer] = (received, sent)
    assert len(by_peer) == len(sessions) * copies
    for r in result["sessions"]:
        received, sent = by_peer[r["client"]]
        assert received == sessions[r["captured_client"]].client_stream.data(), r
        assert r["response_bytes"] == sent, r
    assert Counter(r["captured_client"] for r in result["sessions"]) == {c: copies for c in sessions}


def test_one_request_per_connection(captures, tmp_path):
    capture = captures("oneshot", ["oneshot", "25"])
    record = tmp_path / "record.jsonl"
    result = netns_run(capture, PORT, _server(record))
    _check_delivery(result, capture, record)
    assert result["totals"]["requests_sent"] == 25
    totals = result["totals"]  # the copier's own CPU during the replay: one thread, so within its wall time
    assert 0 < totals["cpu_user"] + totals["cpu_system"] <= totals["elapsed"] + 0.01, totals


def test_keepalive_many_requests_per_connection(captures, tmp_path):
    capture = captures("keepalive", ["keepalive", "4", "30"])
    record = tmp_path / "record.jsonl"
    result = netns_run(capture, PORT, _server(record))
    _check_delivery(result, capture, record)
    assert result["totals"]["requests_sent"] == 4 * 30
    for s in result["sessions"]:
        assert all(e["first_response_at"] is not None for e in s["exchanges"]), s


def test_upload_and_download_of_megabytes(captures, tmp_path):
    capture = captures("bulk", ["upload", str(1_500_000)], ["download", str(2_000_000)])
    record = tmp_path / "record.jsonl"
    result = netns_run(capture, PORT, _server(record))
    _check_delivery(result, capture, record)
    assert max(s["request_bytes"] for s in result["sessions"]) > 1_500_000
    assert max(s["response_bytes"] for s in result["sessions"]) > 2_000_000


def test_server_first_protocol(captures, tmp_path):
    capture = captures("banner", ["banner", "5"], mode="banner")
    record = tmp_path / "record.jsonl"
    sut = [sys.executable, RECORDING_SERVER, "banner", str(PORT), str(record)]
    result = netns_run(capture, PORT, sut)
    _check_delivery(result, capture, record)


def test_amplify_five_gives_five_distinct_connections_per_session(captures, tmp_path):
    capture = captures("oneshot", ["oneshot", "25"])
    record = tmp_path / "record.jsonl"
    result = netns_run(capture, PORT, _server(record), "--amplify", "5")
    _check_delivery(result, capture, record, copies=5)
    assert result["totals"]["requests_sent"] == 5 * 25


@pytest.mark.parametrize("misbehaviour", ["RESET_ON=r=3", "CLOSE_ON=r=3"])
def test_sut_that_resets_or_closes_mid_session(captures, tmp_path, misbehaviour):
    capture = captures("keepalive", ["keepalive", "4", "30"])
    record = tmp_path / "record.jsonl"
    result = netns_run(capture, PORT, _server(record, misbehaviour))
    assert result["totals"]["sessions"] == 4
    for s in result["sessions"]:
        # The SUT broke the connection after request 3 of each session: the copier says so, either
        # by reconnecting for the pending requests or by an outcome naming the reset.
        assert s["reconnects"] >= 1 or s["outcome"] == "sut_reset", s
    connections = recorded_connections(record)
    assert len(connections) > 4  # the pending requests went out on new connections


def test_sessions_captured_mid_stream(captures, tmp_path):
    """No handshake in the file: the copier opens each connection with a fake SYN and the SUT
    receives exactly the captured bytes from the cut on."""
    from replay_support import cut_before

    full = captures("keepalive", ["keepalive", "4", "30"])
    capture = cut_before(full, tmp_path / "midstream.pcap", b"&r=5 ")
    sessions = captured_sessions(capture, PORT)
    assert len(sessions) == 4 and not any(s.handshake for s in sessions.values())
    record = tmp_path / "record.jsonl"
    result = netns_run(capture, PORT, _server(record))
    _check_delivery(result, capture, record)
    for peer_bytes in (r[1] for r in recorded_connections(record)):
        assert peer_bytes.startswith(b"GET /ka?s=") and b"&r=5 " in peer_bytes.split(b"\r\n", 1)[0]
