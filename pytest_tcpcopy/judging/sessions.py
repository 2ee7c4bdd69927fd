"""The capture read again, lazily, for the captured sessions the judge needs as results arrive.

``CapturedSessions.take(index)`` returns captured session ``index`` (both streams, as
``flows.assemble_sessions`` makes them, the same sessions the copier replayed; without
``client_segments``, which the judge does not read) and forgets it.
The capture is read on only as far as needed: sessions it passes on the way are held until
they are taken, and sessions not selected are dropped at once. The copier replays sessions in
capture order and they end roughly in that order, so what is held is about the replay's own
reordering window (its concurrent sessions), not the capture. ``rest()`` hands out every
selected session not taken yet (those no result came for), reading the capture to its end.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterator
from pathlib import Path

from ..capture import open_capture
from ..flows.assembler import assemble_sessions
from ..flows.session import CapturedSession


class CapturedSessions:
    """Captured sessions of ``path`` on demand (see the module comment); ``selected`` says which
    sessions may be asked for. Use as a context manager, or call ``close``."""

    def __init__(self, path: str | Path, server_ports: Collection[int], selected: Container[int]) -> None:
        self._reader = open_capture(path)
        self._sessions = assemble_sessions(self._reader, server_ports, keep_segments=False, path=str(path))
        self._selected = selected
        self._held: dict[int, CapturedSession] = {}
        self._done = False
        self.peak_held = 0  # the most sessions held at once, for the benchmarks

    def __enter__(self) -> CapturedSessions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def held(self) -> int:
        """Sessions read and not taken yet."""
        return len(self._held)

    def take(self, index: int) -> CapturedSession | None:
        """Captured session ``index``, read on to it if need be; None when the capture does not
        hold it (or it was taken already)."""
        held = self._held.pop(index, None)
        if held is not None:
            return held
        for session in self._read():
            if session.index == index:
                return session
            self._hold(session)
        return None

    def rest(self) -> Iterator[CapturedSession]:
        """Every selected session not taken yet, in index order of those held, then as read."""
        for index in sorted(self._held):
            yield self._held.pop(index)
        yield from self._read()

    def close(self) -> None:
        self._sessions.close()
        self._reader.close()
        self._held.clear()

    def _read(self) -> Iterator[CapturedSession]:
        if self._done:
            return
        for session in self._sessions:
            if session.index in self._selected:
                yield session
        self._done = True

    def _hold(self, session: CapturedSession) -> None:
        self._held[session.index] = session
        self.peak_held = max(self.peak_held, len(self._held))
