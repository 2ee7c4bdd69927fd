"""pytest glue: maps options, markers and fixtures onto the library. Nothing else imports pytest
(but its parts: ``plugin_state``, the run's state; ``plugin_items``, traffic as test items).

Settings (``pytest_tcpcopy.settings``) come from, highest first, a ``tcpcopy(...)`` marker, the
command line, the ini file, the defaults. Traffic becomes test items at collection time, without
replaying anything:

- a capture file is a test file: ``plugin_items.CaptureFile`` collects one item per captured
  exchange (``traffic.pcap.gz::s0042-GET /api/users``), or per endpoint template with
  ``--tcpcopy-items=endpoint``. The capture is replayed once, by the setup of its first item;
  each item then looks up its own verdict: same passes, not comparable errors (E), different
  fails (F).
- which captures are collected: those given as paths (``pytest online.pcap``); and, when pytest
  runs without paths (from ``testpaths`` or the current directory), the captures named by
  ``--tcpcopy-pcap`` / ``tcpcopy_pcap`` when a SUT is configured. Paths on the command line
  replace that default, as they replace ``testpaths``: ``pytest tests/test_load.py`` runs those
  tests only (``--tcpcopy-pcap`` still feeds the ``tcpcopy`` fixture).
- live traffic (``--tcpcopy-live``, ``--tcpcopy-mirror-listen``) has no exchanges before it is
  taken: when pytest runs without paths, each source is one ``LiveTrafficItem``
  (``tcpcopy:live:eth0``) that, when it runs, replays the traffic as it arrives for
  ``--tcpcopy-duration`` seconds and fails with the findings of the exchanges that differ.

Output stays short at any scale: the ``tcpcopy`` summary section (counts and findings) leads the
terminal summary; a failing item whose text only refers to a finding shown in full elsewhere is
left out of the failures and errors sections, and past the first ``SUMMARY_REFERENCES`` of them
out of the short test summary too (they are still failures and errors, in every report and
``--lf``). ``-v`` or ``--tcpcopy-full-output`` show every item's whole diff.

xdist policy: exchange items carry ``xdist_group(<capture>)``, so with ``--dist loadgroup`` all
items of one capture run on one worker and the capture is replayed once. Under other ``--dist``
modes each worker replays the captures its items need: correct, but repeated work.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .errors import TcpcopyError
from .judging.collector import FREEZE_FROM
from .plugin_items import CaptureFile, ItemProblem, ItemRepr, LiveTrafficItem
from .plugin_state import REFERENCE_PROPERTY, STATE_KEY, TcpcopyReplayError, TcpcopyState
from .progress_line import ReplayProgressLine
from .sanity import sanity_lines
from .settings import SETTINGS, Baseline, Kind, Sanity, Settings

if TYPE_CHECKING:  # the runner pulls in deepdiff: imported on first use, not with pytest
    from .runner import TcpcopyRunner

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")
SUMMARY_REFERENCES = 50  # failing items that refer to a finding listed in the short test summary


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
    overrides = marker_overrides(node)
    if not overrides:
        return settings
    try:
        return settings.with_overrides(overrides, f"marker on {node.nodeid}", per_test=True)
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
    state = TcpcopyState(settings, verbose=(config.getoption("verbose") or 0) > 0)
    if config.args_source is not pytest.Config.ArgsSource.ARGS and settings.configured:
        config.args.extend(str(path) for path in settings.pcap)  # the default traffic, as testpaths
        state.live_sources = settings.live_sources
    state.traffic_paths = {_path_of(arg, config) for arg in config.args if is_capture_file(_path_of(arg, config))}
    config.stash[STATE_KEY] = state
    config.add_cleanup(state.frozen_tree.thaw)  # registered before pytest's last collections: runs after them
    config.pluginmanager.register(ShortSummary(), "tcpcopy-short-summary")


def _path_of(arg: str, config: pytest.Config) -> Path:
    return (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()


def pytest_report_header(config: pytest.Config) -> str | None:
    settings = config.stash[STATE_KEY].settings
    if not (settings.pcap or settings.image or settings.command or settings.live_sources):
        return None
    return settings.describe()


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
    """A test's markers are checked before it runs, whether it replays or not. (A capture's items
    are judged from its one replay, which their markers do not change.)"""
    if not isinstance(item.parent, CaptureFile):
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
    nothing ran, instead of pytest's silent "no tests ran". A large capture's items are frozen out
    of the session's last garbage collections (``judging.collector.FrozenTree``)."""
    state = session.config.stash[STATE_KEY]
    if sum(isinstance(item.parent, CaptureFile) for item in session.items) >= FREEZE_FROM:
        state.frozen_tree.freeze()
    settings = state.settings
    missing = settings.missing_sut()
    if not session.items and session.config.args_source is not pytest.Config.ArgsSource.ARGS and settings.pcap \
            and missing is not None:  # fmt: skip
        names = ", ".join(p.name for p in settings.pcap)
        raise pytest.UsageError(f"--tcpcopy-pcap / tcpcopy_pcap names {names}, but no SUT to replay it into: {missing}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport | None:
    """End a progress line that a replay in this phase of ``item`` left, before it is reported.
    An item that does not pass is reported with its own text, in setup too (where pytest would
    show a traceback, and pay for rendering one); one whose text refers to a finding says so in
    a user property."""
    state = item.config.stash[STATE_KEY]
    if state.progress is not None:
        state.progress.finish(item.nodeid)
    excinfo = call.excinfo
    if excinfo is None or not excinfo.errisinstance((ItemProblem, TcpcopyReplayError)):
        return None
    properties = list(item.user_properties)
    if excinfo.errisinstance(ItemProblem):
        text = excinfo.value.text
        longrepr = ItemRepr(text)
        if text.reference is not None:
            properties.append((REFERENCE_PROPERTY, text.reference))
    else:
        longrepr = str(excinfo.value)
    return pytest.TestReport(item.nodeid, item.location, {k: 1 for k in item.keywords}, "failed", longrepr, call.when,
                             duration=call.duration, start=call.start, stop=call.stop,
                             user_properties=properties)  # fmt: skip


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The sanity checks of every replay (``sanity``): under ``--tcpcopy-sanity fail`` (the
    default) a problem that fails the run turns a passing run's exit status to 1, as coverage
    thresholds do; then the reports."""
    state = session.config.stash[STATE_KEY]
    settings = state.settings
    if state.runs and settings.sanity is not Sanity.OFF:
        from .report.terminal import run_name

        several = len(state.runs) > 1
        state.sanity = [(run_name(run, several=several), problem)
                        for run in state.runs for problem in run.sanity.problems()]  # fmt: skip
        failing = settings.sanity is Sanity.FAIL and any(problem.fails for _, problem in state.sanity)
        if failing and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not settings.report or not state.runs:
        return
    from .report import write_report

    redaction = settings.redaction()
    state.report_paths = [write_report(path, state.runs, redaction=redaction) for path in settings.report]


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config):
    """The ``tcpcopy`` section first (findings lead). Items whose text refers to a finding are
    left out of the failures and errors sections, and past the first ``SUMMARY_REFERENCES`` out
    of the short test summary (``ShortSummary``); pytest's counts still count them."""
    _tcpcopy_section(terminalreporter, config.stash[STATE_KEY])
    stats = terminalreporter.stats
    every = {kind: list(stats.get(kind, ())) for kind in ("failed", "error")}
    references = [r for reports in every.values() for r in reports if _refers(r)]
    if references:
        _fold(stats, every, set())
        terminalreporter.write_line(
            f"tcpcopy: {len(references)} failing item(s) refer to a finding shown in full (above, or with another "
            "item); their sections are left out (-v or --tcpcopy-full-output shows every diff)")  # fmt: skip
        config.stash[_FOLDED] = (every, {id(r) for r in references[:SUMMARY_REFERENCES]}, len(references))
    try:
        yield
    finally:
        if references:
            for kind, reports in every.items():
                stats[kind] = reports


_FOLDED = pytest.StashKey[tuple]()


class ShortSummary:
    """Runs after the failures sections, before pytest's short test summary: lists the first
    ``SUMMARY_REFERENCES`` of the items that refer to a finding there, and counts the rest."""

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter, config: pytest.Config) -> None:
        folded = config.stash.get(_FOLDED, None)
        if folded is None:
            return
        every, shown, count = folded
        _fold(terminalreporter.stats, every, shown)
        if count > len(shown):
            terminalreporter.write_line(f"tcpcopy: the short test summary lists {len(shown)} of the {count} items "
                                        "that refer to a finding")  # fmt: skip


def _refers(report) -> bool:
    return any(name == REFERENCE_PROPERTY for name, _ in getattr(report, "user_properties", ()))


def _fold(stats: dict, every: dict, shown: set[int]) -> None:
    """Leave the reports that refer to a finding out of ``stats``, but those in ``shown``."""
    for kind, reports in every.items():
        if reports:
            stats[kind] = [r for r in reports if not _refers(r) or id(r) in shown]


def _tcpcopy_section(terminalreporter, state: TcpcopyState) -> None:
    """One short section, only when a replay ran and there is something to say."""
    if not state.runs:
        return
    from .load import LoadReport
    from .report import summary_lines
    from .report.terminal import run_name

    lines = summary_lines(state.runs, state.settings.redaction()) + list(dict.fromkeys(state.notes))
    written = state.reproducers.written if state.reproducers is not None else None
    if written is not None and written.reproducers:
        lines.append(f"reproducers: {len(written.reproducers)} written, index {written.index}")
    for run in state.runs:
        if run.settings.amplify > 1 and run.load is not None:
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
