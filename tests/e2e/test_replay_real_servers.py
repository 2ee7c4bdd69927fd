"""Replays into real servers from Debian (nginx, redis-server) of captures of real clients
(http.client, redis-benchmark), checked against the servers' own accounting."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_root, require_tools
from replay_support import captured_sessions, make_capture, netns_run

NGINX_CONF = """
user root;
worker_processes 1;
pid {dir}/nginx-{tag}.pid;
error_log {dir}/error-{tag}.log;
events {{ worker_connections 4096; }}
http {{
    access_log {dir}/access-{tag}.log;
    server {{
        listen {port};
        root {dir}/www;
    }}
}}
"""


@pytest.fixture(scope="module", autouse=True)
def _prerequisites():
    require_root()
    require_tools("ip", "tcpdump", "iptables", "ethtool")


def _nginx(tmp: Path, tag: str, port: int = 8080) -> list[str]:
    www = tmp / "www"
    www.mkdir(exist_ok=True)
    for name in ("one", "ka"):
        (www / name).write_text(f"this is {name}\n" * 20)
    conf = tmp / f"nginx-{tag}.conf"
    conf.write_text(NGINX_CONF.format(dir=tmp, tag=tag, port=port))
    return [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-g", "daemon off;"]


def test_nginx_sees_every_captured_request_once(tmp_path):
    require_tools("nginx")
    capture = make_capture(tmp_path / "nginx.pcap", 8080, _nginx(tmp_path, "capture"),
                           [["oneshot", "15"], ["keepalive", "3", "20"]])  # fmt: skip
    sessions = captured_sessions(capture, 8080)
    result = netns_run(capture, 8080, _nginx(tmp_path, "replay"))
    assert result["totals"]["completed"] == len(sessions) == 18, result["totals"]
    replayed = re.findall(r'"GET (\S+) HTTP/1.1" 200 ', (tmp_path / "access-replay.log").read_text())
    captured = re.findall(r'"GET (\S+) HTTP/1.1" 200 ', (tmp_path / "access-capture.log").read_text())
    assert sorted(replayed) == sorted(captured) and len(replayed) == 15 + 3 * 20
    for r in result["sessions"]:
        # Same server, same files: the replayed responses are as long as production's.
        assert r["response_bytes"] == len(sessions[r["captured_client"]].server_stream), r


def _redis(port: int, tmp: Path, tag: str) -> list[str]:
    return [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port), "--bind", "0.0.0.0",
            "--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", str(tmp), "--logfile", str(tmp / f"redis-{tag}.log")]  # fmt: skip


def test_redis_processes_every_captured_command(tmp_path):
    require_tools("redis-server", "redis-benchmark", "redis-cli")
    port = 6379
    capture = tmp_path / "redis.pcap"
    # redis-benchmark is the client here: make_capture runs clients.py, so wrap it in a tiny mode.
    make_capture(capture, port, _redis(port, tmp_path, "capture"), [["redis_benchmark", "300", "3"]])
    sessions = captured_sessions(capture, port)
    commands = sum(s.client_stream.data().count(b"\r\n$3\r\nSET\r\n") for s in sessions.values())
    assert commands == 300
    stats_file = tmp_path / "commandstats.txt"
    # The rig's teardown signals the SUT's whole process group: redis-server runs in a session of
    # its own (setsid), so that it still answers the trap's query, and the trap then stops it.
    sut = ["sh", "-c", "setsid " + " ".join(_redis(port, tmp_path, "replay")) + " & pid=$!; trap 'redis-cli -p "
           f"{port} info commandstats > {stats_file}; kill $pid; wait $pid' TERM; wait $pid"]  # fmt: skip
    result = netns_run(capture, port, sut)
    assert result["totals"]["completed"] == len(sessions), result["totals"]
    assert all(r["response_bytes"] > 0 for r in result["sessions"])
    stats = stats_file.read_text()
    assert re.search(r"cmdstat_set:calls=300,", stats), stats
