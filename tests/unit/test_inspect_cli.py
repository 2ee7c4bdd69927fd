"""``pytest-tcpcopy inspect``: table and JSON output on written and benchmark captures, errors."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

from conftest import require, require_tools, shared_dir
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from pytest_tcpcopy.cli import main

KEEPALIVE = shared_dir() / "bench" / "keepalive.pcap.gz"
CLIENT, SERVER = "198.18.0.1", "198.18.0.2"


class PcapWriter:
    """Classic pcap (Ethernet) written by hand, so snap-length cuts and cut-off tails are exact."""

    def __init__(self, snaplen: int = 65535) -> None:
        self.snaplen = snaplen
        self.records: list[bytes] = []
        self.ts = 1000.0

    def tcp(self, sport, dport, flags, seq, ack=0, payload=b"", src=CLIENT, dst=SERVER):
        frame = bytes(
            Ether()
            / IP(src=src, dst=dst)
            / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)
            / payload
        )
        self.ts += 0.01
        cut = frame[: self.snaplen]
        sec, usec = int(self.ts), round((self.ts % 1) * 1e6)
        self.records.append(struct.pack("<IIII", sec, usec, len(cut), len(frame)) + cut)

    def conversation(self, cport, sport, request, response, *, close="fin", isn=1000):
        """SYN, SYN-ACK, ACK, request, response, then FIN both ways, an RST, or nothing."""
        c, s = isn, 50_000
        self.tcp(cport, sport, "S", c)
        self.tcp(sport, cport, "SA", s, c + 1, src=SERVER, dst=CLIENT)
        self.tcp(cport, sport, "A", c + 1, s + 1)
        self.tcp(cport, sport, "PA", c + 1, s + 1, request)
        self.tcp(
            sport,
            cport,
            "PA",
            s + 1,
            c + 1 + len(request),
            response,
            src=SERVER,
            dst=CLIENT,
        )
        c, s = c + 1 + len(request), s + 1 + len(response)
        if close == "fin":
            self.tcp(cport, sport, "FA", c, s)
            self.tcp(sport, cport, "FA", s, c + 1, src=SERVER, dst=CLIENT)
            self.tcp(cport, sport, "A", c + 1, s + 1)
        elif close == "rst":
            self.tcp(sport, cport, "R", s, src=SERVER, dst=CLIENT)

    def write(self, path: Path, cut_tail: int = 0) -> Path:
        header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, self.snaplen, 1)
        data = header + b"".join(self.records)
        path.write_bytes(data[: len(data) - cut_tail])
        return path


def run_cli(capsys, *args):
    code = main(["inspect", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def three_sessions(tmp_path: Path) -> Path:
    w = PcapWriter()
    w.conversation(
        40000, 80, b"GET /a HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\nA", close="fin"
    )
    w.conversation(
        40001, 80, b"GET /bb HTTP/1.1\r\n\r\n", b"HTTP/1.1 404 x\r\n\r\n", close="rst"
    )
    w.conversation(40002, 8080, b"PING\r\n", b"+PONG\r\n", close="open")
    return w.write(tmp_path / "three.pcap")


def test_json_describes_each_session(tmp_path, capsys):
    path = three_sessions(tmp_path)
    code, out, err = run_cli(capsys, path, "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["capture"] == str(path)
    rows = doc["sessions"]
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert [(r["client"], r["server"]) for r in rows] == [
        (f"{CLIENT}:40000", f"{SERVER}:80"),
        (f"{CLIENT}:40001", f"{SERVER}:80"),
        (f"{CLIENT}:40002", f"{SERVER}:8080"),
    ]
    assert [r["close"] for r in rows] == ["fin", "rst", "open"]
    assert [r["packets"] for r in rows] == [8, 6, 5]
    assert [r["client_bytes"] for r in rows] == [19, 20, 6]
    assert [r["server_bytes"] for r in rows] == [20, 18, 7]
    assert all(r["handshake"] for r in rows)
    assert all(r["retransmitted"] == r["out_of_order"] == r["gaps"] == 0 for r in rows)
    assert all(r["first_ts"] <= r["last_ts"] for r in rows)
    totals = doc["totals"]
    assert totals["sessions"] == 3 and totals["packets"] == 19
    assert totals["client_bytes"] == 45 and totals["server_bytes"] == 45
    assert (totals["close_fin"], totals["close_rst"], totals["close_open"]) == (1, 1, 1)
    assert doc["notes"] == []


def test_table_is_aligned_with_a_totals_line(tmp_path, capsys):
    code, out, _ = run_cli(capsys, three_sessions(tmp_path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("capture: ")
    header, *rows, total, closes = lines[1:]
    assert header.split()[:3] == ["#", "client", "server"]
    assert len(rows) == 3
    assert rows[1].split()[:3] == ["1", f"{CLIENT}:40001", f"{SERVER}:80"]
    assert "rst" in rows[1].split() and "open" in rows[2].split()
    assert total.startswith("total") and "3 sessions" in total and "19" in total.split()
    assert closes == "closed: fin 1, rst 1, open 1; gaps: 0"
    # Aligned: every session line puts the server column at the same place.
    col = header.index("server")
    assert {row[col : col + len(SERVER)] for row in rows} == {SERVER}


def test_port_filter_ignores_other_ports_and_says_so(tmp_path, capsys):
    code, out, _ = run_cli(capsys, three_sessions(tmp_path), "--port", "8080", "--json")
    doc = json.loads(out)
    assert code == 0
    assert [r["server"] for r in doc["sessions"]] == [f"{SERVER}:8080"]
    assert doc["totals"]["ignored_packets"] == 14
    assert doc["notes"] == ["14 TCP packets not on server port(s) 8080 ignored"]


def test_port_sets_the_server_side(tmp_path, capsys):
    w = PcapWriter()
    w.conversation(40000, 80, b"hello", b"world")
    code, out, _ = run_cli(
        capsys, w.write(tmp_path / "p.pcap"), "--port", "40000", "--json"
    )
    [row] = json.loads(out)["sessions"]
    assert code == 0
    assert row["server"] == f"{CLIENT}:40000" and row["client_bytes"] == len(b"world")


def test_snap_length_cut_packets_are_gaps_and_noted(tmp_path, capsys):
    w = PcapWriter(snaplen=60)  # 54 header bytes + 6 payload bytes
    w.conversation(
        40000, 80, b"GET /long-url HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n"
    )
    code, out, _ = run_cli(capsys, w.write(tmp_path / "cut.pcap"), "--json")
    doc = json.loads(out)
    [row] = doc["sessions"]
    assert code == 0
    assert row["client_bytes"] == 6 and row["server_bytes"] == 6 and row["gaps"] == 2
    assert any("snap length" in note for note in doc["notes"])


def test_truncated_tail_is_a_note_not_an_error(tmp_path, capsys):
    w = PcapWriter()
    w.conversation(40000, 80, b"ping", b"pong")
    code, out, err = run_cli(
        capsys, w.write(tmp_path / "tail.pcap", cut_tail=10), "--json"
    )
    doc = json.loads(out)
    assert code == 0 and err == ""
    assert doc["sessions"][0]["packets"] == 7  # the last record (final ACK) is cut off
    assert any(note.startswith("truncated tail") for note in doc["notes"])


def test_missing_file_is_a_one_line_error(tmp_path, capsys):
    code, out, err = run_cli(capsys, tmp_path / "nope.pcap")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "nope.pcap" in err and "cannot open" in err


def test_non_capture_file_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("hello, not a capture\n")
    code, _, err = run_cli(capsys, path)
    assert code == 2 and len(err.splitlines()) == 1 and "not a pcap" in err


def test_keepalive_benchmark_capture(capsys):
    require(KEEPALIVE.is_file(), f"the shared benchmark capture {KEEPALIVE}")
    code, out, _ = run_cli(capsys, KEEPALIVE, "--json")
    doc = json.loads(out)
    assert code == 0
    rows = doc["sessions"]
    assert len(rows) == 200 and [r["index"] for r in rows] == list(range(200))
    for row in rows:
        # Session s runs from client port 40000 + s and sends 50 GETs with unique URLs.
        s = int(row["client"].rsplit(":", 1)[1]) - 40000
        requests = (
            f"GET /index.html?s={s}&r={r} HTTP/1.1\r\n"
            "Host: 10.214.1.2:8080\r\nAccept-Encoding: identity\r\n\r\n"
            for r in range(50)
        )
        assert row["client_bytes"] == sum(len(req) for req in requests), row
        assert row["server"] == "10.214.1.2:8080"
        assert row["handshake"] is True and row["close"] == "fin" and row["gaps"] == 0
    assert len({r["client"] for r in rows}) == 200
    assert (
        len({r["server_bytes"] for r in rows}) == 1
    )  # the same 50 responses every time
    totals = doc["totals"]
    assert totals["sessions"] == 200 and totals["packets"] == 41794
    assert totals["client_bytes"] == sum(r["client_bytes"] for r in rows)


def test_installed_command_in_a_subprocess(tmp_path):
    require_tools("pytest-tcpcopy")
    path = three_sessions(tmp_path)
    done = subprocess.run(
        [shutil.which("pytest-tcpcopy"), "inspect", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [r["close"] for r in json.loads(done.stdout)["sessions"]] == [
        "fin",
        "rst",
        "open",
    ]
    bad = subprocess.run(
        [shutil.which("pytest-tcpcopy"), "inspect", str(tmp_path / "nope.pcap")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.startswith(
        "pytest-tcpcopy inspect: error: "
    )
