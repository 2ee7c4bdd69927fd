"""The shape every backend has: SUTs started from specs, one replay into all of them at once,
typed results.

A backend (``DockerBackend``, ``NetnsBackend``) is a context manager around one run: everything
it starts goes when the ``with`` block ends. Inside, ``start_sut(spec)`` starts a SUT and waits
until it is ready (its intercept beside it); ``replay(capture, settings)`` replays the capture
into every SUT started so far, concurrently, one copier each, and returns one ``SutReplay`` per
SUT in start order. Progress reports and finished sessions reach the callbacks as the copiers
report them, from other threads, tagged with the SUT's name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..replay.contract import CopierSettings, Progress
from ..replay.results import ReplayResult, SessionResult

ProgressCallback = Callable[[str, Progress], None]  # (SUT name, report), about once a second
SessionCallback = Callable[[str, SessionResult], None]  # (SUT name, a finished session copy)

LOG_TAIL = 8000  # characters of a SUT's logs kept with a result


@dataclass(frozen=True, slots=True)
class SutSpec:
    """One system under test: its name in the run, what runs, where it listens, when it is ready.

    ``image`` is what the docker backend runs (``command`` then overrides the image's command);
    the netns backend runs ``command`` (argv) as root in a fresh namespace. ``environment`` holds
    ``KEY=VALUE`` entries. Ready means: accepts TCP connections on ``port`` (and, with
    ``http_path``, answers a GET of it below 400), checked the way the replay reaches it, within
    ``ready_timeout`` seconds. ``capture_responses``: the intercept reports the SUT's response
    bytes, not only their lengths (needed to compare responses).
    """

    name: str
    port: int
    image: str | None = None
    command: tuple[str, ...] = ()
    environment: tuple[str, ...] = ()
    ready_timeout: float = 30.0
    http_path: str | None = None
    capture_responses: bool = True
    cap_add: tuple[str, ...] = ()  # docker: capabilities given back (the SUT runs without NET_RAW)
    new_privileges: bool = False  # docker: allow set-uid gains (off: no-new-privileges)

    @property
    def program(self) -> str:
        """What runs, for messages: the image, else the command line."""
        return self.image or " ".join(self.command)


class Sut(Protocol):
    """A started SUT, as the runner and tests see it."""

    @property
    def name(self) -> str: ...

    @property
    def target(self) -> str:
        """``ADDR:PORT`` where the replay reaches it."""
        ...

    @property
    def alive(self) -> bool: ...

    def logs(self) -> str:
        """Its stdout and stderr so far (kept after the run ends)."""
        ...


@dataclass(slots=True)
class SutReplay:
    """One SUT's replay: the copier's result, and when the SUT died during it, how
    (``sut_exit``: its status and exit code) and its log tail (the first note of
    ``result.notes`` says so)."""

    sut: str
    result: ReplayResult
    sut_logs: str | None = None
    sut_exit: tuple[str, int | None] | None = None


class Backend(Protocol):
    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> None: ...

    @property
    def suts(self) -> Sequence[Sut]:
        """The SUTs started so far, in start order."""
        ...

    def start_sut(self, spec: SutSpec) -> Sut:
        """Start ``spec`` and return once it and its intercept are ready; SutError (with its
        logs) when it exits first or is not ready in time."""
        ...

    def replay(
        self,
        capture: str | os.PathLike,
        settings: CopierSettings,
        *,
        progress: ProgressCallback | None = None,
        on_session: SessionCallback | None = None,
        timeout: float | None = None,
        keep_sessions: bool = True,
    ) -> list[SutReplay]:
        """Replay ``capture`` into every started SUT at once; one result per SUT, in start order.
        ``timeout`` (default: the settings' ``max_duration`` plus a minute) bounds the wait.
        Without ``keep_sessions`` the results hold no sessions (``on_session`` had them; the
        totals are the copiers'), so a replay of any size costs no memory here."""
        ...


def replay_timeout(settings: CopierSettings, timeout: float | None) -> float:
    """How long to wait for copiers that were told to stop after ``settings.max_duration``."""
    return settings.max_duration + 60.0 if timeout is None else timeout


def died_note(sut: str, how: str) -> str:
    """The note a result gets when its SUT stopped during the replay."""
    return f"the SUT {sut!r} {how} during the replay"
