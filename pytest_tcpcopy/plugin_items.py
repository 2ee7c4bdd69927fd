"""pytest glue: traffic as test items, and their outcomes.

A capture file is a test file (``CaptureFile``); by ``--tcpcopy-items`` its items are one per
exchange (``ExchangeItem``, named by the exchange id: ``traffic.pcap.gz::s0042-GET /api/users``)
or one per endpoint template (``EndpointItem``: ``traffic.pcap.gz::GET /api/users/{id}``). The
capture is replayed once, by the setup of its first item; each item then looks up its verdict:

- the same: the item passes;
- not comparable (the SUT was too slow, reset, died; the session was not replayed; no baseline
  to compare with...): the item's setup raises, so pytest reports an error (E) with the cause;
- different: the item fails (F) with the diff, or a one-line reference to the finding that
  shows it in full (``report.item_text``).

An endpoint item fails when any exchange of its endpoint differs, errors when some are not
comparable and none differs. Live traffic is one ``LiveTrafficItem`` per source, judged whole.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .errors import TcpcopyError
from .plugin_state import STATE_KEY

if TYPE_CHECKING:  # the judging pulls in deepdiff: imported once an item runs, not with pytest
    from .report.item_text import ItemText

EXCHANGE_ITEMS_WARN = 5000  # exchange items in one capture beyond which collection suggests endpoint items


class TcpcopyItemWarning(pytest.PytestWarning):
    """A capture collected in a shape that will be slow or long to read."""


class CollectionProblem(Exception):
    """Why a capture could not be collected (shown as the collection error, without a traceback)."""


class ItemProblem(Exception):
    """An item that does not pass, with its text (see ``report.item_text``)."""

    def __init__(self, text: ItemText) -> None:
        super().__init__(text.headline)
        self.text = text


class NotComparableError(ItemProblem):
    """Raised by an item's setup: nothing can be said about the candidate (pytest: an error)."""


class Mismatch(ItemProblem):
    """Raised by an item's test: the candidate's responses differ (pytest: a failure)."""


class ItemRepr:
    """An item's failure as pytest shows it: the whole text in the failure section, the
    headline in the short summary and in junit's message."""

    def __init__(self, text: ItemText) -> None:
        self.text = text
        self.reprcrash = _Crash(text.headline)

    def toterminal(self, tw) -> None:
        for line in self.text.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text.text


class _Crash:
    def __init__(self, message: str) -> None:
        self.message = message

    def __str__(self) -> str:
        return self.message


class CaptureFile(pytest.File):
    """The exchanges (or endpoints) of one capture, as test items; reading the capture replays nothing."""

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
        xdist = self.config.pluginmanager.hasplugin("xdist")
        if settings.items == "endpoint":
            items = [EndpointItem.from_parent(self, name=endpoint, endpoint=endpoint) for endpoint in index.endpoints]
        else:
            if index.exchanges > EXCHANGE_ITEMS_WARN:
                self.warn(TcpcopyItemWarning(
                    f"{self.path.name}: {index.exchanges} exchanges, one test item each; for a capture this large, "
                    f"--tcpcopy-items=endpoint collects one item per endpoint ({len(index.endpoints)}), or "
                    "--tcpcopy-sample=PCT replays a part"))  # fmt: skip
            items = [ExchangeItem.from_parent(self, name=ref.name, session_index=ref.session, number=ref.number)
                     for ref in index.items()]  # fmt: skip
        for item in items:
            if xdist:
                item.add_marker(pytest.mark.xdist_group(self.path.name))
            yield item

    def repr_failure(self, excinfo):
        if excinfo.errisinstance(CollectionProblem):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def run(self):
        """This capture's replay: made by the first item that needs it."""
        state = self.config.stash[STATE_KEY]
        amplified = state.settings.amplify > 1
        return state.replay_once(self.nodeid, lambda: state.runner(label=self.nodeid, items=True,
                                                                    load_figures=amplified).replay(self.path))


class ExchangeItem(pytest.Item):
    """One captured exchange, judged from its capture's replay."""

    def __init__(self, *, session_index: int, number: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.session_index, self.number = session_index, number  # captured session, exchange number in it
        self._failure: ItemText | None = None

    def setup(self) -> None:
        from .compare import ComparisonStatus
        from .report.item_text import exchange_text

        assert isinstance(self.parent, CaptureFile)
        run = self.parent.run()
        status = run.verdicts.item(self.session_index, self.number).status
        if status is ComparisonStatus.SAME:
            return
        full = self.config.stash[STATE_KEY].full_output
        text = exchange_text(run, self.session_index, self.number, self.name, full=full)
        if status is ComparisonStatus.NOT_COMPARABLE:
            raise NotComparableError(text)
        self._failure = text

    def runtest(self) -> None:
        if self._failure is not None:
            raise Mismatch(self._failure)

    def reportinfo(self):
        return self.path, None, self.name


class EndpointItem(pytest.Item):
    """Every exchange of one endpoint template of a capture, judged from its replay."""

    def __init__(self, *, endpoint: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self._failure: ItemText | None = None

    def setup(self) -> None:
        from .compare import ComparisonStatus
        from .report.item_text import endpoint_text

        assert isinstance(self.parent, CaptureFile)
        run = self.parent.run()
        counts = run.verdicts.endpoint(self.endpoint)
        if counts[ComparisonStatus.DIFFERENT]:
            self._failure = endpoint_text(run, self.endpoint)
        elif counts[ComparisonStatus.NOT_COMPARABLE]:
            raise NotComparableError(endpoint_text(run, self.endpoint))

    def runtest(self) -> None:
        if self._failure is not None:
            raise Mismatch(self._failure)

    def reportinfo(self):
        return self.path, None, self.name


class LiveTrafficItem(pytest.Item):
    """Live traffic from one source, replayed into the SUT as it arrives by the item's setup, and
    judged as a whole: its exchanges are known only once the window has closed, so one item
    stands for all of them; it fails with the findings when any differs."""

    def __init__(self, *, source: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.source = source
        self._failure: ItemText | None = None

    def setup(self) -> None:
        from .compare import ComparisonStatus

        state = self.config.stash[STATE_KEY]
        run = state.replay_once(self.nodeid, lambda: replay_live(self.config, self.source, self.nodeid))
        counts = run.verdicts.counts
        if counts[ComparisonStatus.DIFFERENT]:
            self._failure = live_text(run)
        elif counts[ComparisonStatus.NOT_COMPARABLE]:
            raise NotComparableError(live_text(run))

    def runtest(self) -> None:
        if self._failure is not None:
            raise Mismatch(self._failure)

    def reportinfo(self):
        return self.name, None, f"live traffic {self.source}"


def live_text(run) -> ItemText:
    """The text of a live traffic item: its counts, then the findings with their examples."""
    from .compare import ComparisonStatus
    from .report import findings_lines
    from .report.item_text import ItemText

    verdicts = run.verdicts
    different, not_comparable = verdicts.counts[ComparisonStatus.DIFFERENT], verdicts.counts[ComparisonStatus.NOT_COMPARABLE]
    headline = (f"{different} different, {not_comparable} not comparable of {verdicts.total} exchanges of the live "
                f"traffic (recorded in {Path(run.capture.path)})")  # fmt: skip
    return ItemText(headline, "\n".join([headline, *findings_lines(verdicts.findings, verdicts.redaction)]))


def replay_live(config: pytest.Config, source: str, label: str):
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
        make = lambda: LiveSource(where, ports, settings.duration)
    else:
        make = lambda: MirrorSource(Endpoint.parse(where), settings.duration)
    folder = Path(tempfile.mkdtemp(prefix="tcpcopy-live-"))
    state.scratch.append(folder)
    recording = folder / f"{kind}.pcap"
    try:
        return state.runner(label=label).replay_live(make, recording)
    finally:
        target = settings.recording_for(kind)
        if target is not None and recording.exists():
            keep_recording(state, recording, target)


def keep_recording(state, recording: Path, target: Path) -> None:
    """Copy the live ``recording`` to ``target``, noting where it went (or why it could not)."""
    from .live import save_recording

    try:
        saved = save_recording(recording, target)
    except (TcpcopyError, OSError) as exc:
        state.notes.append(f"the live traffic could not be kept in {target}: {exc}")
        return
    state.notes.append(f"live traffic kept in {saved.path} ({saved.packets} packets, {saved.kind})")
