"""Fuzzing: whatever the bytes, the reader yields well-formed Packets or raises CaptureError."""

from __future__ import annotations

import gzip
import random
import warnings
from pathlib import Path

import pytest
from capture_helpers import l3_samples, pcap_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import fragment
from scapy.layers.l2 import CookedLinuxV2, Dot1Q, Ether
from scapy.utils import PcapNgWriter, PcapWriter
from test_capture_pcapng import multi_section_capture

from pytest_tcpcopy.capture import Packet, open_capture
from pytest_tcpcopy.capture.linktypes import LINK_DECODERS
from pytest_tcpcopy.errors import CaptureError

CASES_PER_SEED = 600


def _outcome(path: Path) -> list[Packet] | CaptureError:
    """Read the whole file; any exception other than CaptureError fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with open_capture(path) as reader:
                packets = list(reader)
        except CaptureError as e:
            return e
    stats = reader.stats
    assert stats.records == stats.tcp_packets + stats.non_tcp + stats.unparsable + stats.fragments - stats.reassembled
    assert stats.tcp_packets == len(packets) and stats.truncated_packets == sum(p.truncated for p in packets)
    for packet in packets:
        assert type(packet) is Packet
        assert len(packet.src) == len(packet.dst) in (4, 16)
        assert len(packet.payload) <= packet.payload_len
        assert len(packet.options) <= 40
    return packets


@pytest.fixture
def seeds(tmp_path: Path) -> list[bytes]:
    samples = l3_samples()
    mac = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
    frames = [Ether(**mac) / p for p in samples]
    frames += [Ether(**mac) / piece for piece in fragment(samples[3], fragsize=96)]
    for n, frame in enumerate(frames):
        frame.time = 1_700_000_000 + n
    out = []
    plain = tmp_path / "plain.pcap"
    with PcapWriter(str(plain), linktype=1) as writer:
        writer.write(frames)
    out.append(plain.read_bytes())
    nano = tmp_path / "nano.pcap"
    with PcapWriter(str(nano), linktype=276, endianness=">", nano=True) as writer:
        writer.write([CookedLinuxV2(proto=0x0800 if p.version == 4 else 0x86DD) / p for p in samples])
    out.append(nano.read_bytes())
    ng = tmp_path / "vlan.pcapng"
    with PcapNgWriter(str(ng)) as writer:
        writer.write([Ether(**mac) / Dot1Q(vlan=3) / p for p in samples])
    out.append(ng.read_bytes())
    out.append(multi_section_capture())
    out.append(gzip.compress(out[0]))
    return out


def _mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:  # flip a few bytes
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:  # truncate
        del data[rng.randrange(len(data)) :]
    elif kind == 2:  # delete a slice
        at = rng.randrange(len(data))
        del data[at : at + rng.randint(1, 64)]
    else:  # insert junk
        at = rng.randrange(len(data))
        data[at:at] = rng.randbytes(rng.randint(1, 64))
    return bytes(data)


def test_random_mutations_of_valid_files(tmp_path: Path, seeds: list[bytes]) -> None:
    rng = random.Random(20261126)
    path = tmp_path / "mutant"
    errors = 0
    for seed in seeds:
        assert isinstance(_outcome_of(path, seed), list)  # the unmutated seed reads cleanly
        for _ in range(CASES_PER_SEED):
            errors += isinstance(_outcome_of(path, _mutate(rng, seed)), CaptureError)
    assert 0 < errors < len(seeds) * CASES_PER_SEED  # both outcomes were exercised


def _outcome_of(path: Path, data: bytes) -> list[Packet] | CaptureError:
    path.write_bytes(data)
    return _outcome(path)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    linktype=st.sampled_from(sorted(LINK_DECODERS)),
    frames=st.lists(st.binary(max_size=120), max_size=8),
    snaplen=st.sampled_from([65535, 64]),
)
def test_arbitrary_frames_of_every_link_type(tmp_path: Path, linktype: int, frames: list[bytes], snaplen: int) -> None:
    path = tmp_path / "frames.pcap"
    path.write_bytes(pcap_file(linktype, [(1.0, f, len(f) + 10) for f in frames], snaplen=snaplen))
    packets = _outcome(path)
    assert isinstance(packets, list)  # well-formed records: any frame content is a counted skip, never an error
