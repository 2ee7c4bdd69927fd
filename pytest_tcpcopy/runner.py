"""The Python API behind the pytest plugin: replay a capture into the SUT and judge every exchange.

``TcpcopyRunner.replay()`` indexes the capture (``model.index_capture``: one streaming pass, no
stream bytes kept), starts the SUTs the baseline needs on the configured backend (the candidate,
and a side-by-side baseline release when there is one), replays the selected sessions into all
of them at once, and judges each session as the copiers report it (``judging.stream``), so that
memory holds verdict counts, findings and bounded examples, never the whole replay. Nothing here
imports pytest.

The copier's bound on concurrent sessions is ``--tcpcopy-max-sessions``, by default the
capture's own peak of concurrent sessions times ``amplify``, at least ``MIN_MAX_SESSIONS``:
``--speed max`` then replays as fast as the SUT takes it, without opening far more connections
at once than production did.
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .backends import open_backend
from .backends.base import LOG_TAIL, ProgressCallback, Sut, SutReplay, SutSpec
from .backends.docker.prepare import ImagePreparer
from .baselines import BaselineStrategy, strategy_for
from .compare import DiffConfig, IgnoreUsage
from .errors import UsageError
from .judging.collector import fewer_collections
from .judging.problems import SutDeath
from .judging.stream import StreamingJudge
from .judging.verdicts import RunVerdicts
from .load.samples import LoadSamples
from .model import CaptureIndex, ReplayRun, index_capture
from .replay.contract import CopierSettings
from .replay.results import ReplayResult, SessionCounts
from .sanity import SanityCounters
from .settings import Settings

if TYPE_CHECKING:
    from .live import PacketSource

MIN_MAX_SESSIONS = 32  # the least default bound on concurrent sessions, whatever the capture's peak
_PROBE_INTERVAL = 0.01  # seconds between looks at whether a SUT still runs


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


def max_sessions(settings: Settings, index: CaptureIndex | None) -> int:
    """The bound on concurrent sessions: the setting, else the capture's peak of concurrent
    sessions times amplify, at least ``MIN_MAX_SESSIONS`` (the copier's own default without a
    capture to measure)."""
    if settings.max_sessions is not None:
        return settings.max_sessions
    if index is None:
        return CopierSettings().max_sessions
    return max(MIN_MAX_SESSIONS, index.peak_concurrency * settings.amplify)


def copier_settings(settings: Settings, index: CaptureIndex | None = None) -> CopierSettings:
    """How the copier replays for these settings (of ``index``'s selected sessions, if given)."""
    return CopierSettings(
        speed=settings.speed,
        amplify=settings.amplify,
        max_sessions=max_sessions(settings, index),
        capture_responses=True,
        response_timeout=settings.response_timeout,
        sessions=None if index is None or index.everything else frozenset(index.selected),
        server_ports=settings.filter.ports,
    )


class TcpcopyRunner:
    """Replays captures into the configured SUT and judges them; reusable for several replays.

    ``label`` names who replays (a test's node id) on every run; ``on_run`` is told of every
    finished replay; ``progress(sut_name, report)`` gets the copiers' progress reports; ``log``
    gets what is worth telling; ``indexes`` is a cache of indexed captures to share with other
    runners. What a run keeps (``judging.verdicts``): ``item_verdicts``, a compact verdict per
    exchange item; ``full_output``, every failing exchange's diff with it; ``load_figures``, the
    request samples of ``load.LoadReport`` (always gathered when amplified); ``keep_sessions``,
    every copier result (``run.candidate.sessions``; memory then grows with the capture).
    ``images`` makes the docker backend's images ready (built, checked present, pulled when
    allowed), once per reference: share one to build once per pytest run.
    """

    def __init__(self, settings: Settings, *, diff: DiffConfig | None = None,
                 log: Callable[[str], None] = print, label: str | None = None,
                 on_run: Callable[[ReplayRun], None] | None = None, progress: ProgressCallback | None = None,
                 indexes: dict | None = None, item_verdicts: bool = False, full_output: bool = False,
                 load_figures: bool = True, keep_sessions: bool = False,
                 images: ImagePreparer | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.label = label
        self._progress = progress
        self._on_run = on_run
        self.diff = diff or settings.diff_config()
        self.log = log
        self._indexes: dict = {} if indexes is None else indexes
        self.item_verdicts = item_verdicts
        self.full_output = full_output
        self.load_figures = load_figures
        self.keep_sessions = keep_sessions
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

    def _image(self, spec: SutSpec) -> str | None:
        try:
            return None if spec.image is None else self.images.resolve(spec.image)
        except UsageError as exc:
            raise UsageError(f"SUT {spec.name}: {exc}") from None

    def index(self, capture: str | Path, settings: Settings | None = None) -> CaptureIndex:
        """``capture`` indexed with ``settings`` (default: the runner's), once per sample, filter
        and item kind (exchange items keep one reference per exchange)."""
        settings = settings or self.settings
        refs = settings.items == "exchange"
        key = (Path(capture).resolve(), settings.sample, settings.filter, refs)
        if key not in self._indexes:
            self._indexes[key] = index_capture(capture, settings, self.diff.redaction, refs=refs)
        return self._indexes[key]

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
        run = self._new_run(index, settings)
        if not index.selected:
            run.candidate.notes.append("no captured session selected")
            return self._done(run, strategy)
        judge = StreamingJudge(run, strategy, self.diff, [spec.name for spec in suts], load=run.load,
                               usage=run.usage)  # fmt: skip
        try:
            with open_backend(settings.backend, keep=settings.keep, log=self.log) as backend:
                for spec in suts:
                    backend.start_sut(spec)
                judge.set_death_probe(death_probe(backend.suts))
                with fewer_collections():
                    replays = backend.replay(index.path, copier_settings(settings, index), progress=self._progress,
                                             on_session=judge.on_session, keep_sessions=self.keep_sessions)  # fmt: skip
                    judge.finish(stopped=replays[0].result.stopped)  # while the SUTs are still there to ask
        finally:
            judge.close()
        run.judging = judge.figures()
        _take_results(run, replays)
        return self._done(run, strategy)

    def replay_live(self, source_factory: Callable[[], PacketSource], recording: str | Path) -> ReplayRun:
        """Replay live traffic into the SUT as it arrives, recording it into ``recording`` at the
        same time, then judge the recording's exchanges against production's responses in it.

        ``source_factory()`` opens the source (``live.MirrorSource`` / ``live.LiveSource``); it is
        read for ``settings.duration`` seconds. Every session is replayed (the copier cannot know
        the sample and filter before the end); they select what is judged, as in ``replay``.
        Real time needs the netns backend and a single SUT: with the docker backend or a
        side-by-side baseline, the traffic is recorded first and then replayed (said in the log).
        The copier's results are held until the window closes (the recording is judged after).
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
        run = self._new_run(index_capture(recording, settings, self.diff.redaction), settings)
        judge = StreamingJudge(run, strategy, self.diff, [suts[0].name], load=run.load, usage=run.usage)
        with fewer_collections():
            for result in replayed.result.sessions:
                judge.on_session(suts[0].name, result)
            judge.finish(stopped=replayed.result.stopped)
        run.judging = judge.figures()
        if not self.keep_sessions:
            replayed.result = replace(replayed.result, sessions=[], reported=SessionCounts.of(replayed.result.sessions))
        _take_results(run, [replayed])
        return self._done(run, strategy)

    def _new_run(self, index: CaptureIndex, settings: Settings) -> ReplayRun:
        verdicts = RunVerdicts(self.diff.redaction, per_exchange=self.item_verdicts, full=self.full_output)
        load = LoadSamples() if self.load_figures or settings.amplify > 1 else None
        sanity = SanityCounters(settings.port, index.server_ports)
        return ReplayRun(index, settings, ReplayResult([], 0.0), verdicts=verdicts, load=load, label=self.label,
                         sanity=sanity, usage=IgnoreUsage(self.diff))  # fmt: skip

    def _done(self, run: ReplayRun, strategy: BaselineStrategy) -> ReplayRun:
        for line in strategy.notes():
            self.log(f"tcpcopy: {line}")
        if run.verdicts.total:
            for path in run.usage.unused():
                self.log(f"tcpcopy: ignore path {path!r} matched nothing in {run.label or run.capture.path.name} "
                         "(mistyped? failures show the paths of what differs)")  # fmt: skip
        for line in strategy.finish(run):
            self.log(f"tcpcopy: {line}")
        if self._on_run is not None:
            self._on_run(run)
        return run


def _take_results(run: ReplayRun, replays: list[SutReplay]) -> None:
    candidate, *baselines = replays
    run.candidate = candidate.result
    run.baselines = [b.result for b in baselines]
    run.sut_logs = candidate.sut_logs


def death_probe(suts: Sequence[Sut]) -> Callable[[str], SutDeath | None]:
    """Whether a started SUT (by name) died, and its log tail; asked at most every
    ``_PROBE_INTERVAL`` seconds per SUT while it runs (a docker SUT is asked over its API)."""
    by_name = {sut.name: sut for sut in suts}
    asked: dict[str, float] = {}

    def probe(name: str) -> SutDeath | None:
        sut = by_name.get(name)
        now = time.monotonic()
        if sut is None or now - asked.get(name, -_PROBE_INTERVAL) < _PROBE_INTERVAL:
            return None
        asked[name] = now
        if sut.alive:
            return None
        return SutDeath(f"the SUT {name!r} stopped during the replay", sut.logs()[-LOG_TAIL:])

    return probe


def _record(source_factory: Callable[[], PacketSource], recording: Path, duration: float) -> None:
    """Record what the source opened by ``source_factory`` produces into ``recording``, then close it."""
    from .live import record_to_pcap

    source = source_factory()
    try:
        record_to_pcap(source, recording, duration)
    finally:
        source.close()
