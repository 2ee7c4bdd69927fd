"""A transport endpoint (address bytes + port), shared by every layer.

Addresses are raw bytes (4 for IPv4, 16 for IPv6): cheap to hash and compare on the per-packet
path; text is produced only for people.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from typing import NamedTuple


def format_addr(addr: bytes) -> str:
    """Text form of a 4- or 16-byte address."""
    if len(addr) == 4:
        return socket.inet_ntop(socket.AF_INET, addr)
    return socket.inet_ntop(socket.AF_INET6, addr)


def parse_addr(text: str) -> bytes:
    """Address bytes from text; raises ValueError on bad input."""
    return ipaddress.ip_address(text.strip("[]")).packed


class Endpoint(NamedTuple):
    addr: bytes
    port: int

    @property
    def is_ipv6(self) -> bool:
        return len(self.addr) == 16

    @property
    def host(self) -> str:
        """The address as text, as sockets take it (no brackets)."""
        return format_addr(self.addr)

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if self.is_ipv6 else socket.AF_INET

    def __str__(self) -> str:
        host = format_addr(self.addr)
        return f"[{host}]:{self.port}" if self.is_ipv6 else f"{host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> "Endpoint":
        """Parse ``ip:port`` or ``[ipv6]:port``; raises ValueError with the offending text."""
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected IP:PORT, got {text!r}")
        try:
            return cls(parse_addr(host), int(port))
        except ValueError:
            raise ValueError(f"expected IP:PORT, got {text!r}") from None


# ``new_endpoint((addr, port))``: an Endpoint without NamedTuple.__new__'s Python-level frame, for
# the paths that make one per session (flow assembly, client mapping).
new_endpoint = functools.partial(tuple.__new__, Endpoint)


def open_listener(where: Endpoint, backlog: int) -> socket.socket:
    """A non-blocking TCP socket listening on ``where``; OSError (closed) when it cannot bind."""
    sock = socket.socket(where.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((where.host, where.port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
