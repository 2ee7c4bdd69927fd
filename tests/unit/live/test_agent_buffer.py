"""The agent's bounded buffer and reconnect backoff."""

from __future__ import annotations

import pytest

from pytest_tcpcopy.live.buffer import Backoff, PacketBuffer


def records(start: int, n: int) -> list[tuple[int, bytes]]:
    return [(i, b"p%d" % i) for i in range(start, start + n)]


def test_full_buffer_drops_the_newest_and_counts_them():
    buffer = PacketBuffer(5)
    buffer.push(records(0, 3))
    buffer.push(records(3, 4))
    assert len(buffer) == 5 and buffer.dropped == 2
    buffer.push(records(7, 1))
    assert buffer.dropped == 3
    assert [ts for ts, _ in buffer.take(1 << 20)] == [0, 1, 2, 3, 4]
    assert len(buffer) == 0


def test_take_is_bounded_by_bytes_but_always_makes_progress():
    buffer = PacketBuffer(100)
    buffer.push([(0, b"x" * 500), (1, b"y" * 10), (2, b"z" * 10)])
    assert [ts for ts, _ in buffer.take(100)] == [0]
    assert [ts for ts, _ in buffer.take(15)] == [1]
    assert [ts for ts, _ in buffer.take(15)] == [2]
    assert buffer.take(15) == []


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        PacketBuffer(0)


def test_backoff_doubles_up_to_its_maximum_and_resets():
    backoff = Backoff(0.1, 0.5)
    assert [backoff.next_delay() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next_delay() == 0.1
