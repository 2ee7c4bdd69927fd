"""Fewer garbage collections while a replay is judged.

The judge reads captured sessions again through the flow assembler, which keeps every live
session's streams (lists of ranges and chunks) for a while of capture time: thousands of
container objects that every full collection walks, and collections come every 700 allocations
by default. The judge's own garbage is freed by reference counting (it makes no cycles), so
collecting less often frees nothing later; it only stops walking the same live objects again and
again. ``fewer_collections`` raises the first generation's threshold for the duration of a
judged replay and puts the previous thresholds back after, also when it fails.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

JUDGING_THRESHOLD = 200_000  # allocations between young collections while judging (CPython's default: 700)


@contextmanager
def fewer_collections(threshold: int = JUDGING_THRESHOLD) -> Iterator[None]:
    """Collect young objects every ``threshold`` allocations inside the block (see the module comment)."""
    before = gc.get_threshold()
    gc.set_threshold(max(threshold, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
