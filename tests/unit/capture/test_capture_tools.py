"""Files written by the real tools: tcpdump on loopback (Ethernet, SLL, SLL2, snap length), and
editcap's conversions (pcapng, nanosecond pcap, raw IP, other link types), read back and compared
with scapy's dissection of the same files."""

from __future__ import annotations

import gzip
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from capture_helpers import as_fields, expected_from_scapy, l3_samples
from conftest import require_root, require_tools
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.utils import PcapReader, wrpcap

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.errors import CaptureError

LOOPBACK_TCP = "tcp and (host 127.0.0.1 or host ::1)"
BIG_REQUEST = b"POST / HTTP/1.1\r\nContent-Length: 3000\r\n\r\n" + b"b" * 3000


def _exchange(family: int, host: str) -> None:
    """One TCP connection over loopback: a request in, a reply out, an orderly close."""
    with socket.socket(family, socket.SOCK_STREAM) as server:
        server.bind((host, 0))
        server.listen(1)
        port = server.getsockname()[1]

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                received = b""
                while len(received) < len(BIG_REQUEST):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    received += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        thread = threading.Thread(target=serve)
        thread.start()
        with socket.create_connection((host, port), timeout=5) as client:
            client.sendall(BIG_REQUEST)
            while client.recv(65536):
                pass
        thread.join(timeout=5)


def _wait_until_listening(proc: subprocess.Popen[str], args: list[str]) -> None:
    """Read tcpdump's stderr up to "listening on" (the capture is armed); "-i any" first names its link type."""
    said = []
    while len(said) < 3:
        said.append(proc.stderr.readline())
        if "listening on" in said[-1]:
            return
        if not said[-1]:
            break
    raise AssertionError(f"tcpdump {' '.join(args)} did not start: {''.join(said)}")


@pytest.fixture(scope="module")
def tcpdump_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Loopback traffic captured at once by tcpdump four ways: lo, any (SLL2), any as SLL, lo with -s 96."""
    require_root()
    require_tools("tcpdump")
    folder = tmp_path_factory.mktemp("tcpdump")
    ways = {
        "ethernet": ["-i", "lo"],
        "sll2": ["-i", "any"],
        "sll": ["-i", "any", "-y", "LINUX_SLL"],
        "snaplen": ["-i", "lo", "-s", "96"],
    }
    files = {name: folder / f"{name}.pcap" for name in ways}
    procs = []
    try:
        for name, args in ways.items():
            command = ["tcpdump", "-n", "-U", "--immediate-mode", *args, "-w", str(files[name]), LOOPBACK_TCP]
            proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
            procs.append(proc)
            _wait_until_listening(proc, args)
        _exchange(socket.AF_INET, "127.0.0.1")
        _exchange(socket.AF_INET6, "::1")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
            proc.stderr.close()
    yield files


@pytest.mark.parametrize("way,linktype", [("ethernet", 1), ("sll2", 276), ("sll", 113)])
def test_tcpdump_loopback_capture(tcpdump_files: dict[str, Path], way: str, linktype: int) -> None:
    path = tcpdump_files[way]
    expected = expected_from_scapy(path)
    with open_capture(path) as reader:
        got = [as_fields(p) for p in reader]
    assert got == expected
    assert reader.stats.link_types == {linktype}
    versions = {len(p[2]) for p in got}
    assert versions == {4, 16}  # both exchanges seen, IPv4 and IPv6
    assert b"".join(p[11] for p in got if p[4] != 80).count(b"b") >= 3000 * 2


def test_tcpdump_snap_length_cuts_payloads(tcpdump_files: dict[str, Path]) -> None:
    path = tcpdump_files["snaplen"]
    with open_capture(path) as reader:
        packets = list(reader)
    with PcapReader(str(path)) as scapy_reader:
        frames = list(scapy_reader)
    assert len(packets) == len(frames)
    for packet, frame in zip(packets, frames):
        ip = frame[IP] if IP in frame else frame[IPv6]
        wire_ip_len = ip.len if ip.version == 4 else 40 + ip.plen
        ip_header = ip.ihl * 4 if ip.version == 4 else 40
        tcp_header = frame[TCP].dataofs * 4
        assert packet.payload_len == wire_ip_len - ip_header - tcp_header
        assert packet.payload == bytes(frame)[14 + ip_header + tcp_header : 96]
    cut = [p for p in packets if p.truncated]
    assert cut and reader.stats.truncated_packets == len(cut)
    assert all(len(p.payload) < p.payload_len for p in cut)


def _editcap(*args: str | Path) -> None:
    subprocess.run(["editcap", *map(str, args)], check=True, capture_output=True)


@pytest.fixture
def ethernet_capture(tmp_path: Path) -> Path:
    frames = []
    for packet in l3_samples():
        frames.append(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / packet)
        frames[-1].time = packet.time
    path = tmp_path / "ethernet.pcap"
    wrpcap(str(path), frames)
    return path


@pytest.mark.parametrize("fmt", ["pcapng", "nsecpcap", "pcap"])
@pytest.mark.parametrize("compress", [False, True])
def test_editcap_formats(tmp_path: Path, ethernet_capture: Path, fmt: str, compress: bool) -> None:
    require_tools("editcap")
    converted = tmp_path / f"converted.{fmt}"
    _editcap("-F", fmt, ethernet_capture, converted)
    if compress:
        converted.write_bytes(gzip.compress(converted.read_bytes()))
    with open_capture(converted) as reader:
        assert [as_fields(p) for p in reader] == expected_from_scapy(ethernet_capture)


def test_editcap_raw_ip(tmp_path: Path, ethernet_capture: Path) -> None:
    require_tools("editcap")
    raw = tmp_path / "raw.pcap"
    _editcap("-C", "14", "-T", "rawip", ethernet_capture, raw)  # strip the Ethernet header, relabel
    with open_capture(raw) as reader:
        got = [as_fields(p) for p in reader]
    assert got == expected_from_scapy(ethernet_capture)
    assert reader.stats.link_types == {101}


def test_editcap_snap_length(tmp_path: Path, ethernet_capture: Path) -> None:
    """-s 60 keeps 46 bytes of IP: TCP headers without options survive, longer ones are cut."""
    require_tools("editcap")
    cut = tmp_path / "cut.pcap"
    _editcap("-s", "60", ethernet_capture, cut)
    with open_capture(cut) as reader:
        packets = list(reader)
    whole = {p[0]: p for p in expected_from_scapy(ethernet_capture)}
    for packet in packets:
        assert as_fields(packet)[:11] == whole[packet.index][:11]  # headers decoded as in the full file
        assert whole[packet.index][11].startswith(packet.payload)
        assert packet.payload_len == len(whole[packet.index][11])
    stats = reader.stats
    assert stats.tcp_packets + stats.unparsable == len(whole)
    assert stats.unparsable > 0 and stats.truncated_packets > 0


def test_editcap_unsupported_link_type(tmp_path: Path, ethernet_capture: Path) -> None:
    require_tools("editcap")
    wifi = tmp_path / "wifi.pcap"
    _editcap("-T", "ieee-802-11", ethernet_capture, wifi)
    with pytest.raises(CaptureError, match="unsupported link type 105") as caught:
        list(open_capture(wifi))
    assert (caught.value.path, caught.value.record) == (str(wifi), 0)
    assert len(list(open_capture(wifi).records())) == len(expected_from_scapy(ethernet_capture)) + 3
