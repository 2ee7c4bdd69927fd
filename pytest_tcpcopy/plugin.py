"""pytest glue: maps options, markers and fixtures onto the library. Nothing else imports pytest.

Settings (``pytest_tcpcopy.settings``) come from, highest first, a ``tcpcopy(...)`` marker, the
command line, the ini file, the defaults. Traffic becomes test items at collection time, without
replaying anything:

- a capture file is a test file: ``CaptureFile`` collects one ``ExchangeItem`` per captured
  exchange (``traffic.pcap.gz::s0042-GET /api/users``). The capture is replayed once, when its
  first item runs; each item then asserts its own exchange's comparison.
- which captures are collected: those given as paths (``pytest online.pcap``); and, when pytest
  runs without paths (from ``testpaths`` or the current directory), the captures named by
  ``--tcpcopy-pcap`` / ``tcpcopy_pcap`` when a SUT is configured. Paths on the command line
  replace that default, as they replace ``testpaths``: ``pytest tests/test_load.py`` runs those
  tests only (``--tcpcopy-pcap`` still feeds the ``tcpcopy`` fixture).
- live traffic (``--tcpcopy-live``, ``--tcpcopy-mirror-listen``) has no exchanges before it is
  taken: when pytest runs without paths, each source is one ``LiveTrafficItem``
  (``tcpcopy:live:eth0``) that, when it runs, replays the traffic as it arrives for
  ``--tcpcopy-duration`` seconds and fails with the exchanges that differ.

xdist policy: exchange items carry ``xdist_group(<capture>)``, so with ``--dist loadgroup`` all
items of one capture run on one worker and the capture is replayed once. Under other ``--dist``
modes each worker replays the captures its items need: correct, but repeated work.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .errors import TcpcopyError
from .progress_line import ReplayProgressLine
from .sanity import sanity_lines
from .settings import SETTINGS, Baseline, Kind, Sanity, Settings

if TYPE_CHECKING:  # the runner pulls in deepdiff: imported on first use, not with pytest
    from .compare import ExchangeComparison
    from .model import ReplayRun
    from .replay.results import SessionResult
    from .runner import TcpcopyRunner

STATE_KEY = pytest.StashKey["TcpcopyState"]()
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")


def is_capture_file(path: Path) -> bool:
    """True for the file names captures have: .pcap, .pcapng, .cap, each optionally gzipped."""
    name = path.name.lower().removesuffix(".gz")
    return name.endswith(CAPTURE_SUFFIXES)


# -- settings ----------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tcpcopy", "replay captured production traffic (pytest-tcpcopy)")
    for spec in SETTINGS:
        if spec.kind is Kind.FLAG:
            group.addoption(spec.option, action="store_const", const=True, default=None, help=spec.help)
        elif spec.kind is Kind.LIST:
            group.addoption(spec.option, action="append", default=None, metavar=spec.metavar,
                            help=spec.help + " (repeatable)")  # fmt: skip
        else:
            group.addoption(spec.option, default=None, metavar=spec.metavar, help=spec.help)
        parser.addini(spec.ini, spec.help, type="linelist" if spec.kind is Kind.LIST else "string")


def resolve_settings(config: pytest.Config) -> Settings:
    """Defaults < ini < command line; each bad value names where it came from. The ini file's
    paths to project files (captures, ``dir:`` baselines, ``build:`` contexts) start at the
    rootdir; the command line's at the working directory."""
    settings = Settings()
    for spec in SETTINGS:
        ini = config.getini(spec.ini)
        if ini not in ("", [], None):
            settings = settings.with_overrides({spec.name: ini}, f"ini option {spec.ini}").anchored(config.rootpath)
    for spec in SETTINGS:
        value = config.getoption(spec.option)
        if value is not None:
            settings = settings.with_overrides({spec.name: value}, f"command-line option {spec.option}")
    return settings


def marker_overrides(node: pytest.Item) -> dict:
    """Settings from a test's ``tcpcopy(...)`` and ``amplify(n)`` markers (closest wins)."""
    overrides: dict = {}
    for marker in reversed(list(node.iter_markers("tcpcopy"))):
        if marker.args:
            raise pytest.UsageError(f"{node.nodeid}: tcpcopy(...) takes keyword settings only, got {marker.args!r}")
        overrides.update(marker.kwargs)
    amplify = node.get_closest_marker("amplify")
    if amplify is not None:
        (n,) = amplify.args if len(amplify.args) == 1 and not amplify.kwargs else (None,)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise pytest.UsageError(f"{node.nodeid}: amplify(n) takes one positive integer, got {amplify.args!r}")
        overrides["amplify"] = n
    return overrides


def settings_of(node: pytest.Item, settings: Settings) -> Settings:
    """``settings`` with the test's markers applied; a bad marker is a usage error naming the test."""
    try:
        return settings.with_overrides(marker_overrides(node), f"marker on {node.nodeid}", per_test=True)
    except TcpcopyError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tcpcopy(**settings): per-test pytest-tcpcopy settings (speed=, sample=, filter=, baseline=, ...), "
        "overriding the command line and ini file",
    )
    config.addinivalue_line(
        "markers", "amplify(n): replay every captured session n times concurrently, as a load test"
    )
    try:
        settings = resolve_settings(config)
    except TcpcopyError as exc:
        raise pytest.UsageError(str(exc)) from None
    state = TcpcopyState(settings)
    if config.args_source is not pytest.Config.ArgsSource.ARGS and settings.configured:
        config.args.extend(str(path) for path in settings.pcap)  # the default traffic, as testpaths
        state.live_sources = settings.live_sources
    state.traffic_paths = {_path_of(arg, config) for arg in config.args if is_capture_file(_path_of(arg, config))}
    config.stash[STATE_KEY] = state


def _path_of(arg: str, config: pytest.Config) -> Path:
    return (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()


def pytest_report_header(config: pytest.Config) -> str | None:
    settings = config.stash[STATE_KEY].settings
    if not (settings.pcap or settings.image or settings.command or settings.live_sources):
        return None
    return settings.describe()


# -- state -------------------------------------------------------------------------------------


class TcpcopyState:
    """Plugin state for one pytest run: settings, indexed captures, and the replays done so far."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.traffic_paths: set[Path] = set()  # capture files to collect as test files
        self.live_sources: tuple[str, ...] = ()  # live sources to collect as items
        self.indexes: dict = {}  # captures indexed so far (shared by every runner)
        self.runs: list[ReplayRun] = []  # every replay, in the order they finished
        self.replays: dict[str, ReplayRun | str] = {}  # by collector node id: a replay, or why it failed
        self.scratch: list[Path] = []  # recordings of live traffic, removed at the end unless kept
        self.progress: ReplayProgressLine | None = None  # set when the terminal is a tty
        self.notes: list[str] = []  # what runners said, repeated in the summary
        self.report_paths: list[Path] = []  # the reports written
        self.sanity: list = []  # (replay name, sanity.SanityProblem) of every replay, once the session ends
        self.images = None  # docker.prepare.ImagePreparer: every image built or checked once per run
        self.say = self._note  # where image builds report (the terminal, once the session starts)

    def runner(self, settings: Settings | None = None, label: str | None = None) -> TcpcopyRunner:
        from .runner import TcpcopyRunner

        if self.images is None:
            from .docker.prepare import ImagePreparer

            self.images = ImagePreparer(buildargs=self.settings.build_args, pull=self.settings.pull,
                                        log=lambda line: self.say(f"tcpcopy: {line}"))  # fmt: skip
        return TcpcopyRunner(settings or self.settings, label=label, on_run=self.runs.append, log=self._note,
                             progress=self.progress, indexes=self.indexes, images=self.images)  # fmt: skip

    def _note(self, line: str) -> None:
        self.notes.append(line.removeprefix("tcpcopy: "))

    def replay_once(self, nodeid: str, replay) -> ReplayRun:
        """``replay()``'s run, made once per collector ``nodeid`` (its first item), then reused;
        when it failed, every item of that collector fails with the same message."""
        if nodeid not in self.replays:
            try:
                self.replays[nodeid] = replay()
            except TcpcopyError as exc:
                self.replays[nodeid] = f"replay of {nodeid} failed: {exc}"
        found = self.replays[nodeid]
        if isinstance(found, str):
            raise TcpcopyReplayError(found)
        return found


class TcpcopyReplayError(Exception):
    """The replay an item depends on could not run; every item of that traffic fails with it."""


# -- collection --------------------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    state = parent.config.stash[STATE_KEY]
    if file_path.resolve() not in state.traffic_paths:
        return None
    rootpath = parent.config.rootpath
    # A capture outside the rootdir is named by its path (pytest would give it an empty node id).
    nodeid = None if file_path.is_relative_to(rootpath) else str(file_path)
    return CaptureFile.from_parent(parent, path=file_path, **({"nodeid": nodeid} if nodeid else {}))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Live traffic, one item per source, ahead of the rest (before ``-k`` and ``-m`` select)."""
    live = [LiveTrafficItem.from_parent(session, name=f"tcpcopy:{source}", nodeid=f"tcpcopy:{source}", source=source)
            for source in config.stash[STATE_KEY].live_sources]  # fmt: skip
    items[:0] = live


class CollectionProblem(Exception):
    """Why a capture could not be collected (shown as the collection error, without a traceback)."""


class CaptureFile(pytest.File):
    """The exchanges of one capture, as test items; reading the capture replays nothing."""

    def collect(self):
        state = self.config.stash[STATE_KEY]
        settings = state.settings
        if not settings.configured:
            raise CollectionProblem(
                f"{self.path.name}: no SUT to replay it into: set --tcpcopy-image (docker backend) or "
                "--tcpcopy-command (netns backend), and --tcpcopy-port"
            )
        try:
            index = state.runner().index(self.path)
        except TcpcopyError as exc:
            raise CollectionProblem(str(exc)) from None
        seen: dict[str, int] = {}
        xdist = self.config.pluginmanager.hasplugin("xdist")
        for exchange in index.items():
            name = exchange.id
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name} [{seen[name]}]"  # the same request again in one session
            item = ExchangeItem.from_parent(self, name=name, session_index=exchange.session, number=exchange.number)
            if xdist:
                item.add_marker(pytest.mark.xdist_group(self.path.name))
            yield item

    def repr_failure(self, excinfo):
        if excinfo.errisinstance(CollectionProblem):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def run(self) -> ReplayRun:
        """This capture's replay: made by the first item that needs it."""
        state = self.config.stash[STATE_KEY]
        return state.replay_once(self.nodeid, lambda: state.runner(label=self.nodeid).replay(self.path))


class ExchangeMismatch(Exception):
    """An exchange of the candidate differs from the baseline, or has no response to compare."""

    def __init__(self, comparison: ExchangeComparison | None, message: str, session: SessionResult | None,
                 sut_logs: str | None, copies: list[int] | tuple = (), amplify: int = 1) -> None:  # fmt: skip
        super().__init__(message)
        self.comparison = comparison
        self.message = message
        self.session = session
        self.sut_logs = sut_logs
        self.copies = copies  # the amplify copies that differed (empty when not amplified)
        self.amplify = amplify


class ExchangeItem(pytest.Item):
    """One captured exchange, judged from its capture's replay."""

    def __init__(self, *, session_index: int, number: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.session_index, self.number = session_index, number  # captured session, exchange number in it

    def runtest(self) -> None:
        assert isinstance(self.parent, CaptureFile)
        check_exchange(self.parent.run(), self.session_index, self.number, self.name)

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance(ExchangeMismatch):
            return render_mismatch(excinfo.value)
        if excinfo.errisinstance(TcpcopyReplayError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, ""


def check_exchange(run: ReplayRun, session: int, number: int, name: str) -> None:
    """Pass, skip or fail as ``run`` judged exchange ``number`` of ``session``."""
    from .baselines import Unjudged, strategy_for
    from .compare import ComparisonStatus

    comparison = run.comparison(session, number)
    result = run.sessions.get(session)
    if comparison is None:
        verdict = strategy_for(run.settings).unjudged(run, session, number, name)
        if verdict.outcome is Unjudged.SKIPPED:
            pytest.skip(verdict.message)
        if verdict.outcome is Unjudged.FAILED:
            raise ExchangeMismatch(None, verdict.message, result, run.sut_logs)
        return
    if comparison.status is ComparisonStatus.SKIPPED:
        pytest.skip(f"not comparable: {comparison.reason}")
    if comparison.failed:
        copies = run.differing_copies.get((session, number), []) if run.settings.amplify > 1 else ()
        raise ExchangeMismatch(comparison, comparison.id, result, run.sut_logs, copies, run.settings.amplify)


def render_mismatch(mismatch: ExchangeMismatch) -> str:
    """The failure text of an exchange item: the diff, then what happened to the session."""
    comparison = mismatch.comparison
    lines = [comparison.render() if comparison is not None else mismatch.message]
    if mismatch.copies:
        listed = ", ".join(map(str, mismatch.copies))
        lines.append(f"differs in {len(mismatch.copies)} of {mismatch.amplify} amplified copies ({listed}); "
                     f"shown: copy {mismatch.copies[0]}")  # fmt: skip
    session = mismatch.session
    if session is not None and session.outcome.value != "complete":
        lines.append(f"session {session.session} replay outcome: {session.outcome.value} ({session.reason})")
    if mismatch.sut_logs:
        lines += ["--- SUT logs (tail) ---", mismatch.sut_logs[-3000:]]
    return "\n".join(lines)


class LiveTrafficItem(pytest.Item):
    """Live traffic from one source, replayed into the SUT as it arrives when the item runs, and
    judged as a whole: its exchanges are known only once the window has closed, so one item
    stands for all of them and fails with those that differ."""

    MAX_SHOWN = 20  # differing exchanges shown in the failure

    def __init__(self, *, source: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.source = source

    def runtest(self) -> None:
        state = self.config.stash[STATE_KEY]
        run = state.replay_once(self.nodeid, lambda: replay_live(self.config, self.source, self.nodeid))
        problems = []
        for exchange in run.capture.items():
            try:
                check_exchange(run, exchange.session, exchange.number, exchange.id)
            except ExchangeMismatch as mismatch:
                problems.append(mismatch)
            except pytest.skip.Exception:
                continue
        if problems:
            raise LiveMismatch(problems, len(run.capture.items()), run.capture.path)

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance(LiveMismatch):
            failure = excinfo.value
            lines = [f"{len(failure.mismatches)} of {failure.total} exchanges of the live traffic differ "
                     f"(recorded in {failure.recording}):"]  # fmt: skip
            for mismatch in failure.mismatches[: self.MAX_SHOWN]:
                lines += render_mismatch(mismatch).splitlines()
            if len(failure.mismatches) > self.MAX_SHOWN:
                lines.append(f"... and {len(failure.mismatches) - self.MAX_SHOWN} more")
            return "\n".join(lines)
        if excinfo.errisinstance(TcpcopyReplayError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.name, None, f"live traffic {self.source}"


class LiveMismatch(Exception):
    def __init__(self, mismatches: list[ExchangeMismatch], total: int, recording: Path) -> None:
        super().__init__(f"{len(mismatches)} of {total} exchanges differ")
        self.mismatches = mismatches
        self.total = total
        self.recording = recording


def replay_live(config: pytest.Config, source: str, label: str) -> ReplayRun:
    """Take ``settings.duration`` seconds of live traffic from ``source`` (``live:IFACE`` or
    ``mirror:ADDR:PORT``), replaying it into the SUT as it arrives; the recording it is judged
    from goes to a scratch folder, removed at the end unless ``--tcpcopy-keep``, and is kept in
    ``--tcpcopy-record-to`` when given (``Settings.recording_for``)."""
    from .endpoint import Endpoint
    from .live import LiveSource, MirrorSource

    state = config.stash[STATE_KEY]
    settings = state.settings
    kind, _, where = source.partition(":")
    if kind == "live":
        ports = settings.filter.ports or ((settings.port,) if settings.port else ())
        make = lambda: LiveSource(where, ports, settings.duration)  # noqa: E731
    else:
        make = lambda: MirrorSource(Endpoint.parse(where), settings.duration)  # noqa: E731
    folder = Path(tempfile.mkdtemp(prefix="tcpcopy-live-"))
    state.scratch.append(folder)
    recording = folder / f"{kind}.pcap"
    try:
        return state.runner(label=label).replay_live(make, recording)
    finally:
        target = settings.recording_for(kind)
        if target is not None and recording.exists():
            keep_recording(state, recording, target)


def keep_recording(state: TcpcopyState, recording: Path, target: Path) -> None:
    from .live import save_recording

    try:
        saved = save_recording(recording, target)
    except (TcpcopyError, OSError) as exc:
        state.notes.append(f"the live traffic could not be kept in {target}: {exc}")
        return
    state.notes.append(f"live traffic kept in {saved.path} ({saved.packets} packets, {saved.kind})")


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tcpcopy_capture(pytestconfig: pytest.Config) -> tuple[Path, ...]:
    """The capture files to replay (``--tcpcopy-pcap``); override to choose them in code."""
    return pytestconfig.stash[STATE_KEY].settings.pcap


@pytest.fixture(scope="session")
def tcpcopy_sut(pytestconfig: pytest.Config) -> dict:
    """The system under test: ``image`` (docker) or ``command`` (netns), and ``port``."""
    settings = pytestconfig.stash[STATE_KEY].settings
    return {"image": settings.image, "command": settings.command, "port": settings.port}


@pytest.fixture(scope="session")
def tcpcopy_baseline(pytestconfig: pytest.Config) -> Baseline:
    """What responses are compared with (``--tcpcopy-baseline``)."""
    return pytestconfig.stash[STATE_KEY].settings.baseline


@pytest.fixture
def tcpcopy(request: pytest.FixtureRequest, tcpcopy_capture, tcpcopy_sut, tcpcopy_baseline) -> TcpcopyRunner:
    """A runner for this test: ``tcpcopy.replay()`` replays the capture into the SUT and returns a
    ``ReplayRun`` (sessions, comparisons, differences, stats). The test's ``tcpcopy(...)`` and
    ``amplify(n)`` markers apply, over the fixtures, the command line and the ini file."""
    state = request.config.stash[STATE_KEY]
    try:
        settings = state.settings.with_overrides(
            {"pcap": list(tcpcopy_capture), "image": tcpcopy_sut.get("image"),
             "command": tcpcopy_sut.get("command") or (), "baseline": tcpcopy_baseline,
             **({"port": tcpcopy_sut["port"]} if tcpcopy_sut.get("port") else {})},
            "tcpcopy fixtures",
        )  # fmt: skip
    except TcpcopyError as exc:
        raise pytest.UsageError(str(exc)) from None
    return state.runner(settings_of(request.node, settings), label=request.node.nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test's markers are checked before it runs, whether it replays or not."""
    settings_of(item, item.config.stash[STATE_KEY].settings)


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: object, right: object) -> list[str] | None:
    """``assert run.differences == []`` shows the differing exchanges' diffs, not object reprs."""
    from .compare import ExchangeComparison

    for side in (left, right):
        if isinstance(side, list) and side and all(isinstance(c, ExchangeComparison) for c in side):
            lines = [f"{len(side)} exchange(s) differ from the baseline:"]
            for comparison in side[:20]:
                lines += comparison.render().splitlines()
            if len(side) > 20:
                lines.append(f"... and {len(side) - 20} more")
            return lines
    return None


# -- progress and reports --------------------------------------------------------------------------


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail fast, once: when traffic is to be replayed, check the SUTs can start before anything
    is collected (``TcpcopyRunner.preflight``: a SUT configured, images present or built,
    commands found); a problem is one usage error for the run. Show the progress of long replays
    on a terminal (never when output goes to a file or pipe)."""
    state = session.config.stash[STATE_KEY]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        state.say = reporter.write_line
    if state.traffic_paths or state.live_sources:
        preflight(state)
    if reporter is not None and reporter.isatty():
        state.progress = ReplayProgressLine(reporter, session.config.pluginmanager.get_plugin("capturemanager"))


def preflight(state: TcpcopyState) -> None:
    """The run's SUTs checked once (see ``pytest_sessionstart``); a problem is a pytest usage error."""
    missing = state.settings.missing_sut()
    if missing is not None:
        traffic = ", ".join(sorted(p.name for p in state.traffic_paths) + list(state.live_sources))
        raise pytest.UsageError(f"{traffic}: no SUT to replay it into: {missing}")
    try:
        state.runner().preflight()
    except TcpcopyError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Captures named by --tcpcopy-pcap with no SUT configured and nothing else to run: say why
    nothing ran, instead of pytest's silent "no tests ran"."""
    settings = session.config.stash[STATE_KEY].settings
    missing = settings.missing_sut()
    if not session.items and session.config.args_source is not pytest.Config.ArgsSource.ARGS and settings.pcap \
            and missing is not None:  # fmt: skip
        names = ", ".join(p.name for p in settings.pcap)
        raise pytest.UsageError(f"--tcpcopy-pcap / tcpcopy_pcap names {names}, but no SUT to replay it into: {missing}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> None:
    """End a progress line that a replay in this phase of ``item`` left, before it is reported."""
    state = item.config.stash[STATE_KEY]
    if state.progress is not None:
        state.progress.finish(item.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The sanity checks of every replay (``sanity``): under ``--tcpcopy-sanity fail`` (the
    default) a problem that fails the run turns a passing run's exit status to 1, as coverage
    thresholds do; then the reports."""
    state = session.config.stash[STATE_KEY]
    settings = state.settings
    if state.runs and settings.sanity is not Sanity.OFF:
        from .report.terminal import run_name
        from .runner import sanity_of

        several = len(state.runs) > 1
        state.sanity = [(run_name(run, several=several), problem)
                        for run in state.runs for problem in sanity_of(run).problems()]  # fmt: skip
        failing = settings.sanity is Sanity.FAIL and any(problem.fails for _, problem in state.sanity)
        if failing and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not settings.report or not state.runs:
        return
    from .report import write_report

    redaction = settings.redaction()
    state.report_paths = [write_report(path, state.runs, redaction=redaction) for path in settings.report]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """One short section, only when a replay ran and there is something to say; sanity problems
    last, loud."""
    state = config.stash[STATE_KEY]
    if not state.runs:
        return
    from .load import LoadReport
    from .report import summary_lines
    from .report.terminal import run_name

    lines = summary_lines(state.runs, state.settings.redaction()) + list(dict.fromkeys(state.notes))
    for run in state.runs:
        if run.settings.amplify > 1:
            if len(state.runs) > 1:
                lines.append(f"{run_name(run, several=True)}:")
            lines += LoadReport.from_run(run).render().splitlines()
    if lines or state.sanity:
        terminalreporter.section("tcpcopy")
        for line in lines:
            terminalreporter.write_line(line)
    for line, loud in sanity_lines(state.sanity, fail=state.settings.sanity is Sanity.FAIL):
        terminalreporter.write_line(line, red=loud, yellow=not loud)
    for path in state.report_paths:
        terminalreporter.write_line(f"tcpcopy report: {path}")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None and not state.settings.keep:
        for folder in state.scratch:
            shutil.rmtree(folder, ignore_errors=True)
