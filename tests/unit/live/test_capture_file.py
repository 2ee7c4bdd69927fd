"""Capture files written as packets arrive (pcap, pcapng, gzip) and recordings saved under a
user's name: read back by our readers and by scapy's, record for record."""

from __future__ import annotations

import gzip
import shutil
import struct

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.utils import RawPcapNgReader, RawPcapReader

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.errors import CaptureError, UsageError
from pytest_tcpcopy.live.capture_file import (
    CaptureFileWriter,
    CaptureFormat,
    capture_file_kind,
    save_recording,
)
from pytest_tcpcopy.live.recorder import ip_packet

T0 = 1_700_000_000_123_456_789  # ns
SYN = bytes(IP(src="10.0.0.1", dst="10.0.0.2", id=7) / TCP(sport=40000, dport=8080, flags="S", seq=1))
REQUEST = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=8080, flags="PA", seq=2, ack=9)
                / b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # fmt: skip
BIG = bytes(IPv6(src="fd00::1", dst="fd00::2") / TCP(sport=8080, dport=40000, flags="PA") / (b"z" * 3000))
RECORDS = [(T0, SYN, len(SYN)), (T0 + 1_000_001, REQUEST, len(REQUEST)), (T0 + 2_000_000_002, BIG[:200], len(BIG))]
NAMES = ["out.pcap", "out.pcapng", "out.pcap.gz", "out.pcapng.gz", "OUT.PCAPNG.GZ"]


def write(path, records=RECORDS, **kwargs) -> CaptureFileWriter:
    with CaptureFileWriter(path, **kwargs) as writer:
        for ts_ns, data, orig_len in records:
            writer.write(ts_ns, data, orig_len)
    return writer


def records_of(path):
    with open_capture(path) as reader:
        return [(round(r.ts * 1e6), r.linktype, r.data, r.orig_len) for r in reader.records()]


def expected(records=RECORDS):
    return [(round(ts / 1e3), 101, data, orig) for ts, data, orig in records]


@pytest.mark.parametrize("name", NAMES)
def test_written_files_read_back_record_for_record(tmp_path, name):
    writer = write(tmp_path / name)
    assert (writer.packets, writer.bytes) == (3, len(SYN) + len(REQUEST) + 200)
    assert records_of(tmp_path / name) == expected()
    with open_capture(tmp_path / name) as reader:
        packets = list(reader)
    assert [(p.sport, p.dport, p.payload_len, len(p.payload)) for p in packets] == [
        (40000, 8080, 0, 0), (40000, 8080, 27, 27), (8080, 40000, 3000, 200 - 60),
    ]  # fmt: skip
    assert packets[0].ts * 1e9 == pytest.approx(T0, abs=300)


@pytest.mark.parametrize("name", ["out.pcap", "out.pcapng"])
def test_scapy_reads_what_we_write_with_nanosecond_timestamps(tmp_path, name):
    path = tmp_path / name
    write(path, iface="eth0")
    reader = RawPcapReader(str(path)) if name.endswith(".pcap") else RawPcapNgReader(str(path))
    with reader:
        got = list(reader)
    assert [data for data, _meta in got] == [SYN, REQUEST, BIG[:200]]
    assert [meta.wirelen for _data, meta in got] == [len(SYN), len(REQUEST), len(BIG)]
    if name.endswith(".pcapng"):
        assert [(meta.tshigh << 32 | meta.tslow) for _data, meta in got] == [ts for ts, _, _ in RECORDS]
    else:
        assert [(meta.sec, meta.usec) for _data, meta in got][1] == divmod(T0 + 1_000_001, 1_000_000_000)


def test_the_name_chooses_the_format():
    assert capture_file_kind("a/b.pcap").format is CaptureFormat.PCAP
    assert capture_file_kind("b.pcapng.gz").gzip and capture_file_kind("b.pcapng.gz").format is CaptureFormat.PCAPNG
    assert str(capture_file_kind("x.pcap.gz")) == "pcap, gzip-compressed"
    for bad in ("traffic", "traffic.gz", "traffic.txt", "traffic.pcap.zip", "traffic.cap"):
        with pytest.raises(UsageError, match=r"\*\.pcap or \*\.pcapng"):
            capture_file_kind(bad)


def test_an_unwritable_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot write"):
        CaptureFileWriter(tmp_path / "missing" / "x.pcap")


def test_an_empty_recording_is_still_a_capture(tmp_path):
    for name in ("e.pcap", "e.pcapng.gz"):
        write(tmp_path / name, records=[])
        assert records_of(tmp_path / name) == []


def raw_pcap_recording(path, records=RECORDS) -> None:
    """A recording as a live run makes it: nanosecond classic pcap of raw IP (live.source.PcapWriter's)."""
    header = struct.pack("=IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262_144, 101)
    body = b"".join(struct.pack("=IIII", ts // 10**9, ts % 10**9, len(data), orig) + data for ts, data, orig in records)
    path.write_bytes(header + body)


@pytest.mark.parametrize("name", NAMES)
def test_saving_a_recording_writes_the_format_the_name_asks_for(tmp_path, name):
    recording = tmp_path / "live.pcap"
    raw_pcap_recording(recording)
    saved = save_recording(recording, tmp_path / "kept" / name)
    assert saved.packets == 3 and saved.kind == capture_file_kind(name)
    assert records_of(tmp_path / "kept" / name) == expected()
    with open(tmp_path / "kept" / name, "rb") as f:
        assert (f.read(2) == b"\x1f\x8b") == name.lower().endswith(".gz")


def test_saving_as_plain_pcap_copies_the_bytes(tmp_path):
    recording = tmp_path / "live.pcap"
    raw_pcap_recording(recording)
    save_recording(recording, tmp_path / "same.pcap")
    assert (tmp_path / "same.pcap").read_bytes() == recording.read_bytes()
    with gzip.open(tmp_path / "z.pcap.gz", "wb") as out, open(recording, "rb") as src:
        shutil.copyfileobj(src, out)
    save_recording(tmp_path / "z.pcap.gz", tmp_path / "unzipped.pcap")
    assert (tmp_path / "unzipped.pcap").read_bytes() == recording.read_bytes()


def test_saving_converts_pcapng_to_pcap(tmp_path):
    write(tmp_path / "a.pcapng.gz")
    save_recording(tmp_path / "a.pcapng.gz", tmp_path / "b.pcap")
    assert records_of(tmp_path / "b.pcap") == expected()


def test_saving_what_is_not_a_capture_fails_with_its_name(tmp_path):
    (tmp_path / "notes.pcap").write_text("not a capture\n")
    with pytest.raises(CaptureError, match="notes.pcap"):
        save_recording(tmp_path / "notes.pcap", tmp_path / "x.pcapng")
    with pytest.raises(UsageError, match="x.txt"):
        save_recording(tmp_path / "notes.pcap", tmp_path / "x.txt")
    assert not (tmp_path / "x.pcapng").exists()


def test_ip_packets_lose_link_padding_and_keep_their_wire_length():
    padded = SYN + b"\0" * 6  # an Ethernet frame's padding up to 60 bytes
    assert ip_packet(padded) == (SYN, len(SYN))
    assert ip_packet(REQUEST[:50]) == (REQUEST[:50], len(REQUEST))
    assert ip_packet(BIG[:200]) == (BIG[:200], len(BIG))
    assert ip_packet(BIG + b"\0\0") == (BIG, len(BIG))
    assert ip_packet(b"\x00\x01") == (b"\x00\x01", 2)
