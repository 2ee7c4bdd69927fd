"""Writing reproducers: examples of findings in, one folder per example out, and the run's index.

For each capture, one streaming pass cuts every wanted session out (``slicing``); each example's
exchange is then found again in its session's own bytes (the codec splits them as the run did)
and checked against the id the run gave it, its request redacted (``redaction``) and written as a
script (``shell``), and the README written (``readme``). What a reproducer folder holds:

    README.md          what differed, the request, the re-run lines, the files
    request.sh         the request sent to $SUT: curl (HTTP), socat or nc (other protocols)
    request.headers    headers curl reads with -H @file (only when a shell line should not carry them)
    request.body       the request body, when not short printable text
    request.bin        the request's bytes (other protocols)
    preceding.bin      what the client sent before it in the session (other protocols)
    session.pcap       the captured session (see ``SliceMode``: not always written)
    reproducer.json    the reproducer as data

Every text file is redacted; only ``session.pcap`` holds raw bytes. A run's folder holds one
folder per capture (named after the capture file), ``index.md`` and ``index.json``, and a marker
file: a folder holding the marker is emptied before a run writes into it again; any other
non-empty folder is refused. A capture's folder is named after its file with dots made underscores
(``traffic_pcap_gz``): a folder named like a capture file would read as one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from ..compare import Exchange, Finding, HttpRequest, RawMessage, exchanges_from_capture
from ..errors import UsageError
from .model import (
    README,
    REQUEST_SCRIPT,
    SLICE_FILE,
    Example,
    Reproducer,
    ReproducerConfig,
    ReproducerSet,
    SliceMode,
    choose_examples,
)
from .readme import RequestPart, index_text, readme_text
from .redaction import redact_bytes, redact_request, scan_session
from .shell import BODY_FILE, HEADERS_FILE, RAW_WAIT, curl_command, raw_command, raw_lines, rerun_lines
from .slicing import MAX_KEPT_BYTES, SessionSlice, slice_sessions

MARKER = ".pytest-tcpcopy-reproducers"
INDEX_FORMAT = "pytest-tcpcopy-reproducers"
_SLUG = re.compile(r"[^a-z0-9]+")


def write_reproducers(
    directory: str | os.PathLike[str],
    captures: Iterable[tuple[str | os.PathLike[str], Iterable[Finding]]],
    config: ReproducerConfig,
) -> ReproducerSet:
    """Write the reproducers of a run into ``directory``: for each (capture, its findings), the
    examples ``choose_examples`` picks, within ``config``'s bounds for the whole run; then the
    index. ``directory`` must be new, empty, or a reproducer folder of an earlier run (emptied)."""
    run = RunReproducers(directory)
    run.prepare()
    for capture, findings in captures:
        run.add(capture, findings, config)
    write_index(run.written)
    return run.written


class RunReproducers:
    """The reproducers of one run, written capture by capture as each is judged, into one folder:
    emptied (see ``_prepare``) before the first is written, the index rewritten after each
    capture; ``config.max_reproducers`` bounds them all together."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.written = ReproducerSet(Path(directory))
        self._prepared = False
        self._folders: set[str] = set()

    def prepare(self) -> None:
        if not self._prepared:
            _prepare(self.written.directory)
            self._prepared = True

    def add(self, capture: str | os.PathLike[str], findings: Iterable[Finding],
            config: ReproducerConfig) -> list[Reproducer]:  # fmt: skip
        """The reproducers of ``capture``'s ``findings`` (those the bound leaves room for)."""
        budget = max(0, config.max_reproducers - len(self.written.reproducers))
        examples, omitted = choose_examples(findings, config.per_finding, budget)
        self.written.omitted += omitted
        if not examples:
            return []
        self.prepare()
        folder = self.written.directory / _unique(Path(capture).name.replace(".", "_"), self._folders)
        written, problems = write_capture_reproducers(capture, examples, folder, config)
        self.written.reproducers += written
        self.written.problems += problems
        write_index(self.written)
        return written


def write_reproducer(
    capture: str | os.PathLike[str], example: Example, directory: str | os.PathLike[str], config: ReproducerConfig
) -> Reproducer:
    """Write one reproducer (a folder inside ``directory``) of ``example``; UsageError when the
    capture holds no such session."""
    written, problems = write_capture_reproducers(capture, [example], Path(directory), config)
    if problems:
        raise UsageError(problems[0])
    return written[0]


def write_capture_reproducers(
    capture: str | os.PathLike[str], examples: list[Example], folder: Path, config: ReproducerConfig
) -> tuple[list[Reproducer], list[str]]:
    """The reproducers of ``examples`` of one capture, in ``folder``, its sessions cut out in one
    pass; and the problems of examples that could not be written."""
    capture = Path(capture).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    keep = config.slices is not SliceMode.NEVER
    staging = {e.session: (folder / f".s{e.session:04d}.pcap" if keep else None) for e in examples}
    try:
        slices = slice_sessions(capture, staging, config.target.capture_ports)
        written, problems = [], []
        for example in examples:
            cut = slices[example.session]
            if not cut.found:
                problems.append(f"{capture.name}: no session {example.session} for {example.exchange_id} (sessions "
                                f"numbered with capture server ports {list(config.target.capture_ports) or 'from SYNs'})")  # fmt: skip
                continue
            written.append(_write_one(capture, example, cut, folder, config))
        return written, problems
    finally:
        for path in staging.values():
            if path is not None:
                path.unlink(missing_ok=True)


def write_index(reproducers: ReproducerSet) -> None:
    """``index.md`` and ``index.json`` of a run's reproducers, in its folder."""
    directory = reproducers.directory
    (directory / "index.md").write_text(index_text(reproducers))
    doc = {
        "format": INDEX_FORMAT,
        "version": 1,
        "reproducers": [r.to_json(relative_to=directory) for r in reproducers.reproducers],
        "omitted": reproducers.omitted,
        "problems": reproducers.problems,
    }
    (directory / "index.json").write_text(json.dumps(doc, indent=1) + "\n")


def _write_one(
    capture: Path, example: Example, cut: SessionSlice, folder: Path, config: ReproducerConfig
) -> Reproducer:
    redaction = config.redaction
    shown_id = redaction.scrub_text(example.exchange_id)
    directory = folder / _folder_name(example, shown_id)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    exchanges = exchanges_from_capture(cut.session) if cut.session is not None else []
    exchange, problem = _exchange(cut, exchanges, example)
    suffix = _repeat_suffix(exchanges, example.number) if exchange is not None else ""
    item = f"{exchange.id}{suffix}" if exchange is not None else None
    slice_file, slice_note = _slice(cut, exchanges, config)
    if slice_file is not None:
        assert cut.path is not None
        shutil.copyfile(cut.path, directory / slice_file)
    request, files = _request(exchange, cut, example, capture, redaction)
    if exchange is not None and request.command is None:
        problem = f"a {type(exchange.request).__name__} request (codec {exchange.codec}) has no bytes to send alone"
    for name, data in files.items():
        (directory / name).write_bytes(data)
    if REQUEST_SCRIPT in files:
        (directory / REQUEST_SCRIPT).chmod(0o755)
    commands: dict[str, str] = {}
    if request.command is not None:
        commands["request"] = request.command
    rerun_notes: tuple[str, ...] = ()
    if slice_file is not None:
        lines = rerun_lines(slice_file, item or "", config.target, redaction)
        if item is not None:
            commands["pytest"] = lines.pytest
        commands.update(pytest_all=lines.pytest_all, rig=lines.rig)
        rerun_notes = lines.notes
    whole = rerun_lines(str(capture), example.exchange_id + suffix, config.target, redaction, session=example.session)
    commands.update(capture_pytest=whole.pytest, capture_rig=whole.rig)
    rerun_notes = rerun_notes or whole.notes
    names = [README, *([slice_file] if slice_file else []), *files, "reproducer.json"]
    reproducer = Reproducer(capture, example.session, example.number, shown_id, example.findings, directory,
                            tuple(names), slice_file, slice_note, item and redaction.scrub_text(item), commands,
                            problem)  # fmt: skip
    diff = example.comparison.render() if example.comparison is not None else None
    (directory / README).write_text(readme_text(reproducer, request, rerun_notes, diff))
    doc = reproducer.to_json(relative_to=directory)
    (directory / "reproducer.json").write_text(json.dumps(doc, indent=1) + "\n")
    return reproducer


def _exchange(cut: SessionSlice, exchanges: list[Exchange], example: Example) -> tuple[Exchange | None, str | None]:
    """The example's exchange as found again in its session, or why it was not."""
    if cut.session is None:
        return None, f"the session is too large to parse here (over {MAX_KEPT_BYTES >> 20} MiB of payload)"
    if example.number >= len(exchanges):
        return None, f"the session holds {len(exchanges)} exchange(s), none numbered {example.number}"
    exchange = exchanges[example.number]
    if exchange.id.partition("-")[2] != example.exchange_id.partition("-")[2]:
        return None, (f"exchange {example.number} of the session reads as {exchange.id.partition('-')[2]!r}, not "
                      f"{example.exchange_id.partition('-')[2]!r}: were its sessions numbered with other capture "
                      "server ports?")  # fmt: skip
    return exchange, None


def _repeat_suffix(exchanges: list[Exchange], number: int) -> str:
    """`` [k]`` when the exchange's id is the k-th of its session (as the plugin names items)."""
    own = exchanges[number].id
    k = sum(1 for e in exchanges[: number + 1] if e.id == own)
    return f" [{k}]" if k > 1 else ""


def _slice(cut: SessionSlice, exchanges: list[Exchange], config: ReproducerConfig) -> tuple[str | None, str]:
    """Whether the capture file is written (its name), and a note saying why or why not."""
    mode = config.slices
    if mode is SliceMode.NEVER:
        return None, "slices: never"
    if mode is SliceMode.ALWAYS:
        return SLICE_FILE, "slices: always (the folder is as sensitive as the capture)"
    if cut.session is None:
        return None, "the session is too large to search for secrets; write it with slices: always"
    scan = scan_session(cut.session, exchanges, config.redaction)
    if scan.secret:
        return None, ("the redaction recognises a secret in the session's bytes; write it with slices: always "
                      "(the folder is then as sensitive as the capture)")  # fmt: skip
    if scan.unchecked is not None:
        return None, f"{scan.unchecked}; write it with slices: always"
    return SLICE_FILE, "the redaction recognises no secret in the session's bytes"


def _request(
    exchange: Exchange | None, cut: SessionSlice, example: Example, capture: Path, redaction
) -> tuple[RequestPart, dict[str, bytes]]:
    """What the README says of the request, and the files that carry it (name -> bytes)."""
    if exchange is None:
        return RequestPart(None, (), ()), {}
    head = (f"#!/bin/sh\n# The request of {redaction.scrub_text(example.exchange_id)} (exchange {example.number} of "
            f"session {example.session} of {capture.name}), sent to $SUT (host:port).\n"
            'set -eu\ncd "$(dirname "$0")"\n')  # fmt: skip
    request = exchange.request
    if isinstance(request, HttpRequest):
        redacted = redact_request(request, redaction)
        curl = curl_command(redacted)
        files, described = {}, []
        if curl.headers_file is not None:
            files[HEADERS_FILE] = curl.headers_file
            described.append(
                (HEADERS_FILE, "request headers curl reads (-H @file): bytes a shell line should not carry")
            )
        if curl.body_file is not None:
            files[BODY_FILE] = curl.body_file
            described.append((BODY_FILE, "the request body (redacted)"))
        notes = list(redacted.notes)
        if redacted.body is None and request.body:
            notes.append("the body is not sent (see above)")
        if curl.variables:
            notes.append("set " + ", ".join(curl.variables) + " to send real values of the secret headers "
                         "(unset: [redacted] is sent)")  # fmt: skip
        if curl.dropped:
            notes.append("not sent (hop-by-hop or framing, curl does its own): " + ", ".join(curl.dropped))
        if exchange.number:
            notes.append(
                f"the session's {exchange.number} earlier request(s) are not sent; the session re-run sends them"
            )
        files = {REQUEST_SCRIPT: _script(head + "exec " + curl.text), **files}
        return RequestPart(curl.text, tuple(notes), tuple(described)), files
    if not isinstance(request, RawMessage):
        return RequestPart(None, (), ()), {}
    data = request.data
    files = {"request.bin": redact_bytes(data, redaction)}
    described = [("request.bin", "the request's bytes (redacted)")]
    sent = ["request.bin"] if data else []
    assert cut.session is not None
    before = cut.session.client_stream.data()[: request.offset]
    if before:
        files["preceding.bin"] = redact_bytes(before, redaction)
        described.append(("preceding.bin", "what the client sent before it in the session (redacted)"))
        sent.insert(0, "preceding.bin")
    notes = ["the script sends " + (" then ".join(sent) if sent else "nothing (the server speaks first)") +
             f", closes its sending side, and prints what the SUT sends for {RAW_WAIT} s; with socat, else nc, "
             "else python3"]  # fmt: skip
    files = {REQUEST_SCRIPT: _script(head + raw_command(sent)), **files}
    return RequestPart(raw_lines(sent), tuple(notes), tuple(described)), files


def _script(text: str) -> bytes:
    """A script's bytes: latin-1, so a target's bytes (decoded as latin-1) are sent as captured."""
    return (text + "\n").encode("latin-1")


def _folder_name(example: Example, shown_id: str) -> str:
    slug = _SLUG.sub("-", shown_id.partition("-")[2].lower()).strip("-")[:40].rstrip("-")
    return f"s{example.session:04d}-{example.number:03d}" + (f"-{slug}" if slug else "")


def _unique(name: str, used: set[str]) -> str:
    candidate, k = name, 1
    while candidate in used:
        k += 1
        candidate = f"{name}-{k}"
    used.add(candidate)
    return candidate


def _prepare(directory: Path) -> None:
    """An empty folder to write into (see the module comment)."""
    if directory.exists():
        if not directory.is_dir():
            raise UsageError(f"{directory}: the reproducers' folder is a file")
        entries = list(directory.iterdir())
        if entries and not (directory / MARKER).exists():
            raise UsageError(f"{directory}: not empty and not a folder of pytest-tcpcopy reproducers; "
                             "name a new or empty folder")  # fmt: skip
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("reproducers written by pytest-tcpcopy; emptied by the next run that writes here\n")
