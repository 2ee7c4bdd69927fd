"""Who owns a SUT segment: the route table keyed by the full 4-tuple, and the SYN/RST delay buffer.

Pure (no sockets, no clock): the server passes ``now``. A key is ``(client addr, client port,
target addr, target port)`` with raw address bytes; a SUT segment is looked up by its destination
(the replayed client) and its source (the target), so two copiers never alias each other, unlike
tcpcopy's 16-bit hashed keys. A SYN-ACK or RST may beat its REGISTER to the intercept (tcpcopy's
``tc_delay``): such segments are parked for ``delay_limit`` seconds and handed over on REGISTER.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from ..endpoint import Endpoint
from ..kernel.packet import RST, SYN

Key = tuple[bytes, int]  # (source and destination address bytes, source port << 16 | destination port)
Owner = TypeVar("Owner", bound=Hashable)


def pair_key(client: Endpoint, target: Endpoint) -> Key:
    """The route key of a copier's (client, target) pair: the SUT's reply goes target -> client,
    so the key is its IP source and destination addresses as they lie in the header (one slice
    of it), and both ports in one int, as ``kernel.segment_key`` reads them from a segment."""
    return (target.addr + client.addr, (target.port << 16) | client.port)


class RouteTable(Generic[Owner]):
    """Route key -> owner, the reverse index for disconnects, and the delay buffer."""

    def __init__(self, delay_limit: float = 2.0, delay_capacity: int = 65536) -> None:
        self.owners: dict[Key, Owner] = {}
        self._keys_of: dict[Owner, set[Key]] = {}
        self.delay_limit = delay_limit
        self.delay_capacity = delay_capacity
        self._parked: dict[Key, tuple[float, list[bytes]]] = {}
        self._parked_order: deque[tuple[float, Key]] = deque()
        self.parked_count = 0

    def register(self, key: Key, owner: Owner) -> list[bytes]:
        """Give ``key`` to ``owner`` (a later REGISTER wins); returns segments parked for it."""
        previous = self.owners.get(key)
        if previous is not None and previous != owner:
            self._keys_of[previous].discard(key)
        self.owners[key] = owner
        self._keys_of.setdefault(owner, set()).add(key)
        parked = self._parked.pop(key, None)
        if parked is None:
            return []
        self.parked_count -= len(parked[1])
        return parked[1]

    def unregister(self, key: Key, owner: Owner) -> None:
        """Forget ``key`` if ``owner`` holds it; another owner's registration is left alone."""
        if self.owners.get(key) == owner:
            del self.owners[key]
            self._keys_of[owner].discard(key)

    def drop_owner(self, owner: Owner) -> int:
        """Forget every key of a departed owner; returns how many there were."""
        keys = self._keys_of.pop(owner, set())
        for key in keys:
            del self.owners[key]
        return len(keys)

    def park(self, key: Key, segment: bytes, flags: int, now: float) -> bool:
        """Keep an unowned SYN-ACK or RST for a while; False when it is not kept (then drop it)."""
        if not flags & (SYN | RST) or self.parked_count >= self.delay_capacity:
            return False
        entry = self._parked.get(key)
        if entry is None:
            self._parked[key] = (now, [segment])
            self._parked_order.append((now, key))
        else:
            entry[1].append(segment)
        self.parked_count += 1
        return True

    def expire(self, now: float) -> int:
        """Drop parked segments older than ``delay_limit``; returns how many."""
        expired = 0
        order = self._parked_order
        while order and now - order[0][0] >= self.delay_limit:
            since, key = order.popleft()
            entry = self._parked.get(key)
            if entry is not None and entry[0] == since:
                del self._parked[key]
                expired += len(entry[1])
        self.parked_count -= expired
        return expired

    def next_expiry(self) -> float | None:
        return self._parked_order[0][0] + self.delay_limit if self._parked_order else None
