"""pytest glue: maps options, markers and fixtures onto the library. Nothing else imports pytest.

Settings come from (highest first) a ``tcpcopy(...)`` marker, the command line, the ini file, the
defaults; ``pytest_tcpcopy.settings`` parses them. With a capture and a SUT configured, every
captured exchange becomes a test item (``traffic.pcap.gz::s0042-GET /api/users``): the capture is
replayed once, on first need, and each item asserts its own exchange's comparison.

xdist policy: exchange items carry ``xdist_group(<capture>)``, so with ``--dist loadgroup`` all
items of one capture run on one worker and the capture is replayed once. Under other ``--dist``
modes each worker replays the captures its items need: correct, but repeated work.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _pytest.pathlib import bestrelpath

from .errors import TcpcopyError
from .settings import Baseline, Settings

if TYPE_CHECKING:  # the runner pulls in deepdiff: imported on first use, not with pytest
    from .compare import ExchangeComparison
    from .runner import ReplayRun, TcpcopyRunner

SETTINGS_KEY = pytest.StashKey[Settings]()
STATE_KEY = pytest.StashKey["TcpcopyState"]()

# setting name -> (help, kind); kind is "value", "flag" or "list".
OPTIONS = {
    "pcap": ("capture file(s) of production traffic to replay (pcap/pcapng, optionally gzipped)", "list"),
    "image": ("Docker image of the system under test (docker backend)", "value"),
    "command": ("command that starts the system under test (netns backend, as root)", "value"),
    "port": ("TCP port the system under test listens on", "value"),
    "baseline": ("what responses are compared with: capture, none, image:REF, command:CMD, dir:PATH", "value"),
    "update_baseline": ("write the recorded baseline (dir:PATH) from this run", "flag"),
    "speed": ("replay pace: max (default) or a factor of the capture's own timing", "value"),
    "sample": ("percentage of captured sessions to replay, chosen by a stable hash", "value"),
    "filter": ("which exchanges: port=N[,N] method=GET[,POST] path=REGEX", "value"),
    "report": ("write a report: an .html or .json path", "value"),
    "keep": ("keep containers/namespaces after the run, for debugging", "flag"),
    "backend": ("where the SUT runs: docker (default) or netns", "value"),
    "amplify": ("replay every session N times concurrently", "value"),
    "noise": ("run a second baseline instance; its differences from the first are noise", "flag"),
    "ready_timeout": ("seconds the SUT may take to accept connections (default 30)", "value"),
    "http_path": ("HTTP path that must answer below 400 before the SUT counts as ready", "value"),
    "ignore": ("diff paths to ignore, one per line, e.g. root['body']['timestamp']", "list"),
    "live": ("capture live traffic on this interface for --tcpcopy-duration, then replay it (root)", "value"),
    "mirror_listen": ("receive traffic from `pytest-tcpcopy mirror` agents on ADDR:PORT, then replay it", "value"),
    "duration": ("seconds of live or mirrored traffic to take (default 10)", "value"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tcpcopy", "replay captured production traffic (pytest-tcpcopy)")
    for name, (help_text, kind) in OPTIONS.items():
        flag = "--tcpcopy-" + name.replace("_", "-")
        if kind == "flag":
            group.addoption(flag, action="store_const", const=True, default=None, help=help_text)
        elif kind == "list":
            group.addoption(flag, action="append", default=None, metavar="VALUE", help=help_text + " (repeatable)")
        else:
            group.addoption(flag, default=None, metavar="VALUE", help=help_text)
        parser.addini("tcpcopy_" + name, help_text, type="linelist" if kind == "list" else "string")


def _resolve(config: pytest.Config) -> Settings:
    """Defaults < ini < command line; each bad value names where it came from."""
    settings = Settings()
    for name, (_, kind) in OPTIONS.items():
        ini = config.getini("tcpcopy_" + name)
        if ini not in ("", [], None):
            settings = settings.with_overrides({name: ini}, f"ini option tcpcopy_{name}")
    for name in OPTIONS:
        value = config.getoption("tcpcopy_" + name)
        if value is not None:
            flag = "--tcpcopy-" + name.replace("_", "-")
            settings = settings.with_overrides({name: value}, f"command-line option {flag}")
    return settings


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
        settings = _resolve(config)
    except TcpcopyError as exc:
        raise pytest.UsageError(str(exc)) from None
    if settings.report is not None:
        from .report import report_format

        try:
            report_format(settings.report)
        except TcpcopyError as exc:
            raise pytest.UsageError(f"--tcpcopy-report / tcpcopy_report: {exc}") from None
    config.stash[SETTINGS_KEY] = settings
    config.stash[STATE_KEY] = TcpcopyState(settings)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """One short section, only when a replay ran and there is something to say."""
    state = config.stash.get(STATE_KEY, None)
    if state is None or not state.all_runs:
        return
    from .report import summary_lines

    lines = summary_lines(state.all_runs)
    for run in state.all_runs:
        if run.settings.amplify > 1:
            lines += run.load.render().splitlines()
    if lines:
        terminalreporter.section("tcpcopy")
        for line in lines:
            terminalreporter.write_line(line)
    if state.report_path is not None:
        terminalreporter.write_line(f"tcpcopy report: {state.report_path}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(STATE_KEY, None)
    settings = session.config.stash.get(SETTINGS_KEY, None)
    if state is None or settings is None or settings.report is None or not state.all_runs:
        return
    from .report import write_report

    state.report_path = write_report(settings.report, state.all_runs, redaction=state.runner.diff.redaction)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Show the progress of long replays on a terminal (never when output goes to a file or pipe)."""
    state = session.config.stash.get(STATE_KEY, None)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if state is not None and reporter is not None and reporter.isatty():
        state.progress = ReplayProgressLine(reporter, session.config.pluginmanager.get_plugin("capturemanager"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> None:
    """End a progress line that a replay in this phase of ``item`` left, before it is reported."""
    state = item.config.stash.get(STATE_KEY, None)
    if state is not None and state.progress is not None:
        state.progress.finish(item.nodeid)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None and not state.settings.keep:
        import shutil

        for folder in state.scratch:
            shutil.rmtree(folder, ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> str | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not (settings.pcap or settings.image or settings.command):
        return None
    return settings.describe()


def render_progress(reports: dict[str, dict]) -> str:
    """One terminal line from the latest copier progress report of each SUT (by SUT name; the
    name is shown only when there are several)."""
    parts = []
    for name, report in reports.items():
        done, total = report.get("sessions_done", 0), report.get("sessions_total")
        sessions = f"{done} sessions" if total is None else f"{done}/{total} sessions"
        if total:
            sessions += f" ({100 * done // total}%)"
        text = (f"{sessions}, {report.get('active', 0)} active, {report.get('waiting', 0)} waiting, "
                f"{report.get('requests', 0)} requests, {report.get('rate', 0.0):g} sessions/s, "
                f"{report.get('errors', 0)} errors")  # fmt: skip
        parts.append(f"{name}: {text}" if len(reports) > 1 else text)
    return "tcpcopy replay: " + " | ".join(parts)


class ReplayProgressLine:
    """A runner progress callback: one terminal line, rewritten in place at most once per
    ``interval`` while a replay runs. Reports come from the backends' threads; the line is
    written with output capture suspended, after a newline that ends any line pytest started.
    ``finish`` ends it before pytest reports the item that ran the replay."""

    _STALE = 3.0  # seconds after which a SUT's last report no longer shows (its replay is over)

    def __init__(self, reporter, capture_manager=None, *, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._reporter = reporter
        self._capture = capture_manager
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[float, dict]] = {}
        self._next = 0.0
        self._open = False  # a progress line is on the terminal, not yet ended

    def __call__(self, name: str, report: dict) -> None:
        with self._lock:
            now = self._clock()
            self._latest[name] = (now, report)
            if now < self._next:
                return
            self._next = now + self._interval
            current = {n: r for n, (at, r) in self._latest.items() if now - at <= self._STALE}
            suspended = self._capture.global_and_fixture_disabled() if self._capture is not None else nullcontext()
            with suspended:
                self._reporter.ensure_newline()
                width = shutil.get_terminal_size().columns
                self._reporter.rewrite(render_progress(current)[: width - 1], erase=True)
                self._open = True

    def finish(self, nodeid: str) -> None:
        """End the progress line, if one is shown, before pytest reports on ``nodeid``: in the
        short format pytest writes the item's letter on the current line, so its file's prefix
        is written again first (the long format starts a line of its own)."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            if self._reporter.verbosity <= 0:
                self._reporter.write_fspath_result(nodeid, "")


class TcpcopyState:
    """Plugin state for one pytest run: the runner and the replays done so far, by capture."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._runner: TcpcopyRunner | None = None
        self.runs: dict[Path, ReplayRun] = {}
        self.failed: dict[Path, str] = {}
        self.marker_settings: dict = {}  # the running test's tcpcopy/amplify markers
        self.fixture_runs: list[ReplayRun] = []  # replays made through the ``tcpcopy`` fixture
        self.report_path: Path | None = None
        self.scratch: list[Path] = []  # recordings of live traffic, removed at the end unless kept
        self.progress: ReplayProgressLine | None = None  # set when the terminal is a tty

    @property
    def all_runs(self) -> list["ReplayRun"]:
        return list(self.runs.values()) + self.fixture_runs

    @property
    def runner(self) -> "TcpcopyRunner":
        if self._runner is None:
            from .runner import TcpcopyRunner

            self._runner = TcpcopyRunner(self.settings, progress=self.progress)
        return self._runner

    def run_for(self, capture: Path) -> "ReplayRun":
        """The replay of ``capture``, done once, on the first item that needs it."""
        if capture in self.failed:
            raise TcpcopyReplayError(self.failed[capture])
        if capture not in self.runs:
            try:
                self.runs[capture] = self.runner.replay(capture)
            except TcpcopyError as exc:
                self.failed[capture] = f"replay of {capture} failed: {exc}"
                raise TcpcopyReplayError(self.failed[capture]) from None
        return self.runs[capture]


class TcpcopyReplayError(Exception):
    """The replay an item depends on could not run; every item of that capture fails with it."""


# -- exchange items --------------------------------------------------------------------------


class CaptureCollector(pytest.Collector):
    """The exchanges of one capture, as test items."""

    def collect(self):
        state = self.config.stash[STATE_KEY]
        try:
            index = state.runner.index(self.path)
        except TcpcopyError as exc:
            raise self.CollectError(str(exc)) from None
        seen: dict[str, int] = {}
        for exchange in index.items():
            name = exchange.id
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name} [{seen[name]}]"  # the same request again in one session
            item = ExchangeItem.from_parent(self, name=name, exchange=(exchange.session, exchange.number))
            if self.config.pluginmanager.hasplugin("xdist"):
                item.add_marker(pytest.mark.xdist_group(self.path.name))
            yield item

    class CollectError(Exception):
        pass

    def repr_failure(self, excinfo):
        if excinfo.errisinstance(self.CollectError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class ExchangeMismatch(Exception):
    """An exchange of the candidate differs from the baseline."""

    def __init__(self, comparison: "ExchangeComparison", session: dict | None, sut_logs: str | None,
                 copies: list[int] | tuple = (), amplify: int = 1) -> None:  # fmt: skip
        super().__init__(comparison.id)
        self.comparison = comparison
        self.session = session
        self.sut_logs = sut_logs
        self.copies = copies  # the amplify copies that differed (empty when not amplified)
        self.amplify = amplify


class ExchangeItem(pytest.Item):
    def __init__(self, *, exchange: tuple[int, int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.session_index, self.number = exchange  # captured session, exchange number in it

    def runtest(self) -> None:
        from .compare import ComparisonStatus

        run = self.config.stash[STATE_KEY].run_for(self.path)
        comparison = run.comparison(self.session_index, self.number)
        result = run.sessions.get(self.session_index)
        if comparison is None:
            if run.settings.baseline.kind == "dir":
                pytest.skip("no recorded baseline for this session yet: run with --tcpcopy-update-baseline")
            reason = result["outcome"] + f" ({result['reason']})" if result else "not replayed"
            raise ExchangeMismatch(_missing(self.name, reason), result, run.candidate.get("sut_logs"))
        if comparison.status is ComparisonStatus.SKIPPED:
            pytest.skip(f"not comparable: {comparison.reason}")
        if comparison.failed:
            copies = run.differing_copies.get((self.session_index, self.number), [])
            raise ExchangeMismatch(comparison, result, run.candidate.get("sut_logs"),
                                   copies if run.settings.amplify > 1 else (), run.settings.amplify)  # fmt: skip

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance(ExchangeMismatch):
            return render_mismatch(excinfo.value)
        if excinfo.errisinstance(TcpcopyReplayError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, ""


def _missing(name: str, reason: str) -> "ExchangeComparison":
    from .compare import ComparisonStatus, ExchangeComparison

    return ExchangeComparison(None, None, ComparisonStatus.MISSING, reason=f"{name}: no response to compare ({reason})")


def render_mismatch(mismatch: ExchangeMismatch) -> str:
    """The failure text of an exchange item: the diff, then what happened to the session."""
    comparison = mismatch.comparison
    lines = [comparison.render() if comparison.baseline or comparison.candidate else comparison.reason or ""]
    if mismatch.copies:
        listed = ", ".join(map(str, mismatch.copies))
        lines.append(f"differs in {len(mismatch.copies)} of {mismatch.amplify} amplified copies ({listed}); "
                     f"shown: copy {mismatch.copies[0]}")  # fmt: skip
    session = mismatch.session
    if session is not None and session["outcome"] != "complete":
        lines.append(f"session {session['session']} replay outcome: {session['outcome']} ({session['reason']})")
    if mismatch.sut_logs:
        lines += ["--- SUT logs (tail) ---", mismatch.sut_logs[-3000:]]
    return "\n".join(lines)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Add the exchange items of every configured capture ahead of the ordinary tests, before
    ``-k``, ``-m`` and ``--lf`` select among them."""
    settings = config.stash[SETTINGS_KEY]
    if not settings.configured:
        return
    traffic = []
    for capture in [*settings.pcap, *_record_live(settings, config)]:
        path = capture.resolve()
        nodeid = bestrelpath(config.rootpath, path) if path.is_relative_to(config.rootpath) else str(path)
        collector = CaptureCollector.from_parent(session, path=path, name=capture.name, nodeid=nodeid)
        try:
            found = list(collector.collect())
            report = pytest.CollectReport(collector.nodeid, "passed", None, found)
            traffic.extend(found)
        except CaptureCollector.CollectError as exc:
            report = pytest.CollectReport(collector.nodeid, "failed", str(exc), [])
        config.hook.pytest_collectreport(report=report)
    items[:0] = traffic


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


def _record_live(settings: Settings, config: pytest.Config) -> list[Path]:
    """Live traffic (an interface, or mirror agents) replayed into the SUT as it arrives, for
    ``duration`` s, and recorded into a capture whose exchanges become the items; production's
    responses in it are the baseline. The replay is stored as that capture's run, so the items
    judge it without replaying again (see ``TcpcopyRunner.replay_live`` for when the replay has
    to wait for the end of the recording)."""
    import tempfile

    from .endpoint import Endpoint
    from .live import LiveSource, MirrorSource

    sources = []
    if settings.live is not None:
        ports = settings.filter.ports or (settings.port,)
        sources.append((f"live-{settings.live}.pcap", lambda: LiveSource(settings.live, ports, settings.duration)))
    if settings.mirror_listen is not None:
        listen = Endpoint.parse(settings.mirror_listen)
        sources.append(("mirror.pcap", lambda: MirrorSource(listen, settings.duration)))
    if not sources:
        return []
    folder = Path(tempfile.mkdtemp(prefix="tcpcopy-live-")).resolve()  # resolved: the collector's path is the key
    state = config.stash[STATE_KEY]
    state.scratch.append(folder)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    runner, log = state.runner, state.runner.log
    if reporter is not None:
        runner.log = reporter.write_line  # the fallback's notice shows during collection
    recorded = []
    try:
        for name, make in sources:
            path = folder / name
            if reporter is not None:
                reporter.write_line(f"tcpcopy: replaying {settings.duration:g} s of live traffic, recorded into {path}")
            try:
                state.runs[path] = runner.replay_live(make, path)
            except TcpcopyError as exc:
                if not path.exists():
                    raise
                state.failed[path] = f"live replay of {path} failed: {exc}"
            recorded.append(path)
    finally:
        runner.log = log
    return recorded


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tcpcopy_capture(pytestconfig: pytest.Config) -> tuple[Path, ...]:
    """The capture files to replay (``--tcpcopy-pcap``); override to choose them in code."""
    return pytestconfig.stash[SETTINGS_KEY].pcap


@pytest.fixture(scope="session")
def tcpcopy_sut(pytestconfig: pytest.Config) -> dict:
    """The system under test: ``image`` (docker) or ``command`` (netns), and ``port``."""
    settings = pytestconfig.stash[SETTINGS_KEY]
    return {"image": settings.image, "command": settings.command, "port": settings.port}


@pytest.fixture(scope="session")
def tcpcopy_baseline(pytestconfig: pytest.Config) -> Baseline:
    """What responses are compared with (``--tcpcopy-baseline``)."""
    return pytestconfig.stash[SETTINGS_KEY].baseline


@pytest.fixture(scope="session")
def tcpcopy(pytestconfig, tcpcopy_capture, tcpcopy_sut, tcpcopy_baseline) -> "TcpcopyRunner":
    """A runner: ``tcpcopy.replay()`` replays the capture into the SUT and returns a ``ReplayRun``
    (sessions, comparisons, differences, stats). A test's ``tcpcopy``/``amplify`` markers apply."""
    settings = pytestconfig.stash[SETTINGS_KEY].with_overrides(
        {"pcap": list(tcpcopy_capture), "image": tcpcopy_sut.get("image"), "command": tcpcopy_sut.get("command") or (),
         "baseline": tcpcopy_baseline, **({"port": tcpcopy_sut["port"]} if tcpcopy_sut.get("port") else {})},
        "tcpcopy fixtures",
    )  # fmt: skip
    from .runner import TcpcopyRunner

    state = pytestconfig.stash[STATE_KEY]
    return TcpcopyRunner(settings, context=lambda: state.marker_settings, on_run=state.fixture_runs.append,
                         progress=state.progress)  # fmt: skip


def marker_overrides(item: pytest.Item) -> dict:
    """Settings from the item's ``tcpcopy(...)`` and ``amplify(n)`` markers (closest wins)."""
    overrides: dict = {}
    for marker in reversed(list(item.iter_markers("tcpcopy"))):
        if marker.args:
            raise pytest.UsageError(f"{item.nodeid}: tcpcopy(...) takes keyword settings only, got {marker.args!r}")
        overrides.update(marker.kwargs)
    amplify = item.get_closest_marker("amplify")
    if amplify is not None:
        (n,) = amplify.args if len(amplify.args) == 1 and not amplify.kwargs else (None,)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise pytest.UsageError(f"{item.nodeid}: amplify(n) takes one positive integer, got {amplify.args!r}")
        overrides["amplify"] = n
    try:
        item.config.stash[SETTINGS_KEY].with_overrides(overrides, f"marker on {item.nodeid}")
    except TcpcopyError as exc:
        raise pytest.UsageError(str(exc)) from None
    return overrides


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Validate the test's markers and make them the ``tcpcopy`` runner's settings for this test."""
    item.config.stash[STATE_KEY].marker_settings = marker_overrides(item)


def pytest_runtest_teardown(item: pytest.Item) -> None:
    item.config.stash[STATE_KEY].marker_settings = {}
