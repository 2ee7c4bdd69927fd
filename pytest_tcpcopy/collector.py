"""The garbage collector's settings for a hot loop (the copier's replay, the intercept's serving).

Both make short-lived objects by the thousand and no reference cycles on their hot paths: with
the default young-generation threshold (700) the collector runs every few hundred objects and
traverses the long-lived ones (modules, live sessions, routes) again and again. While the loop
runs, collections are made rare and what exists when it starts is frozen out of them.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def rare_collections(young_threshold: int, *, freeze_survivors: bool = False) -> Iterator[None]:
    """``young_threshold`` for the young generation and the present heap frozen, until the block
    ends; with ``freeze_survivors``, what survives each collection meanwhile is frozen too."""
    thresholds = gc.get_threshold()
    gc.set_threshold(young_threshold, *thresholds[1:])
    gc.freeze()
    if freeze_survivors:
        gc.callbacks.append(_freeze_survivors)
    try:
        yield
    finally:
        if freeze_survivors:
            gc.callbacks.remove(_freeze_survivors)
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def _freeze_survivors(phase: str, info: dict) -> None:
    """After a collection, move its survivors out of later ones: in the copier they are results
    and live sessions, which the hot path keeps free of reference cycles, so traversing them
    again in older generations finds nothing."""
    if phase == "stop":
        gc.freeze()
