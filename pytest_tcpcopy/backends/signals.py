"""Signals around a backend's lifetime: teardown that a Ctrl-C cannot cut short, and SIGTERM
turned into KeyboardInterrupt while a run is up (so ``with`` blocks clean up on ``kill``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

HELD = (signal.SIGINT, signal.SIGTERM)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def held_signals() -> Iterator[list[int]]:
    """Defer SIGINT and SIGTERM (in the main thread) until the block is done; yields the list of
    those that arrived meanwhile. The caller re-raises them (``raise_held``) once it has finished
    what must not be interrupted; elsewhere than the main thread nothing is held."""
    held: list[int] = []
    if not _in_main_thread():
        yield held
        return
    before = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in HELD}
    try:
        yield held
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def raise_held(held: list[int]) -> None:
    """Deliver the signals ``held_signals`` deferred, in order."""
    for signum in held:
        signal.raise_signal(signum)


def interrupt_on_sigterm(what: str) -> Callable[[], None]:
    """While a run is up: SIGTERM raises KeyboardInterrupt (in the main thread, unless someone
    else handles SIGTERM already). Returns the function that restores the previous handler."""
    if not _in_main_thread():
        return lambda: None
    before: Any = signal.getsignal(signal.SIGTERM)
    if before is not signal.SIG_DFL:
        return lambda: None

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt(f"SIGTERM while {what} was up")

    signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, before)
