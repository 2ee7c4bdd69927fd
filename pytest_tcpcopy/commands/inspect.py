"""``pytest-tcpcopy inspect CAPTURE``: the TCP sessions of a capture, as a table or as JSON.

The capture is streamed once through the flow assembler without keeping stream bytes, so any
size of file is summarised in memory proportional to its live sessions plus one row per session.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter
from dataclasses import asdict, dataclass

from ..capture import CaptureStats, CaptureTruncatedWarning, open_capture
from ..flows import CapturedSession, CloseKind, FlowAssembler


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


@dataclass(frozen=True, slots=True)
class CaptureSummary:
    capture: str
    sessions: list[SessionRow]  # by index
    ignored_packets: int  # TCP packets on no configured server port
    notes: list[str]

    def totals(self) -> dict[str, int]:
        rows = self.sessions
        closes = Counter(r.close for r in rows)
        return {
            "sessions": len(rows),
            "packets": sum(r.packets for r in rows),
            "client_bytes": sum(r.client_bytes for r in rows),
            "server_bytes": sum(r.server_bytes for r in rows),
            "handshakes": sum(r.handshake for r in rows),
            **{f"close_{kind.value}": closes[kind.value] for kind in CloseKind},
            "retransmitted": sum(r.retransmitted for r in rows),
            "out_of_order": sum(r.out_of_order for r in rows),
            "gaps": sum(r.gaps for r in rows),
            "ignored_packets": self.ignored_packets,
        }

    def to_json(self) -> dict:
        return {
            "capture": self.capture,
            "sessions": [asdict(r) for r in self.sessions],
            "totals": self.totals(),
            "notes": self.notes,
        }


def summarize(path: str, server_ports: list[int]) -> CaptureSummary:
    """Read the capture once and summarise its sessions; raises CaptureError for bad input."""
    assembler = FlowAssembler(server_ports, keep_streams=False)
    feed = assembler.feed
    rows: list[SessionRow] = []
    ignored = 0
    with warnings.catch_warnings():
        # A truncated tail is reported as a note instead.
        warnings.simplefilter("ignore", CaptureTruncatedWarning)
        with open_capture(path) as reader:
            for pkt in reader:
                if feed(pkt) is None:
                    ignored += 1
                if assembler.has_finished():
                    rows.extend(SessionRow.of(s) for s in assembler.pop_finished())
            rows.extend(SessionRow.of(s) for s in assembler.finish())
    rows.sort(key=lambda r: r.index)
    notes = _notes(reader.stats, ignored, server_ports)
    return CaptureSummary(path, rows, ignored, notes)


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


def render_table(summary: CaptureSummary) -> str:
    """An aligned table, one line per session, then a totals line and the notes."""
    lines = [[header for header, _, _ in _COLUMNS]]
    for row in summary.sessions:
        lines.append([_cell(row, field) for _, field, _ in _COLUMNS])
    t = summary.totals()
    lines.append(
        [
            "total",
            f"{t['sessions']} sessions",
            "",
            str(t["packets"]),
            str(t["client_bytes"]),
            str(t["server_bytes"]),
            f"{t['handshakes']}/{t['sessions']}",
            "",
            str(t["retransmitted"]),
            str(t["out_of_order"]),
            "",
        ]
    )
    widths = [max(len(line[i]) for line in lines) for i in range(len(_COLUMNS))]
    out = [f"capture: {summary.capture}"]
    for line in lines:
        cells = (
            cell.rjust(w) if right else cell.ljust(w)
            for cell, w, (_, _, right) in zip(line, widths, _COLUMNS)
        )
        out.append("  ".join(cells).rstrip())
    closes = ", ".join(f"{kind.value} {t['close_' + kind.value]}" for kind in CloseKind)
    out.append(f"closed: {closes}; gaps: {t['gaps']}")
    out.extend(f"note: {note}" for note in summary.notes)
    return "\n".join(out)


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
        print(json.dumps(summary.to_json(), indent=2))
    else:
        print(render_table(summary))
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
