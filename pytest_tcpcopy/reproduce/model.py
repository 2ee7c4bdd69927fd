"""The values of reproducers: what to reproduce (``Example``), how (``ReproducerConfig``), and what
was written (``Reproducer``, ``ReproducerSet``)."""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..compare import Cause, ComparisonStatus, ExchangeComparison, Finding, FindingKey, Redaction
from ..errors import UsageError
from .shell import RerunTarget

SLICE_FILE = "session.pcap"
README = "README.md"
REQUEST_SCRIPT = "request.sh"
# Not comparable causes a replay of the session can show again (the SUT's behaviour); the others
# (the replay stopped, a baseline problem) have nothing of the SUT's to reproduce.
REPRODUCIBLE_CAUSES = frozenset((Cause.SUT_TOO_SLOW, Cause.SUT_RESET, Cause.SUT_DIED, Cause.SUT_REFUSED))


class SliceMode(enum.Enum):
    """When a reproducer holds its session's capture file (which holds raw bytes, secrets and all).

    ``AUTO``: when the redaction recognises no secret in the session's bytes and every byte could
    be searched; ``ALWAYS``: always (the folder is then as sensitive as the capture); ``NEVER``.
    """

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class ReproducerConfig:
    """How reproducers are written: the run's SUT (for the re-run lines), the ``redaction``, when
    to write capture files (``slices``), at most ``per_finding`` examples of each finding and
    ``max_reproducers`` reproducers in all, and the capture's server ports (``capture_ports``
    of ``target``), which number its sessions."""

    target: RerunTarget
    redaction: Redaction = field(default_factory=Redaction)
    slices: SliceMode = SliceMode.AUTO
    per_finding: int = 1
    max_reproducers: int = 20

    def __post_init__(self) -> None:
        if self.per_finding < 1 or self.max_reproducers < 0:
            raise UsageError("reproducers: per_finding must be at least 1 and max_reproducers at least 0")


@dataclass(frozen=True, slots=True)
class FindingRef:
    """A finding as a reproducer names it: its key and how many exchanges it holds."""

    key: FindingKey
    count: int

    def render(self) -> str:
        return f"{self.key.render()} ({self.count} exchange{'s' if self.count != 1 else ''})"


@dataclass(frozen=True, slots=True)
class Example:
    """One exchange to reproduce: exchange ``number`` of captured session ``session``, the
    findings it is an example of, and its verdict (for the README's diff), when known."""

    session: int
    number: int
    exchange_id: str
    findings: tuple[FindingRef, ...] = ()
    comparison: ExchangeComparison | None = None


def choose_examples(findings: Iterable[Finding], per_finding: int, limit: int) -> tuple[list[Example], int]:
    """The examples to reproduce, in the findings' order: the first ``per_finding`` examples of
    each finding that has something of the SUT's to reproduce (differences; not comparable for
    ``REPRODUCIBLE_CAUSES``), an exchange shared by findings once, at most ``limit`` in all; and
    how many more were left out by ``limit``."""
    chosen: dict[tuple[int, int], Example] = {}
    omitted = 0
    for finding in findings:
        key = finding.key
        if key.status is ComparisonStatus.NOT_COMPARABLE and Cause(key.change) not in REPRODUCIBLE_CAUSES:
            continue
        ref = FindingRef(key, finding.count)
        for comparison in finding.examples[:per_finding]:
            at = (comparison.session, comparison.number)
            if at in chosen:
                example = chosen[at]
                chosen[at] = Example(example.session, example.number, example.exchange_id,
                                     (*example.findings, ref), example.comparison)  # fmt: skip
            elif len(chosen) < limit:
                chosen[at] = Example(comparison.session, comparison.number, comparison.exchange_id, (ref,), comparison)
            else:
                omitted += 1
    return list(chosen.values()), omitted


@dataclass(frozen=True, slots=True)
class Reproducer:
    """One reproducer as written: its folder and files (names inside ``directory``), the capture
    file when written (``slice_file``; ``slice_note`` says why it was written or not), the exchange's
    pytest item in that file (``item``), the shell lines (``commands``: ``request``, ``pytest``,
    ``pytest_all``, ``rig`` for the slice when written; ``capture_pytest``, ``capture_rig`` for
    the original capture), and ``problem``: why the request could not be written, if so."""

    capture: Path
    session: int
    number: int
    exchange_id: str
    findings: tuple[FindingRef, ...]
    directory: Path
    files: tuple[str, ...]
    slice_file: str | None
    slice_note: str
    item: str | None
    commands: dict[str, str]
    problem: str | None = None

    @property
    def readme(self) -> Path:
        return self.directory / README

    def to_json(self, relative_to: str | os.PathLike[str] | None = None) -> dict:
        """The reproducer for a report; paths relative to ``relative_to`` (a folder) when given."""

        def where(path: Path) -> str:
            return os.path.relpath(path, relative_to) if relative_to is not None else str(path)

        return {
            "exchange": self.exchange_id,
            "session": self.session,
            "number": self.number,
            "findings": [ref.key.render() for ref in self.findings],
            "path": where(self.directory),
            "readme": where(self.readme),
            "slice": where(self.directory / self.slice_file) if self.slice_file else None,
            "slice_note": self.slice_note,
            "request": where(self.directory / REQUEST_SCRIPT) if REQUEST_SCRIPT in self.files else None,
            "item": self.item,
            "commands": dict(self.commands),
            "problem": self.problem,
        }


@dataclass(slots=True)
class ReproducerSet:
    """The reproducers of a run: written ones, ``omitted`` examples past the bound, ``problems``
    (an example whose session the capture does not hold), the ``index`` file (``index.md``)."""

    directory: Path
    reproducers: list[Reproducer] = field(default_factory=list)
    omitted: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.directory / "index.md"

    def for_exchange(self, capture: str | os.PathLike[str], session: int, number: int) -> Reproducer | None:
        """The reproducer of exchange ``number`` of ``session`` of ``capture``, if one was written."""
        capture = Path(capture).resolve()
        for reproducer in self.reproducers:
            if (reproducer.capture, reproducer.session, reproducer.number) == (capture, session, number):
                return reproducer
        return None

    def for_finding(self, key: FindingKey) -> list[Reproducer]:
        """The reproducers written for the finding ``key``."""
        return [r for r in self.reproducers if any(ref.key == key for ref in r.findings)]
