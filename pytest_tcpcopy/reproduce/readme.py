"""The text a person reads: each reproducer's README.md and the run's index.md.

Only redacted values reach here: finding keys and diffs as the comparison library renders them
(redacted there), commands built from the redacted request, notes that name what was left out
without its value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .model import README, REQUEST_SCRIPT, Reproducer, ReproducerSet

_BACKTICKS = re.compile(r"`+")


@dataclass(frozen=True, slots=True)
class RequestPart:
    """What the README says of the request: the script's command, notes, and the files it reads."""

    command: str | None  # None: the request could not be written (the README says why)
    notes: tuple[str, ...]
    files: tuple[tuple[str, str], ...]  # (file name, what it holds)


SLICE_WARNING = (
    "It holds the session's raw bytes, both directions, unredacted: it is as sensitive as the capture "
    "it was cut from. Keep it where the capture may be kept."
)


def readme_text(reproducer: Reproducer, request: RequestPart, rerun_notes: Sequence[str], diff: str | None) -> str:
    r = reproducer
    lines = [f"# Reproducer: {_inline(r.exchange_id)}", ""]
    for ref in r.findings:
        lines.append(
            f"- Finding: {_inline(ref.key.render())}, {ref.count} exchange{'s' if ref.count != 1 else ''} in the run"
        )
    lines.append(f"- Exchange: {_inline(r.exchange_id)}, exchange {r.number} of session {r.session} "
                 f"of {_inline(str(r.capture))}")  # fmt: skip
    if r.item is not None and r.slice_file:
        lines.append(f"- In this folder's capture file: {_inline(f'{r.slice_file}::{r.item}')}")
    if diff:
        lines += ["", "## What differed", "", *_fenced(diff, "text")]
    lines += ["", "## The request", ""]
    if request.command is None:
        lines.append(f"Not written: {_sentence(r.problem or '')}")
    else:
        lines += ["Set `SUT` to the `host:port` of the system under test and run the script from anywhere:", "",
                  f"    SUT=127.0.0.1:8080 sh {REQUEST_SCRIPT}", "", "By hand, from this folder:", "",
                  *_fenced(request.command, "sh")]  # fmt: skip
        if request.notes:
            lines += ["", *[f"- {note}" for note in request.notes]]
    lines += ["", "## Re-running the session", ""]
    if r.slice_file:
        about = (f"`{r.slice_file}` is the captured session (both directions, every packet, the capture's "
                 f"timestamps). {SLICE_WARNING}")  # fmt: skip
        lines += [about, "", "From this folder (the netns backend runs as root):", ""]
        if "pytest" in r.commands:
            lines += ["The exchange judged again as the run judged it:", "", *_fenced(r.commands["pytest"], "sh"), ""]
        lines += ["Every exchange of the session:", "", *_fenced(r.commands["pytest_all"], "sh"), "",
                  "The replay alone, the SUT's responses in its JSON output:", "", *_fenced(r.commands["rig"], "sh")]  # fmt: skip
    else:
        lines.append(f"No capture file of the session here: {_sentence(r.slice_note)}")
    whole = ("From the original capture (the pytest line replays all of it and judges this exchange; the rig "
             "line replays this session only):")  # fmt: skip
    lines += ["", whole, "", *_fenced(r.commands["capture_pytest"] + "\n" + r.commands["capture_rig"], "sh")]
    if rerun_notes:
        lines += ["", *[f"- {note}" for note in rerun_notes]]
    lines += ["", "## Files", ""]
    lines += [f"- `{name}`: {what}" for name, what in _files(r, request)]
    return "\n".join(lines) + "\n"


def _files(r: Reproducer, request: RequestPart) -> list[tuple[str, str]]:
    files = [(README, "this page")]
    if r.slice_file:
        files.append((r.slice_file, "the captured session (pcap, raw IP): as sensitive as the capture"))
    if request.command is not None:
        files.append((REQUEST_SCRIPT, "the request, sent to `$SUT`"))
    files += list(request.files)
    files.append(("reproducer.json", "this reproducer as data"))
    return files


def index_text(reproducers: ReproducerSet) -> str:
    """The run's index: one row per reproducer, with its finding(s) and folder."""
    intro = ("One folder per example exchange of a finding; its README.md says what differed and how to "
             "send the request again (curl, or raw bytes) and re-run the session.")  # fmt: skip
    lines = ["# Reproducers", "", intro, ""]
    if reproducers.reproducers:
        lines += ["| finding | exchanges | example | reproducer | capture file |", "|---|---|---|---|---|"]
        for r in reproducers.reproducers:
            folder = r.directory.relative_to(reproducers.directory).as_posix()
            for ref in r.findings or ():
                lines.append(f"| {_cell(ref.key.render())} | {ref.count} | {_cell(r.exchange_id)} | "
                             f"[{_cell(folder)}]({folder}/{README}) | {'yes' if r.slice_file else 'no'} |")  # fmt: skip
    else:
        lines.append("No reproducer was written.")
    if reproducers.omitted:
        lines += ["", f"{reproducers.omitted} more example(s) left out: past the bound of reproducers per run."]
    if reproducers.problems:
        lines += ["", *[f"- {_cell(problem)}" for problem in reproducers.problems]]
    return "\n".join(lines) + "\n"


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else text + "."


def _fenced(text: str, language: str) -> list[str]:
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + language, text, fence]


def _inline(text: str) -> str:
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
