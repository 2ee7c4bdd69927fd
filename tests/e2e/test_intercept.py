"""The intercept for real: two network namespaces joined by a veth, a real HTTP server in the SUT's,
the intercept binding a real NFQUEUE there, and an InterceptClient plus raw-socket client in the
other. Asserts that the SUT's segments reach the copier that registered them and that nothing
addressed to a replayed client ever crosses the veth, also after the intercept is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from conftest import require_root, require_tools
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP
from scapy.utils import rdpcap

from pytest_tcpcopy.channel import Capability, InterceptClient
from pytest_tcpcopy.endpoint import Endpoint
from pytest_tcpcopy.backends.netns.plumbing import STATE_ROOT

T = TypeVar("T")
PORT = 8080
CLONE_NEWNET = 0x40000000
REPLAY_NET = "198.18.0.0/15"


@dataclass
class Net:
    sut: str
    cli: str
    sut_if: str
    cli_if: str
    sut_ip: str
    cli_ip: str
    procs: list[subprocess.Popen] = field(default_factory=list)

    @staticmethod
    def ip6(ip4: str) -> str:
        """The IPv6 address paired with one of the veth's IPv4 addresses."""
        return "fd77:{}::{}".format(*ip4.split(".")[2:])

    def run(self, ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                              check=check, timeout=30)

    def spawn(self, ns: str, *argv: str) -> subprocess.Popen:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def inside(self, ns: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` on a fresh thread that has entered ``ns``; sockets it makes live there."""
        out: dict[str, object] = {}

        def enter_and_call() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {ns}")
            finally:
                os.close(fd)
            try:
                out["value"] = fn()
            except Exception as exc:  # noqa: BLE001 - re-raised in the calling thread
                out["error"] = exc

        thread = threading.Thread(target=enter_and_call)
        thread.start()
        thread.join()
        if "error" in out:
            raise out["error"]  # type: ignore[misc]
        return out["value"]  # type: ignore[return-value]

    def leftovers(self) -> list[str]:
        """Chains, routes and queue bindings of ours still in the SUT namespace."""
        found = []
        for tool in ("iptables", "iptables-legacy", "ip6tables", "ip6tables-legacy"):
            found += [line for line in self.run(self.sut, tool, "-w", "-S").stdout.splitlines() if "TCPCOPY" in line]
        found += self.run(self.sut, "ip", "route", "show", "proto", "124").stdout.splitlines()
        found += self.run(self.sut, "ip", "-6", "route", "show", "proto", "124").stdout.splitlines()
        found += self.run(self.sut, "cat", "/proc/net/netfilter/nfnetlink_queue").stdout.splitlines()
        return found


def _unwind(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture
def net() -> Iterator[Net]:
    require_root()
    require_tools("ip", "iptables", "ethtool", "tcpdump")
    tag = secrets.token_hex(3)
    octet = int(tag[:2], 16)
    n = Net(f"tcpcp-ic-{tag}-sut", f"tcpcp-ic-{tag}-cli", f"ic{tag}s", f"ic{tag}c",
            f"10.213.{octet}.1", f"10.213.{octet}.2")
    # The owner record NetnsRig keeps too: a concurrent test process (an xdist worker) then knows
    # these namespaces are another live run's, not leftovers.
    owner = Path(STATE_ROOT, f"tcpcp-ic-{tag}")
    owner.mkdir(parents=True)
    (owner / "owner").write_text(f"{os.getpid()}\n")
    # A SIGTERM (a CI timeout, say) would end the run without this finally; make it unwind instead.
    previous = signal.signal(signal.SIGTERM, _unwind)
    try:
        for ns in (n.sut, n.cli):
            os.makedirs(f"/etc/netns/{ns}", exist_ok=True)
            with open(f"/etc/netns/{ns}/resolv.conf", "w") as f:
                f.write("nameserver 127.0.0.1\n")
            subprocess.run(["ip", "netns", "add", ns], check=True)
            n.run(ns, "ip", "link", "set", "lo", "up")
        subprocess.run(["ip", "link", "add", n.sut_if, "netns", n.sut, "type", "veth",
                        "peer", "name", n.cli_if, "netns", n.cli], check=True)
        for ns, ifname, ip in ((n.sut, n.sut_if, n.sut_ip), (n.cli, n.cli_if, n.cli_ip)):
            n.run(ns, "ip", "addr", "add", f"{ip}/30", "dev", ifname)
            n.run(ns, "ip", "-6", "addr", "add", f"{n.ip6(ip)}/64", "dev", ifname, "nodad")
            n.run(ns, "ip", "link", "set", ifname, "up")
            n.run(ns, "ethtool", "-K", ifname, "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off")
        yield n
    finally:
        for proc in n.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)
        for ns in (n.sut, n.cli):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
        shutil.rmtree(owner, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert n.sut not in listed and n.cli not in listed
    assert all(p.poll() is not None for p in n.procs)


def wait_line(proc: subprocess.Popen, event: str, limit: float = 20.0) -> dict:
    """The first JSON line on ``proc``'s stdout whose event is ``event``."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not select.select([proc.stdout], [], [], 0.2)[0]:
            if proc.poll() is not None:
                break
            continue
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("{") and json.loads(line)["event"] == event:
            return json.loads(line)
    proc.kill()
    pytest.fail(f"no {event!r} line from {proc.args}; stderr:\n{proc.communicate()[1]}")


def start_server(net: Net) -> None:
    server = net.spawn(net.sut, sys.executable, "-u", "-m", "http.server", str(PORT), "--bind", net.sut_ip)
    deadline = time.monotonic() + 20
    while "LISTEN" not in net.run(net.sut, "ss", "-Hltn", f"sport = :{PORT}").stdout or not net.run(
        net.sut, "ss", "-Hltn", f"sport = :{PORT}").stdout.strip():
        assert server.poll() is None and time.monotonic() < deadline, "http.server did not start"
        time.sleep(0.05)


def start_intercept(net: Net, *extra: str) -> tuple[subprocess.Popen, dict]:
    proc = net.spawn(net.sut, sys.executable, "-m", "pytest_tcpcopy.intercept", "--port", str(PORT),
                     "--listen", f"{net.sut_ip}:36524", *extra)
    return proc, wait_line(proc, "ready")


@contextlib.contextmanager
def sniff_client_side(net: Net, tmp_path, replay_net: str = REPLAY_NET) -> Iterator[list]:
    """tcpdump on the client's end of the veth for the replay range; yields its packets on exit."""
    pcap = tmp_path / "client-side.pcap"
    dump = net.spawn(net.cli, "tcpdump", "-i", net.cli_if, "-n", "-U", "--immediate-mode", "-w", str(pcap),
                     "net", replay_net)
    deadline = time.monotonic() + 10
    while "listening on" not in (dump.stderr.readline() if select.select([dump.stderr], [], [], 0.2)[0] else ""):
        assert dump.poll() is None and time.monotonic() < deadline, "tcpdump did not start"
    packets: list = []
    try:
        yield packets
    finally:
        time.sleep(0.2)  # let tcpdump write what it saw
        dump.send_signal(signal.SIGINT)
        dump.communicate(timeout=10)
        packets += rdpcap(str(pcap))


def addressed_to_replay_range(packets: list) -> list:
    def hit(p) -> bool:
        if IP in p:
            return p[IP].dst.startswith(("198.18.", "198.19."))
        return ARP in p and p[ARP].pdst.startswith(("198.18.", "198.19."))
    return [p for p in packets if hit(p)]


class RawClient:
    """A replayed client at a 198.18.x.y address: hand-made segments from a raw socket."""

    def __init__(self, net: Net, ip: str, port: int) -> None:
        self.net, self.me = net, Endpoint.parse(f"{ip}:{port}")
        self.ip, self.port = ip, port
        self.sock = net.inside(net.cli, lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW))
        self.seq = 1000

    def send(self, flags: str, ack: int = 0, payload: bytes = b"") -> None:
        segment = IP(src=self.ip, dst=self.net.sut_ip) / TCP(sport=self.port, dport=PORT, flags=flags,
                                                                seq=self.seq, ack=ack, window=65535) / payload
        self.sock.sendto(bytes(segment), (self.net.sut_ip, 0))
        self.seq += len(payload) + (1 if "S" in flags or "F" in flags else 0)


def records_until(client: InterceptClient, done: Callable[[list[TCP]], bool], limit: float = 10.0) -> list:
    got: list = []
    deadline = time.monotonic() + limit
    while not done(got):
        assert time.monotonic() < deadline, f"records so far: {[r.summary() for r in got]}"
        if select.select(client.filenos(), [], [], 0.2)[0]:
            got += [IP(r) for r in client.read_records()]
    return got


def connect_copier(net: Net, *clients: RawClient, **kwargs) -> InterceptClient:
    def make() -> InterceptClient:
        copier = InterceptClient([f"{net.sut_ip}:36524"], name="e2e-copier", **kwargs)
        for c in clients:
            copier.register(c.me, Endpoint.parse(f"{net.sut_ip}:{PORT}"))
        copier.flush()
        return copier
    return net.inside(net.cli, make)


def test_sut_segments_reach_their_copier_and_nothing_leaks(net: Net, tmp_path) -> None:
    start_server(net)
    intercept, ready = start_intercept(net, "--capture-responses")
    assert ready["chain"].startswith("TCPCOPY-") and ready["client_ranges"] == [REPLAY_NET]
    client = RawClient(net, "198.18.0.7", 40001)
    with (
        sniff_client_side(net, tmp_path) as wire,
        connect_copier(net, client, capabilities=Capability.RESPONSE_PAYLOAD) as copier,
    ):
        client.send("S")
        (syn_ack,) = records_until(copier, lambda got: len(got) >= 1)
        assert (syn_ack.src, syn_ack.dst, syn_ack[TCP].sport, syn_ack[TCP].dport) == (net.sut_ip, "198.18.0.7", PORT, 40001)
        assert syn_ack[TCP].flags == "SA" and syn_ack[TCP].ack == 1001
        isn = syn_ack[TCP].seq
        # The SUT accepts our ACK and request only if isn is its real ISN, and then answers.
        client.send("A", ack=isn + 1)
        client.send("PA", ack=isn + 1, payload=b"GET / HTTP/1.0\r\n\r\n")
        answer = records_until(copier, lambda got: b"HTTP/1.0 200" in b"".join(bytes(r[TCP].payload) for r in got))
        assert all(r[TCP].seq >= isn + 1 for r in answer)
        assert answer[0][TCP].seq == isn + 1
        # Every segment reported has had its (batched) NF_DROP verdict: none is left pending.
        (queue_line,) = net.run(net.sut, "cat", "/proc/net/netfilter/nfnetlink_queue").stdout.splitlines()
        assert queue_line.split()[2] == "0"
    intercept.send_signal(signal.SIGTERM)
    stopped = wait_line(intercept, "stopped")
    assert intercept.wait(10) == 0
    assert stopped["forwarded"] >= 2 and stopped["user_dropped"] == 0 and stopped["refused"] == 0
    sent_by_client = [p for p in wire if IP in p and p[IP].src == "198.18.0.7"]
    assert len(sent_by_client) == 3  # tcpdump really watched the veth
    assert addressed_to_replay_range(wire) == []
    assert net.leftovers() == []


def payload_len(record: IP) -> int:
    """Payload length of the original segment, from its headers (the record may carry none)."""
    return record[IP].len - record[IP].ihl * 4 - record[TCP].dataofs * 4


def queued_count(net: Net, chain: str) -> int:
    listing = net.run(net.sut, "iptables", "-w", "-L", chain, "-v", "-x", "-n").stdout
    return sum(int(line.split()[0]) for line in listing.splitlines() if "NFQUEUE" in line)


def test_killed_intercept_fails_closed_and_is_reaped(net: Net, tmp_path) -> None:
    start_server(net)
    intercept, ready = start_intercept(net)
    first, second = RawClient(net, "198.18.0.8", 40002), RawClient(net, "198.19.255.1", 40003)
    with sniff_client_side(net, tmp_path) as wire, connect_copier(net, first) as copier:
        first.send("S")
        (syn_ack,) = records_until(copier, lambda got: len(got) >= 1)
        isn = syn_ack[TCP].seq
        first.send("A", ack=isn + 1)
        first.send("PA", ack=isn + 1, payload=b"GET / HTTP/1.0\r\n\r\n")
        records_until(copier, lambda got: any(payload_len(r) > 0 for r in got))
        intercept.kill()
        intercept.wait(10)
        queued_before = queued_count(net, ready["chain"])
        second.send("S")  # its SYN-ACK, and the SUT's retransmissions to the first, find no reader
        deadline = time.monotonic() + 10
        while queued_count(net, ready["chain"]) < queued_before + 2:
            assert time.monotonic() < deadline, "the SUT sent nothing more to the replay range"
            time.sleep(0.05)
    assert addressed_to_replay_range(wire) == []
    assert [p[IP].src for p in wire if IP in p] == ["198.18.0.8"] * 3 + ["198.19.255.1"]
    leftover_chain = [line for line in net.leftovers() if ready["chain"] in line]
    assert leftover_chain  # the killed run's rules are still there, and still fail closed
    reaped = json.loads(net.run(net.sut, sys.executable, "-m", "pytest_tcpcopy.intercept", "--reap").stdout)
    assert any(ready["chain"] in item for item in reaped["removed"])
    assert any(REPLAY_NET in item for item in reaped["removed"])
    assert net.leftovers() == []


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_ready_means_rules_are_in_and_a_signal_takes_them_out(net: Net, stop: signal.Signals) -> None:
    intercept, ready = start_intercept(net, "--port", "8443", "--queue-num", "7")
    chain_rules = net.run(net.sut, "iptables", "-w", "-S", ready["chain"]).stdout
    assert f"--sport {PORT} -j NFQUEUE --queue-num 7" in chain_rules
    assert "--sport 8443 -j NFQUEUE --queue-num 7" in chain_rules
    assert chain_rules.index("NFQUEUE") < chain_rules.index(f"-d {REPLAY_NET} -j DROP")
    assert "--queue-bypass" not in chain_rules
    assert net.run(net.sut, "iptables", "-w", "-S", "OUTPUT").stdout.splitlines()[1] == f"-A OUTPUT -j {ready['chain']}"
    assert f"{REPLAY_NET} dev {net.sut_if}" in net.run(net.sut, "ip", "route").stdout
    intercept.send_signal(stop)
    assert wait_line(intercept, "stopped")["queued"] == 0
    assert intercept.wait(10) == 0
    assert net.leftovers() == []


def test_ipv6_sessions_are_intercepted_too(net: Net, tmp_path) -> None:
    require_tools("ip6tables")
    sut6, client6, replay6 = net.ip6(net.sut_ip), "2001:db8:ffff::7", "2001:db8:ffff::/48"
    net.spawn(net.sut, sys.executable, "-u", "-m", "http.server", str(PORT), "--bind", sut6)
    deadline = time.monotonic() + 20
    while not net.run(net.sut, "ss", "-Hltn", f"sport = :{PORT}").stdout.strip():
        assert time.monotonic() < deadline, "http.server did not start"
        time.sleep(0.05)
    intercept, _ = start_intercept(net, "--client-range", replay6)
    raw = net.inside(net.cli, lambda: socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW))
    dump = sniff_client_side(net, tmp_path, replay6)
    with dump as wire, raw:

        def make() -> InterceptClient:
            copier = InterceptClient([f"{net.sut_ip}:36524"], name="e2e-copier6")
            copier.register(Endpoint.parse(f"[{client6}]:40009"), Endpoint.parse(f"[{sut6}]:{PORT}"))
            copier.flush()
            return copier

        with net.inside(net.cli, make) as copier:
            # Sent again every second until answered, as TCP would: the first one can be lost
            # while neighbour discovery on the fresh veth is still settling.
            syn = bytes(IPv6(src=client6, dst=sut6) / TCP(sport=40009, dport=PORT, flags="S", seq=5000))
            deadline, records = time.monotonic() + 15, []
            while not records:
                assert time.monotonic() < deadline, "no record for the IPv6 SYN-ACK within 15 s"
                raw.sendto(syn, (sut6, 0))
                if select.select(copier.filenos(), [], [], 1.0)[0]:
                    records = copier.read_records()
    syn_ack = IPv6(records[0])  # a resent SYN may draw the SYN-ACK again: the first is enough
    assert (syn_ack.src, syn_ack.dst, syn_ack[TCP].dport, syn_ack[TCP].flags, syn_ack[TCP].ack) == (
        sut6, client6, 40009, "SA", 5001)
    intercept.send_signal(signal.SIGTERM)
    assert wait_line(intercept, "stopped")["forwarded"] >= 1
    assert intercept.wait(10) == 0
    assert {p[IPv6].src for p in wire if IPv6 in p} == {client6}
    assert [p for p in wire if IPv6 in p and p[IPv6].dst.startswith("2001:db8:ffff:")] == []
    assert net.leftovers() == []
