"""Cutting captured sessions out of a capture into small capture files, in one streaming pass.

Sessions are numbered as ``inspect``, the copier and the plugin number them: a ``FlowAssembler``
with the same server ports and linger, in capture order. One pass over the file serves any number
of wanted sessions, and it stops as soon as the assembler has handed out every one of them
(closed and lingered, or replaced by port reuse): no later packet can belong to them. A wanted
session still open at the end of the capture ends the pass there; one the capture does not hold
comes back with ``found`` False.

A slice holds every packet the assembler routed to its session, both directions, in capture
order, with the capture's timestamps (to a fraction of a microsecond: the reader passes them as
float seconds), as raw IP records (link type 101): link-layer headers are dropped (the capturing
host's own addresses, of no use to a replay), IP packets are kept byte for byte. An IPv4 datagram
captured in fragments is written reassembled, as the reader sees it, with its header checksum
recomputed. The file is written as the packets stream past, so its size costs no memory.

Besides the file, a slice keeps its session's streams (``session``: one ``CapturedSession``,
numbered 0 as in the slice file itself) so its exchanges can be parsed, up to
``max_kept_bytes`` of payload; past that the file is still written whole, ``session`` is None and
``too_large`` True.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..capture import CaptureStats, Packet, RawRecord, open_capture
from ..capture.fragments import FragmentTable
from ..capture.ip import decode_ip_tcp
from ..capture.linktypes import LINK_DECODERS
from ..errors import CaptureError
from ..flows import CapturedSession, FlowAssembler
from ..live.capture_file import CaptureFileWriter

MAX_KEPT_BYTES = 8 << 20  # payload bytes (both directions) of one session kept for parsing


@dataclass(frozen=True, slots=True)
class SessionSlice:
    """One wanted session as the pass found it.

    ``index`` is the session's index in the capture; ``path`` the slice file (None when none was
    asked for); ``packets`` how many packets it holds; ``session`` its streams (see the module
    comment), ``too_large`` when they were not kept; ``found`` False when the capture holds no
    session of that index (``path`` then holds an empty capture).
    """

    index: int
    path: Path | None
    packets: int
    session: CapturedSession | None
    too_large: bool
    found: bool


def slice_sessions(
    capture: str | os.PathLike[str],
    wanted: Mapping[int, str | os.PathLike[str] | None],
    server_ports: Collection[int] = (),
    *,
    max_kept_bytes: int = MAX_KEPT_BYTES,
) -> dict[int, SessionSlice]:
    """Cut each session ``index`` of ``wanted`` out of ``capture`` into the file ``wanted[index]``
    names (``.pcap``/``.pcapng``, optionally ``.gz``; None: keep its streams only), in one pass;
    ``server_ports`` are the capture's server ports as the run that numbered the sessions had them.
    Raises ``CaptureError`` for a capture that cannot be read."""
    cuts = {index: _Cut(path, server_ports, max_kept_bytes) for index, path in wanted.items()}
    try:
        _one_pass(os.fspath(capture), cuts, server_ports)
    finally:
        for cut in cuts.values():
            cut.close()
    return {index: cut.result(index) for index, cut in cuts.items()}


def _one_pass(path: str, cuts: dict[int, _Cut], server_ports: Collection[int]) -> None:
    pending = set(cuts)
    if not pending:
        return
    flows = FlowAssembler(server_ports, keep_streams=False, server_coverage=False)
    stats = CaptureStats()
    fragments = _Reassembly(stats)
    with open_capture(path) as reader:
        for record in reader.records():
            packet, ip = _decode(path, record, stats, fragments)
            if packet is None:
                continue
            route = flows.feed(packet)
            if route is not None:
                cut = cuts.get(route[0].index)
                if cut is not None:
                    cut.add(record.ts, packet, ip)
            if flows.has_finished():
                for session in flows.pop_finished():
                    pending.discard(session.index)
                if not pending:
                    return


class _Cut:
    """The slice of one session being written."""

    def __init__(self, path: str | os.PathLike[str] | None, server_ports: Collection[int], max_kept: int) -> None:
        self.path = Path(path) if path is not None else None
        self.writer = CaptureFileWriter(self.path) if self.path is not None else None
        self.flows: FlowAssembler | None = FlowAssembler(server_ports)
        self.max_kept = max_kept
        self.kept = 0
        self.packets = 0
        self.too_large = False
        self.session: CapturedSession | None = None

    def add(self, ts: float, packet: Packet, ip: bytes) -> None:
        self.packets += 1
        if self.writer is not None:
            self.writer.write(round(ts * 1e9), ip)
        if self.flows is None:
            return
        self.kept += packet.payload_len
        if self.kept > self.max_kept:
            self.flows, self.too_large = None, True
        else:
            self.flows.feed(packet)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.flows is not None:
            sessions = self.flows.finish()
            self.session = sessions[0] if sessions else None
            self.flows = None

    def result(self, index: int) -> SessionSlice:
        return SessionSlice(index, self.path, self.packets, self.session, self.too_large, self.packets > 0)


class _Reassembly(FragmentTable):
    """The reader's fragment table, remembering the datagram the last fragment completed."""

    whole: bytes | None = None

    def add(self, *args) -> tuple[int, bytes] | None:  # type: ignore[override]
        done = super().add(*args)
        self.whole = done[1] if done is not None else None
        return done


def _decode(path: str, record: RawRecord, stats: CaptureStats, fragments: _Reassembly) -> tuple[Packet | None, bytes]:
    """The record's TCP segment as the reader decodes it (or None), and its IP packet's bytes."""
    decode_link = LINK_DECODERS.get(record.linktype)
    if decode_link is None:
        raise CaptureError(path, record.index, f"unsupported link type {record.linktype} (supported: "
                           f"{', '.join(map(str, sorted(LINK_DECODERS)))})")  # fmt: skip
    version, offset = decode_link(record.data)
    if version <= 0:
        return None, b""
    ip = record.data[offset:]
    fragments.whole = None
    packet = decode_ip_tcp(record.index, record.ts, ip, stats, fragments)
    if fragments.whole is not None:
        ip = _with_header_checksum(fragments.whole)
    return packet, ip


def _with_header_checksum(datagram: bytes) -> bytes:
    """An IPv4 datagram with its header checksum recomputed (RFC 1071)."""
    ihl = (datagram[0] & 15) << 2
    header = bytearray(datagram[:ihl])
    header[10:12] = b"\0\0"
    total = sum(int.from_bytes(header[i : i + 2], "big") for i in range(0, ihl, 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    header[10:12] = (~total & 0xFFFF).to_bytes(2, "big")
    return bytes(header) + datagram[ihl:]
