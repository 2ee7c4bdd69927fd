"""What a capture reader saw: counts of every record it yielded or skipped, and why."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class CaptureStats:
    """Counts for one pass over a capture, final once the pass ends (some are added at the end).

    Every record lands in one of ``tcp_packets``, ``non_tcp``, ``unparsable`` or ``fragments``; a
    reassembled datagram then adds itself to ``tcp_packets`` (or ``unparsable``), so after a full pass
    ``records == tcp_packets + non_tcp + unparsable + fragments - reassembled``.
    """

    records: int = 0  # packet records read from the file
    tcp_packets: int = 0  # Packets yielded (a reassembled datagram counts once)
    non_tcp: int = 0  # not IP, or IP carrying another protocol
    truncated_packets: int = 0  # yielded Packets whose payload the snap length cut (Packet.truncated)
    unparsable: int = 0  # IP/TCP headers cut by the snap length or inconsistent: skipped
    fragments: int = 0  # fragment records of TCP datagrams
    reassembled: int = 0  # IPv4 datagrams rebuilt from fragments
    fragments_dropped: int = 0  # datagrams given up: overlapping, incomplete, cut, or evicted
    truncated_tail: str | None = None  # set when the file ends in the middle of its last record
    link_types: set[int] = field(default_factory=set)  # link types the file declares
