"""Live capture from a network interface through a raw AF_PACKET socket, without libpcap.

The socket is first bound to the interface for no protocol (it receives nothing; this tells us the
link type), gets the BPF port filter, and only then is bound for every protocol, so no unfiltered
frame ever sits in its queue. Both directions are kept (PACKET_IGNORE_OUTGOING stays off): on a
production host we want the clients' requests and the server's responses. On a loopback interface
the kernel shows each packet twice, leaving and arriving; the filter drops the leaving copy (libpcap
skips it in user space).

Timestamps are the kernel's receive times (SO_TIMESTAMPNS ancillary data). The kernel's counters
(PACKET_STATISTICS) reset when read, so they are accumulated here.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Collection
from dataclasses import dataclass

from ..capture.linktypes import ethernet
from ..capture.packet import Packet
from ..errors import EnvironmentProblem
from . import bpf
from .decode import PacketDecoder

# Linux constants that Python 3.10/3.11's socket module lacks.
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772

_TIMESPEC = struct.Struct("=qq")
_TPACKET_STATS = struct.Struct("=II")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)
DEFAULT_BUFSIZE = 32 << 20
DEFAULT_SNAPLEN = 65535


@dataclass(slots=True)
class LiveCounters:
    frames: int = 0  # frames read from the socket
    not_ip: int = 0  # frames without an IPv4/IPv6 header (the filter lets none through)
    kernel_packets: int = 0  # frames the filter passed, by the kernel's count (dropped ones included)
    kernel_dropped: int = 0  # frames the kernel dropped because the socket's buffer was full


def seconds(ts_ns: int) -> float:
    """A ns timestamp as float seconds, computed as the pcap readers do (seconds + fraction)."""
    whole, fraction = divmod(ts_ns, 1_000_000_000)
    return whole + fraction / 1_000_000_000


class LiveCapture:
    """TCP segments on ``ports`` seen on interface ``iface``, read without blocking.

    ``read_ip`` gives raw IP packets (for the mirror agent), ``read_packets`` decoded ``Packet``s;
    use one or the other. Needs CAP_NET_RAW; raises EnvironmentProblem naming what is missing.
    """

    def __init__(
        self,
        iface: str,
        ports: Collection[int],
        *,
        snaplen: int = DEFAULT_SNAPLEN,
        bufsize: int = DEFAULT_BUFSIZE,
    ) -> None:
        self.iface = iface
        self.ports = tuple(sorted(set(ports)))
        self.snaplen = snaplen
        self.counters = LiveCounters()
        self.decoder = PacketDecoder(self.ports)
        bpf.tcp_ports_filter(self.ports, snaplen)  # bad ports or snap length: UsageError before any socket
        try:
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise EnvironmentProblem(f"live capture on {iface} needs CAP_NET_RAW (run as root)") from None
        try:
            self._setup(bufsize)
        except BaseException:
            self._sock.close()
            raise
        self._index = 0

    def _setup(self, bufsize: int) -> None:
        sock = self._sock
        try:
            sock.bind((self.iface, 0))  # protocol 0: nothing is received yet
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot capture on interface {self.iface!r}: {exc.strerror or exc}; "
                "check the name with `ip link` in this network namespace"
            ) from None
        hatype = sock.getsockname()[3]
        if hatype not in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
            raise EnvironmentProblem(
                f"interface {self.iface!r} has hardware type {hatype}; live capture reads Ethernet "
                "framing only (Ethernet, veth, bridges, loopback)"
            )
        self.loopback = hatype == ARPHRD_LOOPBACK
        program = bpf.tcp_ports_filter(self.ports, self.snaplen, skip_outgoing=self.loopback)
        fprog, _keep = bpf.sock_fprog(program)
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, bufsize)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
        sock.bind((self.iface, ETH_P_ALL))
        sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read_ip(self, max_n: int = 1024) -> list[tuple[int, bytes]]:
        """Up to ``max_n`` waiting packets as (ns since the epoch, IP bytes), without blocking."""
        out: list[tuple[int, bytes]] = []
        recvmsg = self._sock.recvmsg
        snaplen = self.snaplen
        counters = self.counters
        for _ in range(max_n):
            try:
                frame, ancillary, _flags, _address = recvmsg(snaplen, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                break
            counters.frames += 1
            version, offset = ethernet(frame)
            if version <= 0:
                counters.not_ip += 1
                continue
            ts_ns = None
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(data)
                    ts_ns = seconds * 1_000_000_000 + nanoseconds
            out.append((time.time_ns() if ts_ns is None else ts_ns, frame[offset:]))
        return out

    def read_packets(self, max_n: int = 1024) -> list[Packet]:
        """Up to ``max_n`` waiting frames, decoded; ``Packet.index`` counts from 0 per capture."""
        decode = self.decoder.decode
        out = []
        for ts_ns, ip in self.read_ip(max_n):
            packet = decode(self._index, seconds(ts_ns), ip)
            self._index += 1
            if packet is not None:
                out.append(packet)
        return out

    def poll_stats(self) -> LiveCounters:
        """Fold the kernel's counters (reset on each read) into ``counters`` and return them."""
        try:
            raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _TPACKET_STATS.size)
        except OSError:
            return self.counters
        packets, drops = _TPACKET_STATS.unpack(raw)
        self.counters.kernel_packets += packets
        self.counters.kernel_dropped += drops
        return self.counters

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            self.poll_stats()
            self._sock.close()
            self.decoder.close()

    def __enter__(self) -> LiveCapture:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
