"""``pytest-tcpcopy record`` without a network: its session count on a real capture, the summary
of a written file, and its usage errors (one line each, exit status 2, nothing written)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.cli import main
from pytest_tcpcopy.commands import record
from pytest_tcpcopy.live.capture_file import CaptureFileWriter
from pytest_tcpcopy.live.recorder import RecordingProgress
from pytest_tcpcopy.live.source import ip_bytes

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "jsonservice" / "traffic.pcap.gz"


def example_packets():
    with open_capture(EXAMPLE) as reader:
        return list(reader)


def test_the_tally_counts_the_sessions_of_a_real_capture():
    tally = record.SessionTally((8080,), None)
    tally.observe(example_packets())
    assert (tally.sessions, tally.ended) == (30, 30)
    assert not tally.done()


def test_the_tally_is_done_once_count_sessions_ended_and_their_last_packets_had_time(monkeypatch):
    monkeypatch.setattr(record, "COUNT_SETTLE", 0.0)
    tally = record.SessionTally((8080,), 5)
    fed = 0
    for packet in example_packets():
        tally.observe([packet])
        fed += 1
        if tally.done():
            break
    assert tally.ended == 5 and tally.sessions in (5, 6)
    monkeypatch.setattr(record, "COUNT_SETTLE", 60.0)
    slow = record.SessionTally((8080,), 5)
    slow.observe(example_packets()[:fed])
    assert slow.ended == 5 and not slow.done()


def test_the_summary_reads_the_file_back(tmp_path):
    path = tmp_path / "rec.pcapng.gz"
    with CaptureFileWriter(path) as writer:
        for packet in example_packets():
            writer.write(round(packet.ts * 1e9), ip_bytes(packet))
    progress = RecordingProgress(seconds=3.2, packets=writer.packets, bytes=writer.bytes, kernel_dropped=0)
    summary = record.summarize(str(path), (8080,), progress, "count reached")
    assert (summary.sessions, summary.whole_sessions, summary.exchanges) == (30, 30, 54)
    assert summary.exchanges_by_codec == {"http": 54} and summary.notes == []
    text = summary.render()
    assert "30 session(s), 30 of them whole" in text and "54 exchange(s) (http 54)" in text
    assert "(pcapng, gzip-compressed)" in text and "stopped: count reached" in text


def test_the_summary_says_when_nothing_was_captured(tmp_path):
    path = tmp_path / "empty.pcap"
    CaptureFileWriter(path).close()
    summary = record.summarize(str(path), (8080,), RecordingProgress(1.0, 0, 0, 3), "duration of 1 s reached")
    assert summary.sessions == summary.exchanges == 0
    assert any("nothing was captured on port(s) 8080" in note for note in summary.notes)
    assert any("the kernel dropped 3 packet(s)" in note for note in summary.notes)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "8080", "-o", "x.pcap"], "--iface is required without --container"),
        (["--iface", "lo", "-o", "x.pcap"], "--port is required"),
        (["--iface", "lo", "--port", "0", "-o", "x.pcap"], "--port 0: expected 1..65535"),
        (["--iface", "lo", "--port", "80", "--count", "0", "-o", "x.pcap"], "--count 0: expected at least 1"),
        (["--iface", "lo", "--port", "80", "--duration", "0", "-o", "x.pcap"], "--duration 0: expected a positive"),
        (["--iface", "lo", "--port", "80", "-o", "x.txt"], r"x.txt: name the capture file \*.pcap or \*.pcapng"),
    ],
)
def test_usage_errors_are_one_line_and_write_nothing(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["record", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == []
