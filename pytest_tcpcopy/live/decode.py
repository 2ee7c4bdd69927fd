"""Live IP packets to ``Packet``s: the capture package's decoder plus the port check.

Shared by the local capture and the mirror receiver. The kernel filter passes IPv4 fragments past
the first without seeing their ports, so the ports are checked again here, after reassembly.
"""

from __future__ import annotations

from collections.abc import Collection

from ..capture.fragments import FragmentTable
from ..capture.ip import decode_ip_tcp
from ..capture.packet import Packet
from ..capture.stats import CaptureStats


class PacketDecoder:
    """Decodes raw IP packets of one source; ``stats`` counts what was skipped and why."""

    def __init__(self, ports: Collection[int]) -> None:
        self.ports = frozenset(ports)
        self.stats = CaptureStats()
        self.other_ports = 0  # reassembled datagrams of ports nobody asked for
        self._fragments = FragmentTable(self.stats)

    def decode(self, index: int, ts: float, ip: bytes) -> Packet | None:
        """The TCP segment in ``ip`` if it is on one of the ports, else None (counted)."""
        self.stats.records += 1
        packet = decode_ip_tcp(index, ts, ip, self.stats, self._fragments)
        if packet is None:
            return None
        if packet.sport in self.ports or packet.dport in self.ports:
            return packet
        self.other_ports += 1
        return None

    def close(self) -> None:
        """Count the datagrams still waiting for fragments as dropped."""
        self._fragments.close()
