"""32-bit TCP sequence arithmetic (RFC 1982 serial numbers) and unwrapping to stream offsets.

The translator keeps every position as an unbounded stream offset and converts to and from
32-bit wire sequence numbers only at the edges; `unwrap` is the one place where wraparound is
resolved, so nothing else compares raw sequence numbers.
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF
_HALF = 0x80000000


def seq_add(seq: int, n: int) -> int:
    """``seq + n`` modulo 2**32."""
    return (seq + n) & _MASK


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` in [-2**31, 2**31): positive when ``a`` is after ``b``."""
    return ((a - b + _HALF) & _MASK) - _HALF


def seq_lt(a: int, b: int) -> bool:
    return seq_diff(a, b) < 0


def seq_le(a: int, b: int) -> bool:
    return seq_diff(a, b) <= 0


def seq_gt(a: int, b: int) -> bool:
    return seq_diff(a, b) > 0


def seq_ge(a: int, b: int) -> bool:
    return seq_diff(a, b) >= 0


def unwrap(seq: int, base: int, near: int) -> int:
    """Stream offset of wire ``seq`` in a stream whose offset 0 is wire ``base``.

    ``near`` is an offset known to be within 2**31 of the answer (the current expected
    position); the result is the offset congruent to ``seq - base`` closest to it.
    """
    return near + ((seq - base - near + _HALF) & _MASK) - _HALF  # seq_diff(seq, base + near), inlined
