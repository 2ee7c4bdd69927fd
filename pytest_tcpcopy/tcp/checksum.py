"""The Internet checksum (RFC 1071), computed as partial sums that combine: a payload's sum is
computed once and reused by every segment (and retransmission) that carries it.

A partial sum here is the ones'-complement sum of 16-bit words reduced modulo 0xFFFF (65536 is
1 modulo 0xFFFF, so a big-endian integer of an even-aligned byte string is congruent to the sum
of its words). Partial sums of even-aligned pieces add; `finish` turns a total into the
checksum field. For any non-zero data this equals the RFC 1071 result exactly (the folded sum
can only be 0xFFFF, never the negative zero 0, and both reduce to 0 here).
"""

from __future__ import annotations

_M = 0xFFFF


def partial_sum(data: bytes | memoryview) -> int:
    """Ones'-complement partial sum of ``data`` as if it started at an even offset."""
    if COMPILED:
        return sum_words(data if type(data) is bytes else bytes(data))
    n = int.from_bytes(data, "big")  # pure Python: one big-int conversion beats a loop
    if len(data) & 1:
        n <<= 8
    return n % _M


def sum_words(data: bytes) -> int:
    """``partial_sum`` by adding the 16-bit words, which the compiled module does in C (the
    big-int way costs thousands of instructions per request there); a test holds both to one
    result."""
    n = len(data)
    total = 0
    for i in range(0, n - 1, 2):
        total += (data[i] << 8) | data[i + 1]
    if n & 1:
        total += data[n - 1] << 8
    return total % _M


def finish(total: int) -> int:
    """The checksum field for data whose partial sums add up to ``total``."""
    return -total % _M


def internet_checksum(data: bytes | memoryview) -> int:
    """RFC 1071 checksum of ``data`` (non-empty)."""
    return finish(partial_sum(data))


def verify(data: bytes | memoryview) -> bool:
    """True when ``data``, checksum field included, sums to ones'-complement zero."""
    return partial_sum(data) == 0


COMPILED = not __file__.endswith(".py")
