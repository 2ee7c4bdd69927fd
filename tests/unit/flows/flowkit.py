"""Builds the Packets of a TCP conversation by hand, with real sequence arithmetic, for flow tests."""

from __future__ import annotations

from pytest_tcpcopy.capture.packet import ACK, FIN, PSH, RST, SYN, Packet
from pytest_tcpcopy.endpoint import parse_addr

MOD = 1 << 32


class Conversation:
    """One connection's packets, in the order the methods are called; each call returns its Packet.

    ``c_next``/``s_next`` are the next sequence numbers of client and server; sending data
    advances them unless a ``seq`` is given (a retransmission or a reordered segment).
    """

    def __init__(
        self,
        client: str = "198.18.0.1:40000",
        server: str = "198.18.0.2:80",
        *,
        client_isn: int = 1000,
        server_isn: int = 900_000,
        t0: float = 100.0,
    ) -> None:
        chost, cport = client.rsplit(":", 1)
        shost, sport = server.rsplit(":", 1)
        self.client = (parse_addr(chost), int(cport))
        self.server = (parse_addr(shost), int(sport))
        self.client_isn = client_isn
        self.server_isn = server_isn
        self.c_next = (client_isn + 1) % MOD
        self.s_next = (server_isn + 1) % MOD
        self.ts = t0
        self.packets: list[Packet] = []

    def packet(
        self,
        from_client: bool,
        flags: int,
        payload: bytes = b"",
        *,
        seq: int | None = None,
        wire_len: int | None = None,
        gap: float = 0.001,
    ) -> Packet:
        self.ts += gap
        src, dst = (
            (self.client, self.server) if from_client else (self.server, self.client)
        )
        own_next = self.c_next if from_client else self.s_next
        peer_next = self.s_next if from_client else self.c_next
        if seq is None:
            seq = own_next
            advance = (wire_len if wire_len is not None else len(payload)) + (
                1 if flags & FIN else 0
            )
            if from_client:
                self.c_next = (own_next + advance) % MOD
            else:
                self.s_next = (own_next + advance) % MOD
        pkt = Packet(
            index=len(self.packets),
            ts=self.ts,
            src=src[0],
            dst=dst[0],
            sport=src[1],
            dport=dst[1],
            seq=seq % MOD,
            ack=peer_next if flags & ACK else 0,
            flags=flags,
            window=65535,
            options=b"",
            payload=payload,
            payload_len=len(payload) if wire_len is None else wire_len,
            ip_id=0,
            ttl=64,
        )
        self.packets.append(pkt)
        return pkt

    def handshake(self) -> list[Packet]:
        return [self.syn(), self.synack(), self.ack()]

    def syn(self) -> Packet:
        return self.packet(True, SYN, seq=self.client_isn)

    def synack(self) -> Packet:
        return self.packet(False, SYN | ACK, seq=self.server_isn)

    def ack(self, from_client: bool = True) -> Packet:
        return self.packet(from_client, ACK)

    def send(self, from_client: bool, data: bytes, **kw) -> Packet:
        return self.packet(from_client, ACK | PSH, data, **kw)

    def fin(self, from_client: bool) -> Packet:
        return self.packet(from_client, FIN | ACK)

    def rst(self, from_client: bool) -> Packet:
        return self.packet(from_client, RST | ACK)

    def close(self) -> list[Packet]:
        return [self.fin(True), self.fin(False), self.ack(True)]
