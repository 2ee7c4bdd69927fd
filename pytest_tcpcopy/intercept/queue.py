"""The NFQUEUE reader: copies each queued SUT segment out, then drops it (NF_DROP, always).

Built on ``netfilterqueue``. Reads are bounded per call (``read(budget)``) so the server's selector
loop keeps serving copiers during a flood: netfilterqueue's ``run_socket`` reads until EAGAIN, and
the budgeted socket wrapper below reports EAGAIN once the budget is spent. The verdict is one
NFQNL_MSG_VERDICT_BATCH per read pass (NF_DROP for every id up to the last one read) instead of a
verdict per segment, which halves the system calls. A segment whose verdict never comes stays in
the kernel's queue until we unbind, and is then dropped: every failure mode still drops.

Sizing: the kernel queue holds up to ``max_len`` segments awaiting a verdict, and the netlink
socket buffer must hold that many messages or the kernel counts ``user_dropped``; both are set
large. The copy range is the IP+TCP headers (120 bytes) normally, or the whole segment in
response-capture mode, where netfilterqueue caps it at 4016 bytes: a longer segment (only on
links with an MTU above ~4000, e.g. ``lo``) arrives truncated, with its IP length still telling
the original size.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import EnvironmentProblem

HEADERS_RANGE = 120  # 60-byte IPv4 header with options + 60-byte TCP header with options
PAYLOAD_RANGE = 4016  # netfilterqueue's MaxCopySize (4096-byte receive buffer minus metadata)
MAX_LEN = 65536
SOCK_LEN = 256 << 20

_PROC = "/proc/net/netfilter/nfnetlink_queue"

# NFQNL_MSG_VERDICT_BATCH: nlmsghdr (host order), nfgenmsg, one NFQA_VERDICT_HDR attribute.
_NLMSG = struct.Struct("=IHHII")
_NFGEN = struct.Struct("!BBH")
_VERDICT_ATTR = struct.Struct("=HH")
_VERDICT_HDR = struct.Struct("!II")
_VERDICT_BATCH_TYPE = (3 << 8) | 3  # NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_VERDICT_BATCH
_NLM_F_REQUEST = 1
_NFQA_VERDICT_HDR = 2
_NF_DROP = 0
_KERNEL = (0, 0)  # netlink address of the kernel


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Kernel counters for one queue (from /proc/net/netfilter/nfnetlink_queue)."""

    pending: int  # segments awaiting our verdict
    queue_dropped: int  # dropped because the queue was full (max_len)
    user_dropped: int  # dropped because our netlink socket buffer was full


def read_stats(queue_num: int) -> QueueStats | None:
    """The kernel's counters for ``queue_num`` in this network namespace; None when not bound."""
    try:
        with open(_PROC) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        fields = line.split()
        if fields and int(fields[0]) == queue_num:
            return QueueStats(int(fields[2]), int(fields[5]), int(fields[6]))
    return None


class _Budgeted:
    """A socket stand-in for ``run_socket`` that reports EAGAIN after ``left`` reads."""

    __slots__ = ("left", "recv_from")

    def __init__(self, sock: socket.socket) -> None:
        self.recv_from = sock.recv
        self.left = 0

    def recv(self, size: int) -> bytes:
        if self.left <= 0:
            raise BlockingIOError(errno.EAGAIN, "read budget spent")
        self.left -= 1
        return self.recv_from(size)


class ResponseQueue:
    """Binds NFQUEUE ``queue_num`` in the current network namespace; needs CAP_NET_ADMIN there."""

    def __init__(self, queue_num: int, deliver: Callable[[bytes], None], *, capture_payload: bool = False) -> None:
        try:
            from netfilterqueue import COPY_PACKET, NetfilterQueue
        except ImportError:
            raise EnvironmentProblem(
                "the intercept needs the 'netfilterqueue' package: pip install 'pytest-tcpcopy[agent]' "
                "(it builds against libnetfilter-queue-dev)"
            ) from None
        self.queue_num = queue_num
        self._deliver = deliver
        self._last_id = -1
        self._nfq = NetfilterQueue()
        copy_range = PAYLOAD_RANGE if capture_payload else HEADERS_RANGE
        try:
            self._nfq.bind(queue_num, self._on_packet, max_len=MAX_LEN, mode=COPY_PACKET,
                           range=copy_range, sock_len=SOCK_LEN)
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot bind NFQUEUE {queue_num}: {exc}; the intercept needs CAP_NET_ADMIN in the SUT's "
                "network namespace, and no other process may hold that queue number"
            ) from None
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, fileno=self._nfq.get_fd())
        self._sock.setblocking(False)
        self._reader = _Budgeted(self._sock)
        self._verdict_head = _NFGEN.pack(0, 0, queue_num) + _VERDICT_ATTR.pack(4 + _VERDICT_HDR.size, _NFQA_VERDICT_HDR)

    def _on_packet(self, packet) -> None:
        self._last_id = packet.id
        self._deliver(packet.get_payload())

    def _drop_through(self, last_id: int) -> None:
        body = self._verdict_head + _VERDICT_HDR.pack(_NF_DROP, last_id)
        self._sock.sendto(_NLMSG.pack(_NLMSG.size + len(body), _VERDICT_BATCH_TYPE, _NLM_F_REQUEST, 0, 0) + body,
                          _KERNEL)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self, budget: int) -> int:
        """Hand at most ``budget`` queued segments (raw IP bytes) to ``deliver``; never blocks.

        Returns how many were read.
        """
        self._reader.left = budget
        try:
            self._nfq.run_socket(self._reader)
        finally:
            if self._last_id >= 0:
                self._drop_through(self._last_id)
                self._last_id = -1
        return budget - self._reader.left

    def stats(self) -> QueueStats | None:
        return read_stats(self.queue_num)

    def close(self) -> None:
        """Unbind; segments queued afterwards are dropped by the kernel (no reader: fail closed)."""
        self._nfq.unbind()
        self._sock.detach()
