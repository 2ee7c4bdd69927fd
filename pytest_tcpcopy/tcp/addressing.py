"""Where replayed clients appear to come from: captured client addresses remapped into a
replay network (198.18.0.0/15, the RFC 2544 benchmarking range, by default), and one distinct
client endpoint per amplified copy.

Scheme. The key (captured client address, copy number) is hashed (BLAKE2b, 8 bytes) to a slot
among the network's host addresses; when that slot already belongs to another key, the next
slots are probed in order until a free one is found. So:

- the same key always gets the same address within one replay (the map remembers it), and the
  same capture replayed again gets the same addresses (hashing and probing are deterministic
  and follow first-seen order);
- distinct keys never share an address: unlike tcpcopy's -c (a 16-bit hash into a few IPs) and
  -n (best-effort port shifts), a collision is impossible, and running out of addresses is a
  UsageError naming the fix;
- ports are kept, so two sessions of one copy of one client differ by port as they did in the
  capture, and copies differ by address: every (copy, captured client endpoint) pair maps to a
  distinct replay endpoint.
"""

from __future__ import annotations

import hashlib
import ipaddress

from pytest_tcpcopy.endpoint import Endpoint, new_endpoint
from pytest_tcpcopy.errors import UsageError

DEFAULT_CLIENT_NETWORK = "198.18.0.0/15"


class ClientAddressMap:
    """Deterministic, collision-free map of (captured address, copy) to a replay address."""

    def __init__(self, network: str = DEFAULT_CLIENT_NETWORK) -> None:
        try:
            net = ipaddress.ip_network(network)
        except ValueError as exc:
            raise UsageError(f"client network {network!r}: {exc}") from None
        # Host addresses only: leave out the network and broadcast addresses when there are any.
        reserved = 2 if net.num_addresses > 2 else 0
        if net.num_addresses - reserved < 1:
            raise UsageError(f"client network {network} has no usable host address")
        self.network = net
        self._first = int(net.network_address) + (1 if reserved else 0)
        self._size = net.num_addresses - reserved
        self._width = 4 if net.version == 4 else 16
        self._by_key: dict[tuple[bytes, int], bytes] = {}
        self._taken: set[int] = set()

    def __len__(self) -> int:
        return len(self._by_key)

    @property
    def capacity(self) -> int:
        return self._size

    def address(self, captured: bytes, copy: int = 0) -> bytes:
        """The replay address of copy ``copy`` of the client at ``captured``."""
        key = (captured, copy)
        found = self._by_key.get(key)
        if found is not None:
            return found
        if len(self._taken) >= self._size:
            raise UsageError(
                f"client network {self.network} is full: {self._size} distinct (client, copy) "
                "pairs already replay from it; give a larger client network or fewer copies"
            )
        digest = hashlib.blake2b(
            captured + copy.to_bytes(4, "big"), digest_size=8, person=b"tcpcopy-clients"
        ).digest()
        slot = int.from_bytes(digest, "big") % self._size
        while slot in self._taken:
            slot = (slot + 1) % self._size
        self._taken.add(slot)
        addr = (self._first + slot).to_bytes(self._width, "big")
        self._by_key[key] = addr
        return addr


class ClientAllocator:
    """Client endpoints for ``copies`` copies of every captured session, unique replay-wide."""

    def __init__(self, copies: int = 1, network: str = DEFAULT_CLIENT_NETWORK) -> None:
        if copies < 1:
            raise UsageError(f"copies={copies}: expected at least 1")
        self.copies = copies
        self.addresses = ClientAddressMap(network)

    def endpoint(self, captured: Endpoint, copy: int = 0) -> Endpoint:
        """The endpoint copy ``copy`` (0-based) of the session from ``captured`` replays from."""
        if not 0 <= copy < self.copies:
            raise UsageError(f"copy {copy} out of range: this replay makes {self.copies} copies")
        return new_endpoint((self.addresses.address(captured.addr, copy), captured.port))
