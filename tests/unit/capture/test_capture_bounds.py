"""Work bounded by the file: a gzip stream inflating past ``MAX_INFLATE_RATIO`` is refused early with
a CaptureError that says what to do, real compression passes, and ``check_capture`` reads a file
through once, refusing one with nothing to replay."""

from __future__ import annotations

import gzip
import random
import re
from pathlib import Path

import pytest
from capture_helpers import l3_samples, pcap_file
from scapy.layers.l2 import Ether

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.capture.check import check_capture
from pytest_tcpcopy.capture.source import MAX_INFLATE_RATIO, RATIO_CHECKED_FROM
from pytest_tcpcopy.errors import CaptureError

ETHERNET = 1


def _frames() -> list[bytes]:
    return [bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / p) for p in l3_samples()]


def _bomb(path: Path, gib: int) -> Path:
    """A pcap header and ``gib`` GiB of zeros (empty records), as concatenated gzip members."""
    zeros = 16 << 20
    member = gzip.compress(bytes(zeros), compresslevel=9)
    with open(path, "wb") as f:
        f.write(gzip.compress(pcap_file(ETHERNET, []) + bytes(zeros), compresslevel=9))
        for _ in range(gib * 64 - 1):
            f.write(member)
    return path


def test_a_gzip_bomb_is_refused_once_past_the_ratio_with_the_way_out(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "bomb.pcap.gz", gib=10)
    with pytest.raises(CaptureError) as caught, open_capture(bomb) as reader:
        for _ in reader:
            pass
    assert caught.value.path == str(bomb)
    assert f"inflates over {MAX_INFLATE_RATIO} times" in caught.value.reason
    assert "decompression bomb" in caught.value.reason and "gunzip" in caught.value.reason
    inflated_mib = int(re.search(r"\((\d+) MiB out of", caught.value.reason).group(1))
    assert inflated_mib <= 2 * (RATIO_CHECKED_FROM >> 20)  # refused within the first MiBs of 10 GiB


def test_check_capture_refuses_a_gzip_bomb(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="decompression bomb"):
        check_capture(_bomb(tmp_path / "bomb.pcap.gz", gib=1))


def test_real_compression_ratios_pass(tmp_path: Path) -> None:
    """Repetitive traffic past the checked size, compressing 20 to 50 times, reads whole."""
    frames = _frames()
    rng = random.Random(7)
    records = []
    size = 0
    while size < 2 * RATIO_CHECKED_FROM:
        frame = frames[rng.randrange(len(frames))]
        records.append((1_700_000_000 + len(records) * 0.001, frame, len(frame)))
        size += 16 + len(frame)
    data = pcap_file(ETHERNET, records)
    packed = gzip.compress(data, compresslevel=9)
    assert 5 < len(data) / len(packed) < MAX_INFLATE_RATIO
    path = tmp_path / "repetitive.pcap.gz"
    path.write_bytes(packed)
    stats = check_capture(path)
    assert stats.records == len(records)


def test_check_capture_refuses_a_capture_without_tcp(tmp_path: Path) -> None:
    udp_only = [f for f, p in zip(_frames(), l3_samples()) if p.haslayer("UDP") or p.haslayer("ICMP")]
    path = tmp_path / "udp.pcap"
    path.write_bytes(pcap_file(ETHERNET, [(1_700_000_000 + n, f, len(f)) for n, f in enumerate(udp_only)]))
    with pytest.raises(CaptureError, match=r"no TCP segment in 3 records: nothing to replay"):
        check_capture(path)


def test_check_capture_counts_a_good_capture(tmp_path: Path) -> None:
    frames = _frames()
    path = tmp_path / "good.pcap"
    path.write_bytes(pcap_file(ETHERNET, [(1_700_000_000 + n, f, len(f)) for n, f in enumerate(frames)]))
    stats = check_capture(path)
    assert (stats.records, stats.tcp_packets) == (len(frames), 8)
