"""``pytest-tcpcopy inspect CAPTURE``: the TCP sessions of a capture, as a table or as JSON.

The capture is streamed once through the flow assembler without keeping stream bytes, and each
session's row is written as soon as it and every session opened before it are known: memory
follows the assembler's live sessions and the rows held back for index order, never the
capture. The totals are added up row by row.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import TextIO

from ..capture import CaptureStats, CaptureTruncatedWarning, open_capture
from ..flows import CapturedSession, CloseKind, FlowAssembler
from ..flows.assembler import FlowLimitError


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session as ``inspect`` reports it; ``gaps`` counts missing byte ranges, both ways."""

    index: int
    client: str
    server: str
    packets: int
    client_bytes: int
    server_bytes: int
    handshake: bool
    close: str
    retransmitted: int
    out_of_order: int
    gaps: int
    first_ts: float
    last_ts: float

    @classmethod
    def of(cls, s: CapturedSession) -> SessionRow:
        return cls(
            index=s.index,
            client=str(s.client),
            server=str(s.server),
            packets=s.packets,
            client_bytes=len(s.client_stream),
            server_bytes=len(s.server_stream),
            handshake=s.handshake,
            close=s.close.value,
            retransmitted=s.retransmitted,
            out_of_order=s.out_of_order,
            gaps=s.gaps,
            first_ts=s.first_ts,
            last_ts=s.last_ts,
        )


class Totals:
    """The totals line of a summary, added up row by row."""

    def __init__(self) -> None:
        self.sessions = self.packets = self.client_bytes = self.server_bytes = self.handshakes = 0
        self.retransmitted = self.out_of_order = self.gaps = 0
        self.closes: Counter = Counter()

    def add(self, row: SessionRow) -> None:
        self.sessions += 1
        self.packets += row.packets
        self.client_bytes += row.client_bytes
        self.server_bytes += row.server_bytes
        self.handshakes += row.handshake
        self.retransmitted += row.retransmitted
        self.out_of_order += row.out_of_order
        self.gaps += row.gaps
        self.closes[row.close] += 1

    def to_json(self, ignored: int) -> dict[str, int]:
        return {
            "sessions": self.sessions,
            "packets": self.packets,
            "client_bytes": self.client_bytes,
            "server_bytes": self.server_bytes,
            "handshakes": self.handshakes,
            **{f"close_{kind.value}": self.closes[kind.value] for kind in CloseKind},
            "retransmitted": self.retransmitted,
            "out_of_order": self.out_of_order,
            "gaps": self.gaps,
            "ignored_packets": ignored,
        }


@dataclass(slots=True)
class CaptureSummary:
    """What ``summarize`` read: the capture, its rows as they are handed out, the totals and
    notes once every row was (``rows`` is a one-pass iterator)."""

    capture: str
    rows: Iterator[SessionRow]
    totals: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def summarize(path: str, server_ports: list[int]) -> CaptureSummary:
    """Read the capture once, handing out its sessions' rows in index order as they are known;
    ``totals`` and ``notes`` are filled in once the rows are exhausted. Raises CaptureError for
    bad input (at once for a missing or non-capture file)."""
    reader = open_capture(path)
    summary = CaptureSummary(path, iter(()))
    summary.rows = _rows(reader, server_ports, summary)
    return summary


def _rows(reader, server_ports: list[int], summary: CaptureSummary) -> Iterator[SessionRow]:
    """The rows in index order: a session that ends early waits for those opened before it
    (held: the capture's reordering window, not the capture)."""
    assembler = FlowAssembler(server_ports, keep_streams=False)
    feed = assembler.feed
    ignored = 0
    held: dict[int, SessionRow] = {}
    following = 0  # the next index to hand out
    totals = Totals()
    with warnings.catch_warnings():
        # A truncated tail is reported as a note instead.
        warnings.simplefilter("ignore", CaptureTruncatedWarning)
        with reader:
            for pkt in reader:
                try:
                    routed = feed(pkt)
                except FlowLimitError as exc:
                    raise exc.in_file(summary.capture) from None
                if routed is None:
                    ignored += 1
                if assembler.has_finished():
                    for session in assembler.pop_finished():
                        held[session.index] = SessionRow.of(session)
                    while following in held:
                        row = held.pop(following)
                        totals.add(row)
                        yield row
                        following += 1
            rest = assembler.finish()
            rest.sort(key=_index)
            waiting = sorted(held.values(), key=_index, reverse=True)
            held.clear()
            for i, session in enumerate(rest):
                rest[i] = None  # each session dropped as its row is handed out
                while waiting and waiting[-1].index < session.index:
                    totals.add(waiting[-1])
                    yield waiting.pop()
                row = SessionRow.of(session)
                totals.add(row)
                yield row
            while waiting:
                totals.add(waiting[-1])
                yield waiting.pop()
    summary.totals = totals.to_json(ignored)
    summary.notes = _notes(reader.stats, ignored, server_ports)


def _index(item: CapturedSession | SessionRow) -> int:
    return item.index


def _notes(stats: CaptureStats, ignored: int, server_ports: list[int]) -> list[str]:
    notes = []
    if stats.truncated_tail:
        notes.append(
            f"truncated tail: {stats.truncated_tail}; every record before it was read"
        )
    if stats.truncated_packets:
        notes.append(
            f"{stats.truncated_packets} packets cut by the snap length: their missing bytes are gaps"
        )
    if stats.non_tcp:
        notes.append(f"{stats.non_tcp} non-TCP records skipped")
    if stats.unparsable:
        notes.append(
            f"{stats.unparsable} records with unparsable IP/TCP headers skipped"
        )
    if stats.fragments_dropped:
        notes.append(
            f"{stats.fragments_dropped} fragmented datagrams dropped (incomplete or bad)"
        )
    if ignored:
        ports = ", ".join(map(str, server_ports))
        notes.append(f"{ignored} TCP packets not on server port(s) {ports} ignored")
    return notes


_COLUMNS = (
    # header, SessionRow field or computed, right-aligned
    ("#", "index", True),
    ("client", "client", False),
    ("server", "server", False),
    ("packets", "packets", True),
    ("client B", "client_bytes", True),
    ("server B", "server_bytes", True),
    ("handshake", "handshake", False),
    ("close", "close", False),
    ("retrans", "retransmitted", True),
    ("ooo", "out_of_order", True),
    ("duration", "duration", True),
)


WIDTHS_FROM = 10_000  # rows whose cells set the table's column widths; later rows use them


def render_table(summary: CaptureSummary, out: TextIO) -> None:
    """An aligned table, one line per session, then a totals line and the notes, written to
    ``out`` as the rows come (the columns are as wide as the first ``WIDTHS_FROM`` rows need)."""
    out.write(f"capture: {summary.capture}\n")
    first = list(islice(summary.rows, WIDTHS_FROM))
    cells = [[_cell(row, name) for _, name, _ in _COLUMNS] for row in first]
    widths = [max([len(header)] + [len(line[i]) for line in cells]) for i, (header, _, _) in enumerate(_COLUMNS)]
    def line(values: list[str]) -> None:
        parts = (cell.rjust(w) if right else cell.ljust(w) for cell, w, (_, _, right) in zip(values, widths, _COLUMNS))
        out.write("  ".join(parts).rstrip() + "\n")

    widths[1] = max(widths[1], len(f"{len(first)} sessions"))  # the totals line's
    line([header for header, _, _ in _COLUMNS])
    for values in cells:
        line(values)
    for row in summary.rows:
        line([_cell(row, name) for _, name, _ in _COLUMNS])
    t = summary.totals
    line(["total", f"{t['sessions']} sessions", "", str(t["packets"]), str(t["client_bytes"]), str(t["server_bytes"]),
          f"{t['handshakes']}/{t['sessions']}", "", str(t["retransmitted"]), str(t["out_of_order"]), ""])  # fmt: skip
    closes = ", ".join(f"{kind.value} {t['close_' + kind.value]}" for kind in CloseKind)
    out.write(f"closed: {closes}; gaps: {t['gaps']}\n")
    out.writelines(f"note: {note}\n" for note in summary.notes)


def write_json(summary: CaptureSummary, out: TextIO) -> None:
    """One JSON object (``capture``, ``sessions``, ``totals``, ``notes``), written to ``out`` as
    the rows come."""
    out.write(f'{{\n  "capture": {json.dumps(summary.capture)},\n  "sessions": [')
    for n, row in enumerate(summary.rows):
        out.write(("," if n else "") + "\n    " + json.dumps(asdict(row)))
    out.write(f'\n  ],\n  "totals": {json.dumps(summary.totals)},\n  "notes": {json.dumps(summary.notes)}\n}}\n')


def _cell(row: SessionRow, field: str) -> str:
    if field == "duration":
        return f"{row.last_ts - row.first_ts:.3f}s"
    if field == "handshake":
        return "yes" if row.handshake else "no"
    return str(getattr(row, field))


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"expected a TCP port 1-65535, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    summary = summarize(args.capture, args.port)
    if args.json:
        write_json(summary, sys.stdout)
    else:
        render_table(summary, sys.stdout)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="list the TCP sessions of a capture",
        description="List the TCP sessions of a capture (pcap or pcapng, optionally gzipped): "
        "endpoints, packets, bytes each way, handshake, how it closed, retransmissions, "
        "out-of-order segments and duration.",
    )
    parser.add_argument("capture", metavar="CAPTURE", help="capture file")
    parser.add_argument(
        "--port",
        type=_port,
        action="append",
        default=[],
        metavar="N",
        help="server port (repeatable); packets on other ports are ignored. Without it the "
        "server is the side that received the SYN, or for sessions already running when the "
        "capture began, the lower port",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead"
    )
    parser.set_defaults(func=run)
