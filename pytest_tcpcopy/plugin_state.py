"""pytest glue: the plugin's state for one run of pytest, in ``config.stash[STATE_KEY]``.

Settings, the captures indexed so far, the replays made (once per capture, by the first item
that needs one), the reproducers written for their findings (``reproduce``: as each replay is
judged, so that the items' texts can name them), and which failing items' texts are only
references to findings shown in full elsewhere (their long failure sections are folded in the
terminal).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .errors import TcpcopyError
from .judging.collector import FrozenTree
from .progress_line import ReplayProgressLine
from .settings import Settings

if TYPE_CHECKING:  # the runner pulls in deepdiff: imported on first use, not with pytest
    from .model import ReplayRun
    from .runner import TcpcopyRunner

STATE_KEY = pytest.StashKey["TcpcopyState"]()
REFERENCE_PROPERTY = "tcpcopy_reference"  # a report's user property: the finding its one-line text refers to


class TcpcopyState:
    """Plugin state for one pytest run: settings, indexed captures, and the replays done so far."""

    def __init__(self, settings: Settings, *, verbose: bool = False) -> None:
        self.settings = settings
        self.full_output = settings.full_output or verbose  # every failing exchange shows its whole diff
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
        self.images = None  # backends.docker.prepare.ImagePreparer: every image built or checked once per run
        self.say = self._note  # where image builds report (the terminal, once the session starts)
        self.reproducers = None  # reproduce.RunReproducers, once a replay had findings
        self.frozen_tree = FrozenTree()  # the collected items, out of the last garbage collections

    def runner(self, settings: Settings | None = None, label: str | None = None, *, items: bool = False,
               load_figures: bool = True) -> TcpcopyRunner:  # fmt: skip
        """A runner sharing this run's indexes; ``items``: it judges for exchange items."""
        from .runner import TcpcopyRunner

        if self.images is None:
            from .backends.docker.prepare import ImagePreparer

            self.images = ImagePreparer(buildargs=self.settings.build_args, pull=self.settings.pull,
                                        log=lambda line: self.say(f"tcpcopy: {line}"))  # fmt: skip
        settings = settings or self.settings
        return TcpcopyRunner(settings, label=label, on_run=self.judged, log=self._note, progress=self.progress,
                             indexes=self.indexes, images=self.images,
                             item_verdicts=items and settings.items == "exchange", full_output=self.full_output,
                             load_figures=load_figures)  # fmt: skip

    def judged(self, run: ReplayRun) -> None:
        """A replay is judged: keep it, and write the reproducers of its findings (a problem
        writing them is a note, never a failure of the run)."""
        self.runs.append(run)
        folder = self.settings.reproducers
        if folder is None or not run.verdicts.findings.findings():
            return
        from .reproduce import ReproducerConfig, RerunTarget, RunReproducers

        try:
            if self.reproducers is None:
                self.reproducers = RunReproducers(folder.resolve())
            config = ReproducerConfig(RerunTarget.from_settings(run.settings), redaction=run.settings.redaction())
            run.reproducers = self.reproducers.add(run.capture.path, run.verdicts.findings.findings(), config)
        except (TcpcopyError, OSError) as exc:
            self._note(f"reproducers of {run.capture.path.name} not written: {exc}")

    def _note(self, line: str) -> None:
        self.notes.append(line.removeprefix("tcpcopy: "))

    def replay_once(self, nodeid: str, replay) -> ReplayRun:
        """``replay()``'s run, made once per collector ``nodeid`` (its first item), then reused;
        when it failed, every item of that collector errors with the same message."""
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
    """The replay an item depends on could not run; every item of that traffic errors with it."""
