"""The raw IPv4 socket the copier sends its ready-made packets through (IP_HDRINCL)."""

from __future__ import annotations

import errno
import socket

from ..endpoint import Endpoint, format_addr
from ..errors import EnvironmentProblem, UsageError

_SNDBUF = 8 << 20


class RawSender:
    """Sends complete IPv4 packets to one target; the kernel routes them, we wrote every byte."""

    def __init__(self, target: Endpoint) -> None:
        if target.is_ipv6:
            raise UsageError(f"target {target}: IPv6 replay is not supported yet; give an IPv4 target")
        try:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        except PermissionError:
            raise EnvironmentProblem(
                "the copier's raw socket needs CAP_NET_RAW (run as root, or give the copier container NET_RAW)"
            ) from None
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF)
            # A raw socket "connected" to the target skips a destination lookup per sendto.
            self._sock.connect((format_addr(target.addr), 0))
        except OSError as exc:
            self._sock.close()
            raise EnvironmentProblem(f"cannot send to target {target}: {exc.strerror or exc}") from None
        self.sent = 0
        self.send_errors = 0

    def send_all(self, packets: list[bytes]) -> None:
        send = self._sock.send
        for packet in packets:
            try:
                send(packet)
            except OSError as exc:
                # A lost packet is what TCP retransmits; count it rather than stop the replay.
                if exc.errno not in (errno.ENOBUFS, errno.EAGAIN, errno.EPERM, errno.EHOSTUNREACH, errno.ENETUNREACH):
                    raise EnvironmentProblem(f"raw send failed: {exc.strerror or exc}") from None
                self.send_errors += 1
        self.sent += len(packets)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> RawSender:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
