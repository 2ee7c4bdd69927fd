"""The common case decoded in the read buffer (``kernel.codecs.decode_run``): each record it decodes
is the Packet the general decoder makes of it, it stops at every other record, and the reader's
output through it equals the general decoder's, record for record, counts included."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from capture_helpers import l3_samples, pcapng_enhanced, pcapng_interface, pcapng_section
from scapy.layers.l2 import Dot1Q, Ether

from pytest_tcpcopy.capture import open_capture
from pytest_tcpcopy.capture.fragments import FragmentTable
from pytest_tcpcopy.capture.reader import _GeneralDecoder
from pytest_tcpcopy.capture.linktypes import ETHERNET
from pytest_tcpcopy.capture.stats import CaptureStats
from pytest_tcpcopy.kernel.codecs import RUN, decode_common_frame, decode_run

MAX_RECORD = 262_144


def _frames() -> list[bytes]:
    """Ethernet frames of every shape: the common case, IP options, IPv6, VLAN, non-TCP."""
    frames = [bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / p) for p in l3_samples()]
    frames.append(bytes(Ether() / Dot1Q(vlan=7) / l3_samples()[2]))
    return frames


def _records(rng: random.Random, count: int, little: bool) -> tuple[bytes, list[int]]:
    """A buffer of ``count`` pcap records (after a 24-byte file header) of mutated frames: cut by
    a snap length, bytes of their headers flipped, padded; and the offset of each record."""
    order = "<" if little else ">"
    frames = _frames()
    out, offsets, pos = [b"\0" * 24], [], 24
    for _ in range(count):
        frame = bytearray(rng.choice(frames))
        mutation = rng.random()
        if mutation < 0.15:
            frame = frame[: rng.randrange(0, len(frame) + 1)]  # a snap length
        elif mutation < 0.3 and len(frame) > 54:
            frame[rng.randrange(12, 54)] = rng.randrange(256)  # any header field, any value
        elif mutation < 0.35:
            frame += b"\0" * rng.randrange(1, 20)  # Ethernet padding beyond the IP datagram
        seconds, fraction = rng.randrange(1 << 32), rng.randrange(1_000_000)
        header = struct.pack(order + "IIII", seconds, fraction, len(frame), len(frame) + rng.randrange(3))
        out.append(header + frame)
        offsets.append(pos)
        pos += 16 + len(frame)
    return b"".join(out), offsets


@pytest.mark.parametrize("little", [True, False])
def test_a_run_decodes_each_record_as_the_general_decoder_does(little: bool) -> None:
    buf, offsets = _records(random.Random(7 + little), 3000, little)
    general = _GeneralDecoder("records", CaptureStats(), None)
    decoded = cut = 0
    for index, pos in enumerate(offsets):
        run: list = []
        after, next_index, cuts = decode_run(buf, pos, index, little, 1_000_000, MAX_RECORD, run, limit=1)
        seconds, fraction, captured, _ = struct.unpack_from("<IIII" if little else ">IIII", buf, pos)
        frame = buf[pos + 16 : pos + 16 + captured]
        if run:
            assert run == [general(index, seconds + fraction / 1_000_000, ETHERNET, frame, captured)]
            assert (after, next_index, cuts) == (pos + 16 + captured, index + 1, run[0].truncated)
            decoded += 1
            cut += cuts
        else:
            assert (after, next_index, cuts) == (pos, index, 0)  # the general way takes it
    assert 300 < decoded < 2000  # both the common case and every other kind were there
    assert cut > 0


def test_a_frame_alone_decodes_as_in_a_run() -> None:
    """pcapng hands out frames one by one: the frame decoder agrees with the run decoders."""
    buf, offsets = _records(random.Random(5), 1000, True)
    decoded = 0
    for index, pos in enumerate(offsets):
        run: list = []
        decode_run(buf, pos, index, True, 1_000_000, MAX_RECORD, run, limit=1)
        (captured,) = struct.unpack_from("<I", buf, pos + 8)
        frame = buf[pos + 16 : pos + 16 + captured]
        if run:
            decoded += 1
            assert decode_common_frame(index, run[0].ts, frame) == run[0]
        else:
            assert decode_common_frame(index, 0.0, frame) is None
    assert 100 < decoded < 900


def test_a_run_stops_at_a_record_not_wholly_in_the_buffer() -> None:
    buf, offsets = _records(random.Random(3), 50, True)
    run: list = []
    pos, index, _ = decode_run(buf[: offsets[1] + 20], 24, 0, True, 1_000_000, MAX_RECORD, run)
    assert (pos, index) in ((24, 0), (offsets[1], 1))  # never past the cut record


@pytest.mark.parametrize("little", [True, False])
def test_the_reader_gives_what_the_general_decoder_gives(tmp_path: Path, little: bool) -> None:
    buf, _offsets = _records(random.Random(11), 2000, little)
    order = "<" if little else ">"
    header = struct.pack(order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    path = tmp_path / "mixed.pcap"
    path.write_bytes(header + buf[24:])

    reader = open_capture(path)
    with reader:
        fast = list(reader)
    general_stats = CaptureStats()
    raw = open_capture(path)
    with raw:
        fragments = FragmentTable(general_stats)
        decode = _GeneralDecoder(str(path), general_stats, fragments)
        general = [p for p in (decode(*record) for record in raw.records()) if p is not None]
        fragments.close()
    general_stats.records = raw.stats.records
    general_stats.link_types = raw.stats.link_types
    # The general decoder counts what it yields in tcp_packets too, as the fast path does.
    assert fast == general
    assert reader.stats == general_stats
    assert len(fast) > 600


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_batches_hold_the_same_packets_and_counts_as_iteration(tmp_path: Path, fmt: str) -> None:
    """Mixed records (runs of the common case, every other kind between them), both formats."""
    buf, _offsets = _records(random.Random(5), 1500, True)
    path = tmp_path / "mixed.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + buf[24:])
    if fmt == "pcapng":
        with open_capture(path) as raw:
            records = list(raw.records())
        path = tmp_path / "mixed.pcapng"
        blocks = [pcapng_section("<"), pcapng_interface("<", 1)]  # microsecond ticks, Ethernet
        blocks += [pcapng_enhanced("<", 0, round(ts * 1e6), frame) for _, ts, _, frame, _ in records]
        path.write_bytes(b"".join(blocks))
    with open_capture(path) as reader:
        packets = list(reader)
    with open_capture(path) as batched:
        batches = list(batched.batches())
    assert [p for batch in batches for p in batch] == packets and len(packets) > 400
    assert all(0 < len(batch) <= RUN for batch in batches)
    assert batched.stats == reader.stats
