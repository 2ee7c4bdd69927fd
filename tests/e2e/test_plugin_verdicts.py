"""The plugin's verdicts end to end on the netns backend, with real servers: a slower release that
answers the same, and a thousand sessions at full speed on a loaded host, are the same; a SUT too
slow for the response timeout and a SUT that dies are errors (not comparable, with the cause),
never failures; one regression across hundreds of exchanges is one finding and a short output;
endpoint items."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require_root, require_tools
from replay_support import CLIENTS, SERVERS

from pytest_tcpcopy.backends.netns import NetnsRig

pytest_plugins = ["pytester"]

PORT = 8080
SLOW_SERVICE = str(SERVERS / "slow_service.py")
MIXED_CLIENT = str(SERVERS / "mixed_client.py")
PAGE = b"<html><body>" + b"anchor-payload-" * 64 + b"</body></html>\n"
NGINX_CONF = """
user root;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server {{
        listen {port} backlog=4096;
        root {dir}/www;
        location / {{ try_files /index.html =404; }}
    }}
}}
"""
CRASHING = '''
import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

served = 0

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        global served
        served += 1
        if served > {after}:
            sys.stderr.write("fatal: simulated crash after {after} requests\\n")
            sys.stderr.flush()
            os._exit(3)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

ThreadingHTTPServer(("0.0.0.0", {port}), Handler).serve_forever()
'''


@pytest.fixture(scope="module", autouse=True)
def _prerequisites():
    require_root()
    require_tools("ip", "iptables", "ethtool", "tcpdump", "nginx")


def capture(out: Path, server: list[str], client) -> Path:
    """A real client (``client(host, port)``: its argv after the interpreter) against a real
    ``server``, captured with tcpdump on the client's side."""
    with NetnsRig("tcpcp-vcap") as rig:
        rig.start_sut(server, PORT)
        dump = rig.run_in("client", ["tcpdump", "--immediate-mode", "-i", rig.client_if, "-U", "-w", str(out),
                                     f"tcp port {PORT}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        os.set_blocking(dump.stderr.fileno(), True)
        assert "listening on" in dump.stderr.readline().decode()
        subprocess.run(["ip", "netns", "exec", rig.client_ns, sys.executable, *client(rig.sut_addr, str(PORT))],
                       check=True, timeout=300)  # fmt: skip
        time.sleep(0.3)
        dump.terminate()
        dump.wait(timeout=10)
    return out


def nginx(folder: Path, page: bytes) -> str:
    """An nginx command serving ``page`` for every path (one worker, as root: the test's folders
    are private), from ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "www").mkdir(exist_ok=True)
    (folder / "www" / "index.html").write_bytes(page)
    (folder / "nginx.conf").write_text(NGINX_CONF.format(dir=folder, port=PORT))
    return f"nginx -c {folder / 'nginx.conf'} -g 'daemon off;'"


@pytest.fixture(scope="module")
def mixed_capture(tmp_path_factory) -> Path:
    """24 sessions of the mixed client against the slow service at full speed."""
    folder = tmp_path_factory.mktemp("mixed")
    return capture(folder / "mixed.pcap", [sys.executable, SLOW_SERVICE, str(PORT)],
                   lambda host, port: [MIXED_CLIENT, host, port, "24", "4"])


@pytest.fixture(scope="module")
def page_capture(tmp_path_factory) -> Path:
    """300 one-request sessions against nginx serving PAGE."""
    folder = tmp_path_factory.mktemp("page")
    server = ["sh", "-c", f"exec {nginx(folder / 'site', PAGE)}"]
    return capture(folder / "page.pcap", server, lambda host, port: [CLIENTS, "oneshot", host, port, "300"])


def run(pytester, capture_file: Path, sut: str, *args: str):
    """pytest on a copy of ``capture_file`` beside its ini file, replayed into ``sut``."""
    pytester.makeini(f"[pytest]\ntcpcopy_backend = netns\ntcpcopy_port = {PORT}\n")
    local = pytester.path / capture_file.name
    if not local.exists():
        shutil.copy(capture_file, local)
    return pytester.runpytest(local.name, "--tcpcopy-command", sut, "-p", "no:cacheprovider", *args)


@pytest.fixture(scope="module")
def load_capture(tmp_path_factory) -> Path:
    """1,000 sessions of the mixed client against the slow service at full speed, 8 at a time."""
    folder = tmp_path_factory.mktemp("load")
    return capture(folder / "load.pcap", [sys.executable, SLOW_SERVICE, str(PORT)],
                   lambda host, port: [MIXED_CLIENT, host, port, "1000", "8"])


def busy_loop(seconds: float) -> subprocess.Popen:
    """A process that keeps one CPU busy for ``seconds`` (bounded: it stops by itself)."""
    return subprocess.Popen([sys.executable, "-c", f"import time\nend = time.monotonic() + {seconds}\n"
                                                   "while time.monotonic() < end: pass"])  # fmt: skip


@pytest.mark.parametrize("baseline", ["capture", "fast release beside it"])
def test_a_slower_release_that_answers_the_same_is_the_same(pytester, mixed_capture, baseline):
    """Stalls between head and body, a slow first byte and slow chunks: every exchange is the
    same, against production's responses and against the fast release replayed beside it."""
    slow = f"env STALL_MS=300 FIRST_BYTE_MS=100 CHUNK_STALL_MS=50 {sys.executable} {SLOW_SERVICE} {PORT}"
    more = () if baseline == "capture" else ("--tcpcopy-baseline", f"command:{sys.executable} {SLOW_SERVICE} {PORT}")
    result = run(pytester, mixed_capture, slow, *more)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 24 and set(outcomes) <= {"passed", "warnings"}, result.stdout.str()[-3000:]


def test_a_thousand_sessions_at_full_speed_on_a_loaded_host_are_the_same(pytester, load_capture):
    """--speed max (the default) on a host whose CPUs are busy: the bound on concurrent sessions
    keeps the replay near production's concurrency, and nothing is judged different."""
    loops = [busy_loop(300) for _ in range(os.cpu_count() or 1)]
    try:
        result = run(pytester, load_capture, f"{sys.executable} {SLOW_SERVICE} {PORT}", "--tcpcopy-items", "endpoint",
                     "--tcpcopy-report", "load.json")  # fmt: skip
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    totals = json.loads((pytester.path / "load.json").read_text())["totals"]
    assert totals["sessions"] == 1000 and (totals["different"], totals["not_comparable"]) == (0, 0), totals
    assert set(result.parseoutcomes()) <= {"passed", "warnings"}, result.stdout.str()[-3000:]


def test_a_sut_that_stalls_past_the_response_timeout_is_not_comparable_never_different(pytester, mixed_capture):
    slow = f"env STALL_MS=2500 {sys.executable} {SLOW_SERVICE} {PORT}"
    result = run(pytester, mixed_capture, slow, "--tcpcopy-response-timeout", "1")
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes, result.stdout.str()[-3000:]
    assert outcomes["errors"] > 0 and outcomes.get("passed", 0) > 0  # HEAD and bodiless answers are not stalled
    out = result.stdout.str()
    assert "not comparable: SUT too slow: " in out and " bytes after 1." in out
    assert "Traceback" not in out and "plugin.py" not in out


def test_a_sut_that_dies_mid_replay_is_not_comparable_with_its_log_tail(pytester, mixed_capture):
    server = pytester.path / "crashing.py"
    server.write_text(CRASHING.format(after=12, port=PORT))
    result = run(pytester, mixed_capture, f"{sys.executable} {server}", "--tcpcopy-baseline", "none")
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes, result.stdout.str()[-3000:]
    assert outcomes["errors"] > 0
    out = result.stdout.str()
    assert "not comparable: SUT died: the SUT 'candidate' stopped during the replay" in out
    assert "fatal: simulated crash after 12 requests" in out  # its log tail
    assert "Traceback" not in out and "AttributeError" not in out


def test_one_regression_across_many_exchanges_is_one_finding_and_a_short_output(pytester, page_capture, tmp_path):
    changed = PAGE.replace(b"anchor-payload-</body>", b"anchor-payloaD-</body>")
    result = run(pytester, page_capture, nginx(tmp_path / "v2", changed), "--tcpcopy-report", "r.json")
    result.assert_outcomes(failed=300)
    report = json.loads((pytester.path / "r.json").read_text())
    [finding] = report["findings"]
    assert (finding["count"], finding["path"], finding["change"]) == (300, "body[*]", "changed")  # the page's lines
    lines = result.stdout.lines
    assert len(lines) < 120, "\n".join(lines)
    result.stdout.fnmatch_lines(["*= tcpcopy =*", "page.pcap: 300 sessions, 300 exchanges: 300 different",
                                 "*300  GET /one?s={n}  body*  changed*"])  # fmt: skip
    references = [line for line in lines if ": finding GET /one?s={n} body changed (300 exchanges" in line]
    assert len(references) <= 50  # the short test summary lists the first 50 of them
    assert "tcpcopy: 297 failing item(s) refer to a finding shown in full" in result.stdout.str()
    full = run(pytester, page_capture, nginx(tmp_path / "v2", changed), "-v")
    assert len(full.stdout.lines) > 300 * 3  # -v: every item shows its whole diff


def test_endpoint_items_one_per_endpoint_fail_with_their_findings(pytester, page_capture, tmp_path):
    changed = PAGE.replace(b"<html>", b"<HTML>")
    result = run(pytester, page_capture, nginx(tmp_path / "v2", changed), "--tcpcopy-items", "endpoint")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAILED page.pcap::GET /one?s={n} - GET /one?s={n}: 300 differen*"])
    same = run(pytester, page_capture, nginx(tmp_path / "v1", PAGE), "--tcpcopy-items", "endpoint")
    same.assert_outcomes(passed=1)
