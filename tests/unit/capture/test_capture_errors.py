"""Bad input: every failure is a CaptureError naming file, record and reason, except a file cut
inside its last record, which yields everything before the cut and says so in stats and a warning."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from capture_helpers import l3_samples, pcap_file, pcapng_enhanced, pcapng_interface, pcapng_section
from scapy.layers.l2 import Ether

from pytest_tcpcopy.capture import CaptureTruncatedWarning, open_capture
from pytest_tcpcopy.errors import CaptureError


@pytest.fixture
def frames() -> list[bytes]:
    return [bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / p) for p in l3_samples()]


def _records(frames: list[bytes]) -> list[tuple[float, bytes, int]]:
    return [(1_700_000_000 + n, frame, len(frame)) for n, frame in enumerate(frames)]


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    with pytest.raises(CaptureError, match="empty file") as caught:
        open_capture(path)
    assert (caught.value.path, caught.value.record) == (str(path), None)


def test_empty_gzip_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap.gz"
    path.write_bytes(gzip.compress(b""))
    with pytest.raises(CaptureError, match="empty file"):
        open_capture(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot open"):
        open_capture(tmp_path / "nothing-here.pcap")


@pytest.mark.parametrize("content", [b"GET / HTTP/1.1\r\n\r\n", b"\x00" * 100, gzip.compress(b"plain text, gzipped")])
def test_not_a_capture(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match="not a pcap or pcapng file"):
        open_capture(path)


def test_file_cut_inside_its_header(tmp_path: Path, frames: list[bytes]) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap_file(1, _records(frames))[:20])
    with pytest.raises(CaptureError, match="24-byte pcap header"):
        open_capture(path)


def test_header_only_file_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "none.pcap"
    path.write_bytes(pcap_file(1, []))
    with open_capture(path) as reader:
        assert list(reader) == []
    assert reader.stats.records == 0 and reader.stats.truncated_tail is None


def test_unsupported_link_type(tmp_path: Path, frames: list[bytes]) -> None:
    path = tmp_path / "usb.pcap"
    path.write_bytes(pcap_file(189, _records(frames)))  # LINKTYPE_USB_LINUX
    with pytest.raises(CaptureError, match="unsupported link type 189") as caught:
        list(open_capture(path))
    assert (caught.value.path, caught.value.record) == (str(path), 0)


def test_corrupt_record_length(tmp_path: Path, frames: list[bytes]) -> None:
    data = bytearray(pcap_file(1, _records(frames)))
    second = 24 + 16 + len(frames[0])
    data[second + 8 : second + 12] = (10_000_000).to_bytes(4, "little")
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(bytes(data))
    reader = open_capture(path)
    with pytest.raises(CaptureError, match="10000000 captured bytes") as caught:
        for _ in reader:
            pass
    assert caught.value.record == 1
    assert reader.stats.records == 1


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "keep,reason",
    [
        (16 + 5, "record 10: header says {size} bytes, file ends after 5"),
        (7, "record 10: file ends inside the 16-byte record header, after 7 bytes"),
    ],
)
def test_truncated_tail_yields_what_came_before(
    tmp_path: Path, frames: list[bytes], compress: bool, keep: int, reason: str
) -> None:
    whole = pcap_file(1, _records(frames))
    last = len(whole) - 16 - len(frames[-1])  # where record 10 (the last) starts
    path = tmp_path / "tail.pcap"
    path.write_bytes(gzip.compress(whole[: last + keep]) if compress else whole[: last + keep])
    with pytest.warns(CaptureTruncatedWarning, match="record 10"), open_capture(path) as reader:
        packets = list(reader)
    assert [p.index for p in packets] == [0, 1, 2, 3, 6, 7, 8, 9]  # every TCP record before the cut
    assert reader.stats.records == 10
    assert reader.stats.truncated_tail == reason.format(size=len(frames[-1]))


def test_truncated_pcapng_tail(tmp_path: Path, frames: list[bytes]) -> None:
    blocks = [pcapng_enhanced("<", 0, n, frame) for n, frame in enumerate(frames)]
    data = pcapng_section("<") + pcapng_interface("<", 1) + b"".join(blocks)
    path = tmp_path / "tail.pcapng"
    path.write_bytes(data[:-10])
    with pytest.warns(CaptureTruncatedWarning):
        records = list(open_capture(path).records())
    assert len(records) == len(frames) - 1


def test_gzip_stream_cut_between_records(tmp_path: Path, frames: list[bytes]) -> None:
    """The pcap data is whole, but the gzip member lacks its end: still reported, not raised."""
    packed = gzip.compress(pcap_file(1, _records(frames)))
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[:-8])  # drop the gzip trailer (CRC and size) only
    with pytest.warns(CaptureTruncatedWarning, match="gzip"), open_capture(path) as reader:
        assert len(list(reader)) == 8
    assert reader.stats.truncated_tail is not None


def test_corrupt_gzip(tmp_path: Path, frames: list[bytes]) -> None:
    packed = bytearray(gzip.compress(pcap_file(1, _records(frames) * 50)))
    packed[len(packed) // 2 :] = bytes(len(packed) - len(packed) // 2)
    path = tmp_path / "corrupt.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(CaptureError, match="gzip"):
        list(open_capture(path))


def test_concatenated_gzip_members_and_big_endian(tmp_path: Path, frames: list[bytes]) -> None:
    whole = pcap_file(1, _records(frames), order=">")
    path = tmp_path / "members"
    path.write_bytes(gzip.compress(whole[:100]) + gzip.compress(whole[100:]))
    with open_capture(path) as reader:
        assert [p.index for p in reader] == [0, 1, 2, 3, 6, 7, 8, 9]
