"""Waiting until something is ready: one loop for SUTs, intercepts and probes alike.

A probe answers ``None`` when the thing is ready, or why it is not yet; it raises when waiting is
pointless (the process exited). Time runs out with ``timed_out(last_reason)``'s exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until_ready(
    probe: Callable[[], str | None],
    *,
    timeout: float,
    timed_out: Callable[[str], BaseException],
    interval: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Call ``probe`` until it returns None, at least once and then every ``interval`` seconds
    for ``timeout`` seconds; then raise ``timed_out(reason)`` with its last reason."""
    deadline = clock() + timeout
    while True:
        reason = probe()
        if reason is None:
            return
        if clock() >= deadline:
            raise timed_out(reason)
        sleep(interval)
