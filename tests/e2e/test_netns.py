"""The netns rig for real: namespaces, veth, a real HTTP server, real teardown and reaping.

Everything stays inside namespaces named ``tcpcp-nt-*`` that these tests create; each test ends by
checking, with plain ``ip`` and the file system, that nothing of its runs is left.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import require_root, require_tools

from pytest_tcpcopy.errors import EnvironmentProblem, SutError, UsageError
from pytest_tcpcopy.backends.netns import NetnsRig, reap_leftovers
from pytest_tcpcopy.backends.netns.steering import receive_thread_problem

PREFIX = "tcpcp-nt"
PORT = 8080
OFFLOADS = (
    "tcp-segmentation-offload",
    "generic-segmentation-offload",
    "generic-receive-offload",
    "tx-checksumming",
    "rx-checksumming",
)


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _left_of(client_ns: str, sut_ns: str, veths: tuple[str, ...] = ()) -> list[str]:
    """Every trace of one run still present: namespaces, resolver dirs, state dir, root veths."""
    run = client_ns.removesuffix("-cli")
    left = [ns for ns in (client_ns, sut_ns) if ns in _namespaces()]
    left += [d for d in (f"/etc/netns/{client_ns}", f"/etc/netns/{sut_ns}") if os.path.exists(d)]
    left += [d for d in (f"/run/pytest-tcpcopy/{run}",) if os.path.exists(d)]
    left += [v for v in veths if os.path.exists(f"/sys/class/net/{v}")]
    return left


def _gone(pid: int) -> bool:
    """True when the process has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _in_ns(namespace: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *argv], capture_output=True, text=True, timeout=30
    )


def _http_server(rig: NetnsRig, directory: str) -> list[str]:
    return [
        sys.executable,
        "-u",  # its start-up line reaches the log at once, whatever PYTHONUNBUFFERED says
        "-m",
        "http.server",
        "--bind",
        rig.sut_addr,
        "--directory",
        directory,
        str(PORT),
    ]


@pytest.fixture(autouse=True)
def _no_namespace_left():
    require_root()
    require_tools("ip", "ethtool", "sysctl")
    yield
    assert [ns for ns in _namespaces() if ns.startswith(PREFIX + "-")] == []


def test_rig_serves_a_real_http_server_to_the_client_namespace(tmp_path):
    (tmp_path / "hello.txt").write_text("hello from the sut\n")
    sigterm_before = signal.getsignal(signal.SIGTERM)
    with NetnsRig(PREFIX) as rig:
        sut = rig.start_sut(_http_server(rig, str(tmp_path)), PORT, http_path="/hello.txt")
        assert sut.alive and sut.returncode is None
        fetch = textwrap.dedent("""
            import http.client, sys
            conn = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=5)
            conn.request("GET", "/hello.txt")
            response = conn.getresponse()
            print(response.status, response.read().decode(), end="")
        """)
        got = _in_ns(rig.client_ns, sys.executable, "-c", fetch, rig.sut_addr, str(PORT))
        assert (got.returncode, got.stdout) == (0, "200 hello from the sut\n"), got.stderr
        assert '"GET /hello.txt HTTP/1.1" 200' in sut.logs()

        for ns in (rig.client_ns, rig.sut_ns):
            assert _in_ns(ns, "cat", "/etc/resolv.conf").stdout == "nameserver 127.0.0.1\n"
            assert _in_ns(ns, "cat", "/proc/sys/net/ipv4/conf/all/rp_filter").stdout == "0\n"
        for sysctl in ("net/core/somaxconn", "net/ipv4/tcp_max_syn_backlog"):
            assert _in_ns(rig.sut_ns, "cat", f"/proc/sys/{sysctl}").stdout == "65535\n"
        features = _in_ns(rig.client_ns, "ethtool", "-k", rig.client_if).stdout
        for feature in OFFLOADS:
            assert f"{feature}: off" in features
        route = _in_ns(rig.sut_ns, "ip", "route", "show", "198.18.0.0/15").stdout
        assert route.split() == ["198.18.0.0/15", "via", rig.client_addr, "dev", rig.sut_if]
        names = (rig.client_ns, rig.sut_ns)
    assert sut.returncode is not None
    assert "Serving HTTP" in sut.logs()
    assert signal.getsignal(signal.SIGTERM) is sigterm_before
    assert _left_of(*names) == []


SYN_FROM_REPLAY_RANGE = textwrap.dedent("""
    import socket, sys, time
    from scapy.layers.inet import IP, TCP
    src, dst, port, ifname = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    sniffer.bind((ifname, 0))
    sniffer.settimeout(0.2)
    sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    syn = IP(src=src, dst=dst) / TCP(sport=40000, dport=port, flags="S", seq=1000)
    sender.sendto(bytes(syn), (dst, 0))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            reply = IP(sniffer.recv(2048))
        except socket.timeout:
            continue
        if reply.dst == src and TCP in reply and (reply[TCP].flags, reply[TCP].ack) == ("SA", 1001):
            print("SYN-ACK")
            break
""")


def test_sut_answers_a_syn_from_the_replay_range(tmp_path):
    with NetnsRig(PREFIX, link_net="10.214.250.4/30") as rig:
        assert (rig.client_addr, rig.sut_addr) == ("10.214.250.5", "10.214.250.6")
        rig.start_sut(_http_server(rig, str(tmp_path)), PORT)
        got = _in_ns(
            rig.client_ns,
            sys.executable,
            "-c",
            SYN_FROM_REPLAY_RANGE,
            "198.18.7.9",
            rig.sut_addr,
            str(PORT),
            rig.client_if,
        )
        assert (got.returncode, got.stdout) == (0, "SYN-ACK\n"), got.stderr


def test_start_sut_fails_fast_with_logs_when_the_command_exits():
    with NetnsRig(PREFIX) as rig:
        with pytest.raises(SutError, match="exited with code 3") as failure:
            rig.start_sut(["sh", "-c", "echo boom; exit 3"], PORT, ready_timeout=30)
        assert failure.value.logs == "boom\n"


def test_start_sut_gives_up_with_logs_when_nothing_listens():
    with NetnsRig(PREFIX) as rig:
        with pytest.raises(
            SutError, match=r"not ready on .* within 0\.5s: connect to .*refused"
        ) as failure:
            rig.start_sut(
                ["sh", "-c", "echo still starting; exec sleep 60"], PORT, ready_timeout=0.5
            )
        assert failure.value.logs == "still starting\n"
        assert (
            subprocess.run(["ip", "netns", "pids", rig.sut_ns], capture_output=True).stdout == b""
        )


def test_http_readiness_waits_for_a_good_status(tmp_path):
    with NetnsRig(PREFIX) as rig:
        with pytest.raises(SutError, match="HTTP 404"):
            rig.start_sut(
                _http_server(rig, str(tmp_path)), PORT, ready_timeout=0.5, http_path="/missing"
            )


def test_teardown_stops_every_process_and_removes_everything_when_the_body_raises():
    with pytest.raises(RuntimeError, match="test body failed"):
        with NetnsRig(PREFIX) as rig:
            names = (rig.client_ns, rig.sut_ns)
            veths = (rig.client_if, rig.sut_if)
            tracked = rig.run_in("client", ["sleep", "600"])
            ignores_term = rig.run_in("sut", ["sh", "-c", "trap '' TERM; sleep 600 & wait"])
            escaped = rig.run_in(
                "sut",
                ["sh", "-c", "setsid sleep 600 >/dev/null 2>&1 & echo $!"],
                stdout=subprocess.PIPE,
                text=True,
            )
            escaped_pid = int(escaped.stdout.readline())
            escaped.stdout.close()
            escaped.wait(timeout=10)
            while os.getsid(escaped_pid) != escaped_pid:  # setsid(1) may not have run yet
                time.sleep(0.01)
            rig.grace = 0.3
            assert not any(map(_gone, (tracked.pid, ignores_term.pid, escaped_pid)))
            raise RuntimeError("test body failed")
    assert tracked.returncode == -signal.SIGTERM
    assert ignores_term.returncode == -signal.SIGKILL
    assert _gone(escaped_pid)
    assert _left_of(*names, veths) == []


def test_misuse_is_a_usage_error():
    rig = NetnsRig(PREFIX)
    with pytest.raises(UsageError, match="inside `with NetnsRig"):
        rig.run_in("client", ["true"])
    with pytest.raises(UsageError, match="'client' or 'sut'"):
        rig.namespace("server")
    for prefix in ("Tcpcopy", "tcpcp-nt-", "", "x" * 33):
        with pytest.raises(UsageError, match="prefix"):
            NetnsRig(prefix)
    with pytest.raises(UsageError, match="overlaps"):
        NetnsRig(PREFIX, link_net="198.18.3.0/30")
    with pytest.raises(UsageError, match="fewer than two host"):
        NetnsRig(PREFIX, link_net="10.214.9.9/32")
    with pytest.raises(UsageError, match="IPv4 network"):
        NetnsRig(PREFIX, replay_net="198.18.0.1/15")


def _path_with(tmp_path, tools: dict[str, str]) -> str:
    """A PATH directory holding ``ip`` and ``sysctl`` plus the given scripts (name -> body)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ip", "sysctl"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return str(bin_dir)


def test_missing_ethtool_warns_and_leaves_offloads_on(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _path_with(tmp_path, {}))
    with pytest.warns(RuntimeWarning, match="ethtool not found.*install the ethtool package"):
        with NetnsRig(PREFIX) as rig:
            monkeypatch.undo()
            features = _in_ns(rig.client_ns, "ethtool", "-k", rig.client_if).stdout
            assert "generic-segmentation-offload: on" in features


def test_a_failing_setup_step_raises_and_removes_what_was_made(tmp_path, monkeypatch):
    failing_ethtool = "echo 'Cannot change features' >&2; exit 1"
    monkeypatch.setenv("PATH", _path_with(tmp_path, {"ethtool": failing_ethtool}))
    rig = NetnsRig(PREFIX)
    with pytest.raises(
        EnvironmentProblem, match="ethtool -K .* exit code 1: Cannot change features"
    ):
        rig.__enter__()
    assert _left_of(rig.client_ns, rig.sut_ns, (rig.client_if, rig.sut_if)) == []


def test_missing_root_or_iproute2_is_an_environment_problem(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(EnvironmentProblem, match=r"needs root .*use the docker backend"):
        NetnsRig(PREFIX).__enter__()
    monkeypatch.undo()
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentProblem, match="install the iproute2 package"):
        NetnsRig(PREFIX).__enter__()
    with pytest.raises(EnvironmentProblem, match="install the iproute2 package"):
        reap_leftovers(PREFIX)


OWNER = textwrap.dedent("""
    import signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from pytest_tcpcopy.backends.netns import NetnsRig
    with NetnsRig(sys.argv[1]) as rig:
        server = [sys.executable, "-m", "http.server", "--bind", rig.sut_addr, sys.argv[2]]
        sut = rig.start_sut(server, int(sys.argv[2]))
        print(rig.client_ns, rig.sut_ns, rig.client_if, rig.sut_if, sut.popen.pid, rig.supervisor.pid, flush=True)
        time.sleep(60)
""")


@pytest.fixture
def owner():
    """Another python process that builds a rig with a real SUT, then sleeps; names, SUT pid and
    the rig's supervisor's pid."""
    process = subprocess.Popen(
        [sys.executable, "-c", OWNER, PREFIX, str(PORT)], stdout=subprocess.PIPE, text=True
    )
    with process.stdout:
        *names, sut_pid, supervisor_pid = process.stdout.readline().split()
    try:
        assert len(names) == 4, "the owner process failed to build its rig"
        yield process, names, int(sut_pid), int(supervisor_pid)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reap_leftovers(PREFIX)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_owner_tears_its_rig_down(owner, signum):
    process, names, sut_pid, _ = owner
    process.send_signal(signum)
    assert process.wait(timeout=30) != 0
    assert _gone(sut_pid)
    assert _left_of(names[0], names[1], tuple(names[2:])) == []


def test_reap_leftovers_removes_the_rig_of_a_killed_owner_and_supervisor(owner):
    """The supervisor removes a killed owner's rig within seconds (tests/e2e/test_faults.py); were
    it killed as well, the next rig's reap_leftovers() does."""
    process, names, sut_pid, supervisor_pid = owner
    with NetnsRig(PREFIX) as live:
        os.kill(supervisor_pid, signal.SIGKILL)
        process.kill()
        process.wait(timeout=30)
        assert _left_of(names[0], names[1]) != [], "kill -9 of both should leave the rig behind"
        assert not _gone(sut_pid)

        reaped = reap_leftovers(PREFIX)

        assert {names[0], names[1]} <= set(reaped)
        assert _gone(sut_pid)
        assert _left_of(names[0], names[1], tuple(names[2:])) == []
        assert {live.client_ns, live.sut_ns} <= set(_left_of(live.client_ns, live.sut_ns)), (
            "live rig reaped"
        )


def _mask_of(text: str) -> int:
    """An rps_cpus bitmap as the kernel prints it (hex, comma-grouped) as an int."""
    return int(text.strip().replace(",", ""), 16)


def test_the_sut_side_receive_work_is_steered_off_the_copier_cpu():
    allowed = os.sched_getaffinity(0)
    with NetnsRig(PREFIX, steer_receive=True) as rig:
        sut_queue = f"/sys/class/net/{rig.sut_if}/queues/rx-0/rps_cpus"
        client_queue = f"/sys/class/net/{rig.client_if}/queues/rx-0/rps_cpus"
        if len(allowed) < 2:
            assert rig.cpu_split is None and rig.copier_cpus is None
            return
        assert rig.copier_cpus == {max(allowed)}
        assert rig.cpu_split.receive == allowed - {max(allowed)}
        steered = _in_ns(rig.sut_ns, "cat", sut_queue).stdout
        assert _mask_of(steered) == sum(1 << cpu for cpu in rig.cpu_split.receive)
        assert _mask_of(_in_ns(rig.client_ns, "cat", client_queue).stdout) == 0  # the copier's side: untouched

        report = "read line; grep Cpus_allowed_list /proc/self/status"
        pinned = rig.run_in("client", ["sh", "-c", report], cpus=rig.copier_cpus,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert os.sched_getaffinity(pinned.pid) == rig.copier_cpus
        out, _ = pinned.communicate("go\n", timeout=10)  # `ip netns exec` has exec'd sh by now
        assert out.split() == ["Cpus_allowed_list:", str(max(allowed))]


def test_steering_is_off_unless_asked_for():
    with NetnsRig(PREFIX) as rig:
        assert rig.cpu_split is None and rig.copier_cpus is None
        queue = f"/sys/class/net/{rig.sut_if}/queues/rx-0/rps_cpus"
        assert _mask_of(_in_ns(rig.sut_ns, "cat", queue).stdout) == 0


def _napi_threads_by_pid() -> dict[int, str]:
    """The kernel's NAPI threads (``napi/<device>-<id>``, cut to 15 characters) by pid."""
    threads = {}
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        if name.startswith("napi/"):
            threads[int(pid)] = name
    return threads


def _napi_threads() -> set[str]:
    return set(_napi_threads_by_pid().values())


def test_the_sut_side_receives_in_a_kernel_thread_of_its_own():
    """Threaded NAPI with GRO on the SUT's end (the default); the copier's end keeps every offload
    off, and the thread goes with the veth."""
    before = _napi_threads()
    with NetnsRig(PREFIX) as rig:
        if receive_thread_problem(platform.release()) is not None:  # its veth would drop bursts
            assert not rig.receive_threaded
            return
        assert rig.receive_threaded
        queue = _in_ns(rig.client_ns, "tc", "qdisc", "show", "dev", rig.client_if).stdout
        assert queue.startswith("qdisc pfifo ") and "limit 65536p" in queue, queue  # for the veth to push back into
        threaded = f"/sys/class/net/{rig.sut_if}/threaded"
        assert _in_ns(rig.sut_ns, "cat", threaded).stdout.strip() != "0"
        sut_features = _in_ns(rig.sut_ns, "ethtool", "-k", rig.sut_if).stdout
        client_features = _in_ns(rig.client_ns, "ethtool", "-k", rig.client_if).stdout
        assert "generic-receive-offload: on" in sut_features
        assert "generic-receive-offload: off" in client_features
        assert "tcp-segmentation-offload: off" in client_features  # else veth skips NAPI for its packets
        mine = {name for name in _napi_threads() - before if name.startswith(f"napi/{rig.sut_if}"[:15])}
        assert mine, _napi_threads()
    deadline = time.monotonic() + 30  # the kernel dismantles a deleted namespace's devices in the background
    while mine & _napi_threads() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not mine & _napi_threads(), "the receive thread outlived its rig"


def test_the_receive_thread_can_be_left_out():
    with NetnsRig(PREFIX, receive_thread=False) as rig:
        assert not rig.receive_threaded
        assert _in_ns(rig.sut_ns, "cat", f"/sys/class/net/{rig.sut_if}/threaded").stdout.strip() == "0"
        assert "generic-receive-offload: off" in _in_ns(rig.sut_ns, "ethtool", "-k", rig.sut_if).stdout


def _link_counters(namespace: str, link: str) -> dict[str, int]:
    """The link's packet counters (``rx_packets``, ``tx_dropped`` ...) from sysfs."""
    script = f"cd /sys/class/net/{link}/statistics && grep -H . rx_packets tx_packets rx_dropped tx_dropped"
    lines = _in_ns(namespace, "sh", "-c", script).stdout.split()
    return {name: int(value) for name, value in (line.split(":") for line in lines)}


def test_a_burst_of_sends_is_queued_not_dropped():
    """The receive thread takes 256 packets at a time from its ring; a burst beyond that must wait
    on the sender's side (the veth pushes back into the copier side's queue), not be lost. The
    worst case, made on purpose: the sender runs real-time on the receive thread's CPU, so the
    thread only gets to drain when the sender blocks. 20,000 datagrams, none lost."""
    burst = 20_000
    sender = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"for _ in range({burst}):\n"
        "    s.sendto(b'x' * 64, (sys.argv[1], 9))\n"
    )
    with NetnsRig(PREFIX) as rig:
        if not rig.receive_threaded:
            assert receive_thread_problem(platform.release()) is not None  # an old kernel: no thread
            return
        cpu = min(os.sched_getaffinity(0))
        (napi,) = [pid for pid, name in _napi_threads_by_pid().items() if name.startswith(f"napi/{rig.sut_if}"[:15])]
        os.sched_setaffinity(napi, {cpu})
        before = _link_counters(rig.sut_ns, rig.sut_if), _link_counters(rig.client_ns, rig.client_if)
        run = _in_ns(rig.client_ns, "taskset", "-c", str(cpu), "chrt", "-f", "10", sys.executable, "-c", sender,
                     rig.sut_addr)  # fmt: skip
        assert run.returncode == 0, run.stderr
        deadline = time.monotonic() + 10
        while True:
            sut, client = _link_counters(rig.sut_ns, rig.sut_if), _link_counters(rig.client_ns, rig.client_if)
            if sut["rx_packets"] - before[0]["rx_packets"] >= burst or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert client["tx_dropped"] == before[1]["tx_dropped"], (before, client)
        assert sut["rx_packets"] - before[0]["rx_packets"] >= burst, (before, sut)
