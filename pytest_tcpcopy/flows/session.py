"""One TCP connection as the capture saw it: both endpoints, the client's segments, both streams.

A ``CapturedSession`` is filled in by ``FlowAssembler`` while the capture streams past and handed
out once the connection is over; after that nothing changes it.
"""

from __future__ import annotations

import enum

from ..endpoint import Endpoint
from ..kernel.packet import Packet
from .stream import ByteStream


class CloseKind(enum.Enum):
    """How the connection ended within the capture."""

    FIN = "fin"  # both sides sent a FIN
    RST = "rst"  # a reset came first (from either side)
    OPEN = (
        "open"  # neither: still open, half-closed, or cut off by the end of the capture
    )


class CapturedSession:
    """A TCP connection of the capture.

    ``client_segments`` holds every client-to-server packet in capture order (SYN, pure ACKs,
    retransmissions, FIN, RST included); the replay translator consumes it. ``packets``,
    ``retransmitted`` and ``out_of_order`` count segments of BOTH directions: a retransmitted
    segment repeats at least one byte (or a SYN or FIN) already seen; an out-of-order one carries
    only new bytes but starts below the highest byte seen, i.e. it fills a hole. ``handshake`` is
    True when the SYN, the SYN-ACK and the client's ACK of it were all captured.
    """

    __slots__ = (
        "client", "client_isn", "client_segments", "client_stream", "close", "fins", "first_ts",
        "handshake", "index", "last_ts", "out_of_order", "packets", "released", "retransmitted",
        "server", "server_isn", "server_stream",
    )  # fmt: skip

    def __init__(
        self,
        index: int,  # creation order in the capture, from 0
        client: Endpoint,
        server: Endpoint,
        first_ts: float,
        last_ts: float,
        client_segments: list[Packet] | None = None,
        client_stream: ByteStream | None = None,
        server_stream: ByteStream | None = None,
        client_isn: int | None = None,
        server_isn: int | None = None,
        handshake: bool = False,
        close: CloseKind = CloseKind.OPEN,
        packets: int = 0,
        retransmitted: int = 0,
        out_of_order: int = 0,
    ) -> None:
        self.index, self.client, self.server = index, client, server
        self.first_ts, self.last_ts = first_ts, last_ts
        self.client_segments: list[Packet] = [] if client_segments is None else client_segments
        self.client_stream = ByteStream() if client_stream is None else client_stream
        self.server_stream = ByteStream() if server_stream is None else server_stream
        self.client_isn, self.server_isn = client_isn, server_isn
        self.handshake, self.close = handshake, close
        self.packets, self.retransmitted, self.out_of_order = packets, retransmitted, out_of_order
        # Assembler bookkeeping: which FINs were seen (1 client, 2 server), and whether the
        # session has been handed out already.
        self.fins = 0
        self.released = False

    def __repr__(self) -> str:
        return (
            f"CapturedSession(index={self.index}, client={self.client}, server={self.server}, "
            f"packets={self.packets}, close={self.close.value}, handshake={self.handshake})"
        )

    @property
    def closed(self) -> bool:
        return self.close is not CloseKind.OPEN

    @property
    def gaps(self) -> int:
        """Number of missing byte ranges in both streams."""
        return len(self.client_stream.gaps) + len(self.server_stream.gaps)
