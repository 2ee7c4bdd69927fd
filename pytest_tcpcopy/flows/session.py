"""One TCP connection as the capture saw it: both endpoints, the client's segments, both streams.

A ``CapturedSession`` is filled in by ``FlowAssembler`` while the capture streams past and handed
out once the connection is over; after that nothing changes it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..capture.packet import Packet
from ..endpoint import Endpoint
from .stream import ByteStream


class CloseKind(enum.Enum):
    """How the connection ended within the capture."""

    FIN = "fin"  # both sides sent a FIN
    RST = "rst"  # a reset came first (from either side)
    OPEN = (
        "open"  # neither: still open, half-closed, or cut off by the end of the capture
    )


@dataclass(slots=True, eq=False)
class CapturedSession:
    """A TCP connection of the capture.

    ``client_segments`` holds every client-to-server packet in capture order (SYN, pure ACKs,
    retransmissions, FIN, RST included); the replay translator consumes it. ``packets``,
    ``retransmitted`` and ``out_of_order`` count segments of BOTH directions: a retransmitted
    segment repeats at least one byte (or a SYN or FIN) already seen; an out-of-order one carries
    only new bytes but starts below the highest byte seen, i.e. it fills a hole. ``handshake`` is
    True when the SYN, the SYN-ACK and the client's ACK of it were all captured.
    """

    index: int  # creation order in the capture, from 0
    client: Endpoint
    server: Endpoint
    first_ts: float
    last_ts: float
    client_segments: list[Packet] = field(default_factory=list)
    client_stream: ByteStream = field(default_factory=ByteStream)
    server_stream: ByteStream = field(default_factory=ByteStream)
    client_isn: int | None = None
    server_isn: int | None = None
    handshake: bool = False
    close: CloseKind = CloseKind.OPEN
    packets: int = 0
    retransmitted: int = 0
    out_of_order: int = 0
    # Assembler bookkeeping: which FINs were seen (1 client, 2 server), and whether the session
    # has been handed out already.
    fins: int = field(default=0, init=False, repr=False)
    released: bool = field(default=False, init=False, repr=False)

    @property
    def closed(self) -> bool:
        return self.close is not CloseKind.OPEN

    @property
    def gaps(self) -> int:
        """Number of missing byte ranges in both streams."""
        return len(self.client_stream.gaps) + len(self.server_stream.gaps)
