"""When each captured packet is due in the replay: capture time mapped onto replay time.

The first packet is due at the replay's start; every later one at
``start + (ts - ts0) / speed``; with ``speed=None`` everything is due at once (as fast as the
SUT and the request gate allow). ``max_gap`` (tcpcopy's -I) skips idle stretches: a silence in
the capture longer than it is shortened to it. Sans-IO: the caller passes ``now`` once, to
anchor the start, and compares due times with its own clock.
"""

from __future__ import annotations

from pytest_tcpcopy.errors import UsageError


class CapturePacer:
    def __init__(self, speed: float | None, *, max_gap: float | None = None) -> None:
        if speed is not None and not speed > 0:
            raise UsageError(f"replay speed {speed}: expected a factor > 0, or None for no pacing")
        if max_gap is not None and not max_gap > 0:
            raise UsageError(f"max_gap {max_gap}: expected seconds > 0, or None")
        self.speed = speed
        self.max_gap = max_gap
        self._start: float | None = None
        self._ts0 = 0.0
        self._last_ts = 0.0
        self._skipped = 0.0

    def due(self, ts: float, now: float) -> float:
        """Replay time at which the packet captured at ``ts`` is due; the first call anchors
        the capture's first timestamp to ``now``. Call in capture order."""
        if self._start is None:
            self._start, self._ts0, self._last_ts = now, ts, ts
            return now
        if self.speed is None:
            return self._start
        if self.max_gap is not None and ts - self._last_ts > self.max_gap:
            self._skipped += ts - self._last_ts - self.max_gap
        self._last_ts = max(self._last_ts, ts)
        return self._start + max(ts - self._ts0 - self._skipped, 0.0) / self.speed
