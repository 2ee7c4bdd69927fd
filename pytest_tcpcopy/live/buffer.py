"""The mirror agent's pure parts: its bounded packet buffer and its reconnect backoff.

The buffer holds captured packets not yet sent to the runner, at most ``capacity`` of them. When
it is full (the runner is slow or away) newly captured packets are dropped and counted: the packets
already waiting keep their order, and the sessions they begin keep their beginnings.
"""

from __future__ import annotations

from collections import deque


class PacketBuffer:
    """FIFO of (timestamp ns, IP bytes) with tail drop; ``dropped`` counts what did not fit."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be at least 1 packet, got {capacity}")
        self.capacity = capacity
        self.dropped = 0
        self._queue: deque[tuple[int, bytes]] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, records: list[tuple[int, bytes]]) -> None:
        room = self.capacity - len(self._queue)
        if len(records) > room:
            self.dropped += len(records) - max(room, 0)
            records = records[: max(room, 0)]
        self._queue.extend(records)

    def take(self, max_bytes: int) -> list[tuple[int, bytes]]:
        """The oldest packets, at least one (if any) and at most about ``max_bytes`` of them."""
        queue = self._queue
        out: list[tuple[int, bytes]] = []
        size = 0
        while queue and (not out or size + len(queue[0][1]) <= max_bytes):
            record = queue.popleft()
            out.append(record)
            size += len(record[1])
        return out


class Backoff:
    """Delays between reconnect attempts: ``initial`` seconds, doubling up to ``maximum``."""

    def __init__(self, initial: float = 0.1, maximum: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial
