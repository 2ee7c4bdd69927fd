"""The Python API behind the pytest plugin: replay a capture into the SUT and judge every exchange.

``TcpcopyRunner.replay()`` indexes the capture (sessions, production's exchanges, the sample and
filter), starts the SUT and any side-by-side baseline on the configured backend, replays the
selected sessions into all of them concurrently, and pairs the candidate's exchanges with the
baseline's: production's own responses (``capture``), a baseline release replayed beside the
candidate (``image:`` / ``command:``, with an optional second instance for noise), or a recorded
baseline (``dir:``). Nothing here imports pytest.
"""

from __future__ import annotations

import concurrent.futures
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .capture import open_capture
from .commands.replay import format_session_list
from .compare import DiffConfig, Exchange, ExchangeComparison, compare_sessions
from .compare import exchanges_from_capture, exchanges_from_replay
from .errors import UsageError
from .flows.assembler import assemble_sessions
from .flows.session import CapturedSession
from .recorded import RecordedBaseline
from .settings import Settings

if TYPE_CHECKING:
    from .live import PacketSource
    from .load import LoadReport


@dataclass(slots=True)
class CaptureIndex:
    """A capture read once: its sessions, production's exchanges, and what the settings select."""

    path: Path
    sessions: dict[int, CapturedSession]
    exchanges: dict[int, list[Exchange]]  # production's exchanges, per session index
    selected: frozenset[int]  # session indexes to replay (sample and filter applied)
    wanted: dict[int, frozenset[int]]  # per selected session: exchange numbers the filter keeps

    def items(self) -> list[Exchange]:
        """The exchanges to judge, in capture order: one pytest item each."""
        return [e for s in sorted(self.selected) for e in self.exchanges[s] if e.number in self.wanted[s]]


def index_capture(path: str | Path, settings: Settings) -> CaptureIndex:
    """Read ``path`` whole (streams kept: this serves comparisons) and apply sample and filter."""
    path = Path(path)
    with open_capture(path) as reader:
        sessions = {s.index: s for s in assemble_sessions(reader, settings.filter.ports)}
    exchanges = {i: exchanges_from_capture(s) for i, s in sessions.items()}
    selected, wanted = set(), {}
    for index, session in sessions.items():
        if not _sampled(session, settings.sample):
            continue
        keep = frozenset(e.number for e in exchanges[index] if _matches(e, settings))
        if keep:
            selected.add(index)
            wanted[index] = keep
    return CaptureIndex(path, sessions, exchanges, frozenset(selected), wanted)


def _sampled(session: CapturedSession, percent: float) -> bool:
    """Stable per-session sampling: a hash of the captured client endpoint (as tcpcopy's -r)."""
    if percent >= 100:
        return True
    return zlib.crc32(str(session.client).encode()) % 10_000 < percent * 100


def _matches(exchange: Exchange, settings: Settings) -> bool:
    wanted = settings.filter
    request = exchange.request
    method = getattr(request, "method", None)
    if wanted.methods and method not in wanted.methods:
        return False
    if wanted.path is not None and not wanted.path.search(getattr(request, "target", "")):
        return False
    return True


@dataclass(slots=True)
class ReplayRun:
    """One replay of one capture: the copier documents and the judgement of every exchange."""

    capture: CaptureIndex
    settings: Settings
    candidate: dict
    baselines: list[dict] = field(default_factory=list)
    comparisons: dict[tuple[int, int], ExchangeComparison] = field(default_factory=dict)
    # (session, exchange) -> the amplify copies whose response differed from the baseline
    differing_copies: dict[tuple[int, int], list[int]] = field(default_factory=dict)

    @property
    def sessions(self) -> dict[int, dict]:
        """The candidate's per-session results (first copy), by captured session index."""
        return {s["session"]: s for s in self.candidate["sessions"] if s["copy"] == 0}

    def comparison(self, session: int, number: int) -> ExchangeComparison | None:
        return self.comparisons.get((session, number))

    @property
    def differences(self) -> list[ExchangeComparison]:
        return [c for c in self.comparisons.values() if c.failed]

    @property
    def noisy(self) -> list[ExchangeComparison]:
        return [c for c in self.comparisons.values() if c.noise is not None]

    @property
    def aborted(self) -> list[dict]:
        return [s for s in self.candidate["sessions"] if s["outcome"] != "complete"]

    @property
    def load(self) -> "LoadReport":
        """Load-test figures: offered and achieved rates, latency percentiles, errors."""
        from .load import LoadReport

        return LoadReport.from_run(self)

    def assert_slo(self, **limits) -> None:
        """Fail with a readable table unless the replay met the limits (``p99_ms=``, ``error_rate=``...)."""
        self.load.assert_slo(**limits)

    def stats(self) -> dict:
        return {
            "capture": str(self.capture.path),
            "sessions": len(self.capture.selected),
            "exchanges": len(self.comparisons),
            "differences": len(self.differences),
            "noise": len(self.noisy),
            "aborted": len(self.aborted),
            "totals": self.candidate["totals"],
        }

    def to_json(self) -> dict:
        return {
            "settings": self.settings.describe(),
            "stats": self.stats(),
            "comparisons": [c.to_json() for _, c in sorted(self.comparisons.items())],
            "aborted": self.aborted,
            "notes": self.candidate.get("notes", []),
            "sut_logs": self.candidate.get("sut_logs"),
        }


class TcpcopyRunner:
    """Replays captures into the configured SUT and judges them; reusable for several replays."""

    def __init__(self, settings: Settings, *, diff: DiffConfig | None = None,
                 log: Callable[[str], None] = print, context: Callable[[], dict] | None = None,
                 on_run: Callable[[ReplayRun], None] | None = None,
                 progress: Callable[[str, dict], None] | None = None) -> None:  # fmt: skip
        self.settings = settings
        self._progress = progress  # told (SUT name, copier progress report) about every second of a replay
        self._context = context  # per-call settings from outside (the running test's markers)
        self._on_run = on_run  # told of every finished replay (the plugin's reports)
        self.diff = diff or DiffConfig(ignore_paths=settings.ignore)
        self.log = log
        self._indexes: dict[Path, CaptureIndex] = {}

    def index(self, capture: str | Path) -> CaptureIndex:
        key = Path(capture).resolve()
        if key not in self._indexes:
            self._indexes[key] = index_capture(capture, self.settings)
        return self._indexes[key]

    def replay(self, capture: str | Path | None = None, **overrides) -> ReplayRun:
        """Replay ``capture`` (default: the first configured one) and judge every selected exchange.

        ``overrides`` are settings for this replay only (as a ``tcpcopy`` marker gives them).
        """
        settings = self.settings
        marked = self._context() if self._context else {}
        if marked:
            settings = settings.with_overrides(marked, "the test's markers")
        if overrides:
            settings = settings.with_overrides(overrides, "replay() arguments")
        if capture is None:
            if not settings.pcap:
                raise UsageError("no capture to replay: give one, or set --tcpcopy-pcap / tcpcopy_pcap")
            capture = settings.pcap[0]
        index = self.index(capture) if settings is self.settings else index_capture(capture, settings)
        if settings.port is None:
            raise UsageError("no SUT port: set --tcpcopy-port / tcpcopy_port")
        if not index.selected:
            empty = {"sessions": [], "totals": {"sessions": 0}, "notes": ["no captured session selected"]}
            return ReplayRun(index, settings, empty)
        copier_args = self._copier_args(settings, index)
        if settings.backend == "netns":
            docs = self._replay_netns(settings, index, copier_args)
        else:
            docs = self._replay_docker(settings, index, copier_args)
        run = ReplayRun(index, settings, docs[0], docs[1:])
        self._judge(run)
        if self._on_run is not None:
            self._on_run(run)
        return run

    def replay_live(self, source_factory: Callable[[], "PacketSource"], recording: str | Path) -> ReplayRun:
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
        if settings.port is None:
            raise UsageError("no SUT port: set --tcpcopy-port / tcpcopy_port")
        if settings.backend != "netns" or len(self._side_by_side(settings)) > 1:
            why = ("the docker backend" if settings.backend != "netns"
                   else f"a side-by-side baseline ({settings.baseline})")  # fmt: skip
            self.log(f"tcpcopy: with {why}, live traffic is recorded for {settings.duration:g} s and replayed after")
            _record(source_factory, recording, settings.duration)
            return self.replay(recording)
        if not settings.command:
            raise UsageError("the netns backend runs a SUT command: set --tcpcopy-command / tcpcopy_command")
        from .backends.netns import NetnsBackend
        from .live import record_to_pcap

        copier_args = ["--amplify", str(settings.amplify), *(f"--port={port}" for port in settings.filter.ports)]
        source = source_factory()  # open (agents may connect) while the SUT starts; its window runs from now
        try:
            with NetnsBackend(settings.command, settings.port, ready_timeout=settings.ready_timeout,
                              http_path=settings.http_path) as backend:  # fmt: skip
                candidate = backend.replay_stream(
                    lambda stream: record_to_pcap(source, recording, settings.duration, also=(stream,)),
                    *copier_args, progress=self._progress_of("candidate"),
                )  # fmt: skip
        finally:
            source.close()
        run = ReplayRun(self.index(recording), settings, candidate)
        self._judge(run)
        if self._on_run is not None:
            self._on_run(run)
        return run

    @staticmethod
    def _copier_args(settings: Settings, index: CaptureIndex) -> list[str]:
        args = ["--speed", "max" if settings.speed is None else repr(settings.speed),
                "--amplify", str(settings.amplify), "--sessions", format_session_list(index.selected) or "none"]  # fmt: skip
        for port in settings.filter.ports:
            args.append(f"--port={port}")
        return args

    def _side_by_side(self, settings: Settings) -> list[str]:
        """Names of the SUTs to run: the candidate, then baseline instances."""
        names = ["candidate"]
        if settings.baseline.kind in ("image", "command"):
            names.append("baseline")
            if settings.noise:
                names.append("baseline-2")
        return names

    def _replay_netns(self, settings: Settings, index: CaptureIndex, copier_args: list[str]) -> list[dict]:
        import shlex

        from .backends.netns import NetnsBackend

        if not settings.command:
            raise UsageError("the netns backend runs a SUT command: set --tcpcopy-command / tcpcopy_command")
        commands = [list(settings.command)]
        for _ in self._side_by_side(settings)[1:]:
            commands.append(shlex.split(settings.baseline.ref))
        backends = [NetnsBackend(cmd, settings.port, ready_timeout=settings.ready_timeout,
                                 http_path=settings.http_path) for cmd in commands]  # fmt: skip
        entered = []
        try:
            for backend in backends:
                entered.append(backend.__enter__())
            with concurrent.futures.ThreadPoolExecutor(len(entered)) as pool:
                names = self._side_by_side(settings)
                futures = [pool.submit(b.replay, index.path, *copier_args, progress=self._progress_of(name))
                           for b, name in zip(entered, names)]  # fmt: skip
                return [f.result() for f in futures]
        finally:
            for backend in reversed(entered):
                backend.__exit__(None, None, None)

    def _replay_docker(self, settings: Settings, index: CaptureIndex, copier_args: list[str]) -> list[dict]:
        from .backends.docker import DockerBackend

        if not settings.image:
            raise UsageError("the docker backend runs a SUT image: set --tcpcopy-image / tcpcopy_image")
        images = [settings.image] + [settings.baseline.ref] * (len(self._side_by_side(settings)) - 1)
        with DockerBackend(keep=settings.keep, log=self.log) as backend:
            suts = [backend.start_sut(image, settings.port, name=name, ready_timeout=settings.ready_timeout,
                                      http_path=settings.http_path)
                    for image, name in zip(images, self._side_by_side(settings))]  # fmt: skip
            return backend.replay(index.path, suts, *copier_args, progress=self._progress)

    def _progress_of(self, name: str) -> Callable[[dict], None] | None:
        """The progress callback of one SUT's copier, or None."""
        progress = self._progress
        return None if progress is None else lambda report: progress(name, report)

    def _judge(self, run: ReplayRun) -> None:
        """Compare every replayed copy of every selected session with the baseline. An exchange's
        comparison is copy 0's unless another copy differs: then the first differing copy's, so
        a bug that shows only under load (amplify) fails its item too."""
        settings, index = run.settings, run.capture
        copies = _copies_by_session(run.candidate)
        baselines = [_by_session(doc) for doc in run.baselines]
        recorded = RecordedBaseline(Path(settings.baseline.ref), index.path) if settings.baseline.kind == "dir" else None
        for s in sorted(index.selected):
            session = index.sessions[s]
            if s not in copies or settings.baseline.kind == "none":
                continue
            secondary = None
            if settings.baseline.kind == "capture":
                theirs = index.exchanges[s]
            elif settings.baseline.kind == "dir":
                assert recorded is not None
                stored = recorded.load(s)
                if stored is None:
                    continue  # nothing recorded for this session yet: --tcpcopy-update-baseline records it
                theirs = exchanges_from_replay(session, stored)
            else:
                theirs = exchanges_from_replay(session, baselines[0][s]) if s in baselines[0] else []
                if len(baselines) > 1 and s in baselines[1]:
                    secondary = exchanges_from_replay(session, baselines[1][s])
            for result in copies[s]:
                mine = exchanges_from_replay(session, result)
                for comparison in compare_sessions(theirs, mine, self.diff, secondary):
                    key = (s, (comparison.baseline or comparison.candidate).number)
                    if key[1] not in index.wanted[s]:
                        continue
                    if comparison.failed:
                        run.differing_copies.setdefault(key, []).append(result["copy"])
                    if key not in run.comparisons or (comparison.failed and not run.comparisons[key].failed):
                        run.comparisons[key] = comparison
        if recorded is not None and settings.update_baseline:
            recorded.update(_by_session(run.candidate), index)


def _record(source_factory: Callable[[], "PacketSource"], recording: Path, duration: float, *also) -> None:
    """Record what the source opened by ``source_factory`` produces into ``recording`` (and to the
    streams ``also``), then close it."""
    from .live import record_to_pcap

    source = source_factory()
    try:
        record_to_pcap(source, recording, duration, also=also)
    finally:
        source.close()


def _copies_by_session(doc: dict) -> dict[int, list[dict]]:
    """Every copy's result, by captured session index, copy 0 first."""
    out: dict[int, list[dict]] = {}
    for result in sorted(doc["sessions"], key=lambda r: (r["session"], r["copy"])):
        out.setdefault(result["session"], []).append(result)
    return out


def _by_session(doc: dict) -> dict[int, dict]:
    return {s["session"]: s for s in doc["sessions"] if s["copy"] == 0}

