"""The Python API behind the pytest plugin: replay a capture into the SUT and judge every exchange.

``TcpcopyRunner.replay()`` indexes the capture (``model.index_capture``: sessions, production's
exchanges, the sample and filter), starts the SUTs the baseline needs on the configured backend
(the candidate, and a side-by-side baseline release when there is one), replays the selected
sessions into all of them at once, and judges the candidate's exchanges against what the
baseline strategy (``baselines``) gives. Nothing here imports pytest.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .backends import open_backend
from .backends.base import ProgressCallback, SutReplay, SutSpec
from .baselines import BaselineStrategy, strategy_for
from .compare import DiffConfig, Exchange, IgnoreUsage, compare_sessions
from .docker.prepare import ImagePreparer
from .errors import UsageError
from .model import CaptureIndex, ReplayRun, index_capture
from .replay.contract import CopierSettings
from .replay.results import ReplayResult, SessionResult
from .sanity import SanityCounters, status_of
from .settings import Settings

if TYPE_CHECKING:
    from .live import PacketSource


def candidate_spec(settings: Settings) -> SutSpec:
    """The candidate SUT the settings describe, for their backend."""
    if settings.port is None:
        raise UsageError("no SUT port: set --tcpcopy-port / tcpcopy_port")
    common = {"ready_timeout": settings.ready_timeout, "http_path": settings.http_path,
              "cap_add": settings.sut_cap_add, "new_privileges": settings.sut_new_privileges}  # fmt: skip
    if settings.backend == "netns":
        if not settings.command:
            raise UsageError("the netns backend runs a SUT command: set --tcpcopy-command / tcpcopy_command")
        return SutSpec("candidate", settings.port, command=settings.command, **common)
    if not settings.image:
        raise UsageError("the docker backend runs a SUT image: set --tcpcopy-image / tcpcopy_image")
    return SutSpec("candidate", settings.port, image=settings.image, **common)


def copier_settings(settings: Settings, index: CaptureIndex | None = None) -> CopierSettings:
    """How the copier replays for these settings (of ``index``'s selected sessions, if given)."""
    return CopierSettings(
        speed=settings.speed,
        amplify=settings.amplify,
        capture_responses=True,
        sessions=None if index is None else index.selected,
        server_ports=settings.filter.ports,
    )


class TcpcopyRunner:
    """Replays captures into the configured SUT and judges them; reusable for several replays.

    ``label`` names who replays (a test's node id) on every run; ``on_run`` is told of every
    finished replay; ``progress(sut_name, report)`` gets the copiers' progress reports; ``log``
    gets what is worth telling; ``indexes`` is a cache of indexed captures to share with other
    runners; ``images`` makes the docker backend's images ready (built, checked present, pulled
    when allowed), once per reference: share one to build once per session.
    """

    def __init__(self, settings: Settings, *, diff: DiffConfig | None = None,
                 log: Callable[[str], None] = print, label: str | None = None,
                 on_run: Callable[[ReplayRun], None] | None = None, progress: ProgressCallback | None = None,
                 indexes: dict | None = None, images: ImagePreparer | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.label = label
        self._progress = progress
        self._on_run = on_run
        self.diff = diff or settings.diff_config()
        self.log = log
        self._indexes: dict = {} if indexes is None else indexes
        self.images = images or ImagePreparer(buildargs=settings.build_args, pull=settings.pull, log=log)

    def preflight(self, settings: Settings | None = None) -> list[SutSpec]:
        """Every SUT a replay with ``settings`` starts, checked before anything starts: a SUT is
        configured, the baseline fits the backend, each image is present locally (``build:``
        references built; missing ones pulled only when ``settings.pull``), each command's
        program exists. Images come back resolved to local tags. Raises UsageError (a build that
        fails: SutError) naming what is wrong."""
        settings = settings or self.settings
        suts = strategy_for(settings).suts(candidate_spec(settings))
        if settings.backend == "docker":
            return [replace(spec, image=self._image(spec)) for spec in suts]
        for spec in suts:
            program = spec.command[0] if spec.command else ""
            if not (shutil.which(program) or (os.sep in program and os.access(program, os.X_OK))):
                raise UsageError(f"SUT {spec.name}: {program!r} is not a program found on PATH "
                                 f"({shlex.join(spec.command)})")  # fmt: skip
        return suts

    def index(self, capture: str | Path, settings: Settings | None = None) -> CaptureIndex:
        """``capture`` indexed with ``settings`` (default: the runner's), once per sample and filter."""
        settings = settings or self.settings
        key = (Path(capture).resolve(), settings.sample, settings.filter)
        if key not in self._indexes:
            self._indexes[key] = index_capture(capture, settings)
        return self._indexes[key]

    def _image(self, spec: SutSpec) -> str | None:
        try:
            return None if spec.image is None else self.images.resolve(spec.image)
        except UsageError as exc:
            raise UsageError(f"SUT {spec.name}: {exc}") from None

    def replay(self, capture: str | Path | None = None, **overrides) -> ReplayRun:
        """Replay ``capture`` (default: the first configured one) and judge every selected exchange.

        ``overrides`` are settings for this replay only (as a ``tcpcopy`` marker gives them).
        """
        settings = self.settings.with_overrides(overrides, "replay() arguments", per_test=True)
        if capture is None:
            if not settings.pcap:
                raise UsageError("no capture to replay: give one, or set --tcpcopy-pcap / tcpcopy_pcap")
            capture = settings.pcap[0]
        index = self.index(capture, settings)
        strategy = strategy_for(settings)
        suts = self.preflight(settings)
        if not index.selected:
            return self._done(ReplayRun(index, settings, ReplayResult([], 0.0, ["no captured session selected"])),
                              strategy)  # fmt: skip
        with open_backend(settings.backend, keep=settings.keep, log=self.log) as backend:
            for spec in suts:
                backend.start_sut(spec)
            replays = backend.replay(index.path, copier_settings(settings, index), progress=self._progress)
        return self._done(_run_of(index, settings, replays), strategy)

    def replay_live(self, source_factory: Callable[[], PacketSource], recording: str | Path) -> ReplayRun:
        """Replay live traffic into the SUT as it arrives, recording it into ``recording`` at the
        same time, then judge the recording's exchanges against production's responses in it.

        ``source_factory()`` opens the source (``live.MirrorSource`` / ``live.LiveSource``); it is
        read for ``settings.duration`` seconds. Every session is replayed (the copier cannot know
        the sample and filter before the end); they select what is judged, as in ``replay``.
        Real time needs the netns backend and a single SUT: with the docker backend or a
        side-by-side baseline, the traffic is recorded first and then replayed (said in the log).
        """
        settings = self.settings
        recording = Path(recording)
        strategy = strategy_for(settings)
        suts = self.preflight(settings)
        if settings.backend != "netns" or len(suts) > 1:
            why = ("the docker backend" if settings.backend != "netns"
                   else f"a side-by-side baseline ({settings.baseline})")  # fmt: skip
            self.log(f"tcpcopy: with {why}, live traffic is recorded for {settings.duration:g} s and replayed after")
            _record(source_factory, recording, settings.duration)
            return self.replay(recording)
        from .live import record_to_pcap

        source = source_factory()  # open (agents may connect) while the SUT starts; its window runs from now
        try:
            with open_backend("netns", log=self.log) as backend:
                backend.start_sut(suts[0])
                replayed = backend.replay_stream(
                    lambda stream: record_to_pcap(source, recording, settings.duration, also=(stream,)),
                    replace(copier_settings(settings), speed=None),  # live traffic: arrival is the pace
                    progress=self._progress,
                )  # fmt: skip
        finally:
            source.close()
        return self._done(_run_of(index_capture(recording, settings), settings, [replayed]), strategy)

    def _done(self, run: ReplayRun, strategy: BaselineStrategy) -> ReplayRun:
        run.label = self.label
        usage = IgnoreUsage(self.diff)
        judge(run, strategy, self.diff, usage)
        for line in strategy.notes():
            self.log(f"tcpcopy: {line}")
        for path in usage.unused() if run.comparisons else ():
            self.log(f"tcpcopy: ignore path {path!r} matched nothing in {run.label or run.capture.path.name} "
                     "(mistyped? failures show the paths of what differs)")  # fmt: skip
        for line in strategy.finish(run):
            self.log(f"tcpcopy: {line}")
        if self._on_run is not None:
            self._on_run(run)
        return run


def _run_of(index: CaptureIndex, settings: Settings, replays: list[SutReplay]) -> ReplayRun:
    candidate, *baselines = replays
    return ReplayRun(index, settings, candidate.result, [b.result for b in baselines], candidate.sut_logs)


def judge(run: ReplayRun, strategy: BaselineStrategy, diff: DiffConfig, usage: IgnoreUsage | None = None) -> None:
    """Compare every replayed copy of every selected session with what ``strategy`` gives. An
    exchange's comparison is copy 0's unless another copy differs: then the first differing
    copy's, so a bug that shows only under load (amplify) fails its item too. ``usage`` learns
    which ignore paths matched something."""
    index = run.capture
    copies = _copies_by_session(run.candidate)
    baselines = [_first_copies(result) for result in run.baselines]
    for s in sorted(index.selected):
        if s not in copies:
            continue
        session = index.sessions[s]
        theirs = strategy.exchanges(session, index, baselines)
        if theirs is None:
            run.without_baseline.add(s)
            continue
        for result in copies[s]:
            mine = strategy.candidate(session, result)
            for comparison in compare_sessions(theirs.primary, mine, diff, theirs.secondary, usage=usage):
                key = (s, (comparison.baseline or comparison.candidate).number)
                if key[1] not in index.wanted[s]:
                    continue
                if comparison.failed:
                    run.differing_copies.setdefault(key, []).append(result.copy)
                if key not in run.comparisons or (comparison.failed and not run.comparisons[key].failed):
                    run.comparisons[key] = comparison


def _record(source_factory: Callable[[], PacketSource], recording: Path, duration: float) -> None:
    """Record what the source opened by ``source_factory`` produces into ``recording``, then close it."""
    from .live import record_to_pcap

    source = source_factory()
    try:
        record_to_pcap(source, recording, duration)
    finally:
        source.close()


def _copies_by_session(result: ReplayResult) -> dict[int, list[SessionResult]]:
    """Every copy's result, by captured session index, copy 0 first."""
    out: dict[int, list[SessionResult]] = {}
    for session in sorted(result.sessions, key=lambda r: (r.session, r.copy)):
        out.setdefault(session.session, []).append(session)
    return out


def _first_copies(result: ReplayResult) -> dict[int, SessionResult]:
    return {s.session: s for s in result.sessions if s.copy == 0}


def sanity_of(run: ReplayRun) -> SanityCounters:
    """The sanity counters of a judged run (``sanity``): per comparison, the candidate's, the
    baseline's and production's status, and the capture's server ports of the replayed sessions."""
    index = run.capture
    counters = SanityCounters(run.settings.port, (index.sessions[s].server.port for s in index.selected))
    production = {(e.session, e.number): e for s in index.selected for e in index.exchanges[s]}
    for key, comparison in run.comparisons.items():
        captured = production.get(key)
        counters.add(status_of(_response(comparison.candidate)), status_of(_response(comparison.baseline)),
                     status_of(_response(captured)))  # fmt: skip
    return counters


def _response(exchange: Exchange | None) -> object | None:
    return None if exchange is None else exchange.response
