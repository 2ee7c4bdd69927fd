"""PcapStreamSource: a pcap stream read from a pipe as it arrives, whatever the read boundaries."""

from __future__ import annotations

import io
import os

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import PcapWriter as ScapyPcapWriter

from pytest_tcpcopy.capture import CaptureStats, decode_ip_tcp, open_capture
from pytest_tcpcopy.errors import CaptureError
from pytest_tcpcopy.live.source import PcapWriter
from pytest_tcpcopy.live.stream import PcapStreamSource

CRAFTED = [
    IP(src="10.0.0.1", dst="10.0.0.2", id=7) / TCP(sport=40000, dport=8080, flags="S", seq=1, options=[("MSS", 1460)]),
    IP(src="10.0.0.2", dst="10.0.0.1", id=9) / TCP(sport=8080, dport=40000, flags="SA", seq=2**32 - 5, ack=2),
    IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=8080, flags="PA", seq=2, ack=2**32 - 4) / b"GET / HTTP/1.1\r\n\r\n",
    IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=8080, dport=40000, flags="PA", seq=2**32 - 4, ack=21) / (b"y" * 3000),
]  # fmt: skip


def packets():
    stats = CaptureStats()
    return [decode_ip_tcp(i, 1_700_000_000.5 + i * 0.001, bytes(p), stats) for i, p in enumerate(CRAFTED)]


def pcap_stream(items) -> bytes:
    out = io.BytesIO()
    PcapWriter(out).write(items)
    return out.getvalue()


@pytest.fixture
def pipe():
    read_end, write_end = os.pipe()
    yield read_end, write_end
    for fd in (read_end, write_end):
        try:
            os.close(fd)
        except OSError:
            pass


def drain(source: PcapStreamSource) -> list:
    out = []
    while True:
        got = source.read_packets()
        out += got
        if not got:
            return out


@pytest.mark.parametrize("step", [1, 7, 16, 23, 24, 25, 100, 1 << 20])
def test_records_split_across_reads_come_out_whole_and_in_order(pipe, step):
    read_end, write_end = pipe
    data = pcap_stream(packets())
    source = PcapStreamSource(read_end)
    seen = []
    for at in range(0, len(data), step):
        os.write(write_end, data[at : at + step])
        seen += drain(source)
        assert not source.finished
    os.close(write_end)
    seen += source.read_packets()
    assert source.finished
    assert [p._replace(index=0) for p in seen] == [p._replace(index=0) for p in packets()]
    assert [p.index for p in seen] == list(range(len(CRAFTED)))  # record numbers, as `inspect` counts them
    assert source.stats.tcp_packets == len(CRAFTED) and source.stats.truncated_tail is None


def test_the_stream_reads_back_like_the_file_the_same_writer_makes(pipe, tmp_path):
    read_end, write_end = pipe
    data = pcap_stream(packets())
    (tmp_path / "same.pcap").write_bytes(data)
    source = PcapStreamSource(read_end)
    os.write(write_end, data)
    os.close(write_end)
    with open_capture(tmp_path / "same.pcap") as reader:
        assert drain(source) == list(reader)


def test_nothing_arrived_yet_is_not_the_end(pipe):
    read_end, _ = pipe
    source = PcapStreamSource(read_end)
    assert source.read_packets() == []
    assert not source.finished
    assert source.filenos() == [read_end]


def test_end_of_stream_finishes_and_a_cut_last_record_is_noted(pipe):
    read_end, write_end = pipe
    data = pcap_stream(packets())
    source = PcapStreamSource(read_end)
    os.write(write_end, data[:-10])
    os.close(write_end)
    got = drain(source)
    assert len(got) == len(CRAFTED) - 1
    assert source.finished
    assert "record 3" in source.stats.truncated_tail


def test_a_duration_finishes_an_open_stream(pipe):
    read_end, _ = pipe
    source = PcapStreamSource(read_end, duration=0.0)
    assert source.finished


def test_an_ethernet_stream_is_decoded_through_its_link_type(pipe):
    read_end, write_end = pipe
    out = io.BytesIO()
    writer = ScapyPcapWriter(out, linktype=1, sync=True)
    for p in CRAFTED:
        writer.write(Ether() / p)
    data = out.getvalue()
    source = PcapStreamSource(read_end)
    os.write(write_end, data)
    os.close(write_end)
    got = drain(source)
    assert [(p.sport, p.dport, p.payload) for p in got] == [(p.sport, p.dport, p.payload) for p in packets()]


def test_bad_magic_is_a_capture_error_naming_the_stream(pipe):
    read_end, write_end = pipe
    os.write(write_end, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    source = PcapStreamSource(read_end, name="copier stdin")
    with pytest.raises(CaptureError, match="copier stdin.*not a classic pcap stream"):
        source.read_packets()


def test_a_stream_that_ends_inside_its_header_is_a_capture_error(pipe):
    read_end, write_end = pipe
    os.write(write_end, pcap_stream([])[:10])
    os.close(write_end)
    with pytest.raises(CaptureError, match="ends inside the 24-byte pcap header, after 10 bytes"):
        PcapStreamSource(read_end).read_packets()


def test_the_writer_sends_the_same_bytes_to_every_output():
    first, second = io.BytesIO(), io.BytesIO()
    writer = PcapWriter(first, second)
    writer.write(packets()[:2])
    writer.write([])
    writer.write(packets()[2:])
    assert first.getvalue() == second.getvalue() == pcap_stream(packets())
    assert writer.packets == len(CRAFTED)
