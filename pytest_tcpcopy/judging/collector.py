"""Fewer garbage collections while a replay is judged, and fewer objects in pytest's last ones.

The judge reads captured sessions again through the flow assembler, which keeps every live
session's streams (lists of ranges and chunks) for a while of capture time: thousands of
container objects that every full collection walks, and collections come every 700 allocations
by default. The judge's own garbage is freed by reference counting (it makes no cycles), so
collecting less often frees nothing later; it only stops walking the same live objects again and
again. ``fewer_collections`` raises the first generation's threshold for the duration of a
judged replay and puts the previous thresholds back after, also when it fails. ``FrozenTree``
keeps the collected test tree of a large capture out of pytest's last collections.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

FREEZE_FROM = 1_000  # capture items from which the collected tree is frozen (see FrozenTree)
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


class FrozenTree:
    """The collected test tree kept out of full collections for the rest of the session.

    pytest collects the cyclic garbage five times over as the session ends (its check for
    unraisable exceptions); each pass walks every live object, and a capture of thousands of
    exchange items keeps hundreds of thousands alive (items, their keywords and stashes, the
    capture's index), about a tenth of a second per pass. ``freeze`` moves everything alive at
    the end of collection into the interpreter's permanent generation (``gc.freeze``), which
    those passes skip; ``thaw`` (a cleanup registered when the session is configured, so that it
    runs after pytest's own) puts it back, where the next full collection finds it. Only what
    this freezes is thawed.
    """

    def __init__(self) -> None:
        self.frozen = False

    def freeze(self) -> None:
        gc.freeze()
        self.frozen = True

    def thaw(self) -> None:
        if self.frozen:
            self.frozen = False
            gc.unfreeze()
