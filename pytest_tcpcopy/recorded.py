"""Recorded baselines (``--tcpcopy-baseline dir:PATH``): one reviewable JSON file per session.

``PATH/<capture file name>/s0042.json`` holds what the SUT answered to captured session 42,
exchange by exchange, each response decoded and readable (``recorded_format``)::

    {
      "format": 2,
      "session": 42,
      "client": "10.1.0.7:40312",
      "outcome": "complete",
      "reason": "",
      "exchanges": [
        {
          "exchange": "s0042-GET /api/users/2",
          "codec": "http",
          "complete": true,
          "cut": null,
          "response_end": "framing",
          "response": {"status": "HTTP/1.1 200 OK", "headers": [...], "body": {"json": {...}}}
        }
      ]
    }

- ``client`` is the captured client endpoint: a file of another capture's session 42 (the
  capture was re-recorded) is not used, and is reported as recorded for another session.
- ``complete``, ``cut`` and ``response_end`` are the replay's own account of each response
  (``replay.results``); a cut response is loaded as a baseline exchange that is not clean, so
  it is never compared. ``malformed`` says why an exchange was not a clean pair (no response...).
- The same bytes are written for the same answers: keys in a fixed order, JSON bodies' keys
  sorted, volatile header values masked, secrets redacted. A file whose recording differs only
  in what varies between two replays of the same answers (which side closed first: ``reason``,
  ``response_end``) is left as it is, so a re-record that changes nothing touches no file and a
  review diff shows the changed answers only.

An update run ``write``s each session a run replays (of its sample and filter) as it is judged,
leaving a file that holds the same answers untouched, then removes the files of sessions the
capture no longer has (``unused``: an index past its sessions, or recorded for another client)
unless told to keep them, and never the files of sessions the run did not replay; it says how
many files it wrote, left unchanged and removed (``UpdateCounts``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .compare import DiffConfig, Exchange, RawMessage, exchanges_from_replay
from .flows.session import CapturedSession
from .recorded_format import ResponseFormat
from .replay.results import ExchangeTiming, Outcome, SessionResult

FORMAT = 2
_FILE = re.compile(r"s(\d{4,})\.json")


@dataclass(frozen=True, slots=True)
class RecordedExchange:
    """One exchange of a replay as a recording keeps it: the exchange and its completeness."""

    exchange: Exchange
    cut: str | None
    response_end: str | None


@dataclass(frozen=True, slots=True)
class Recording:
    """What a recorded baseline holds for one session: its exchanges, or why there are none."""

    exchanges: list[Exchange] | None
    missing: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateCounts:
    written: list[Path]
    unchanged: list[Path]
    removed: list[Path]

    def render(self, folder: Path) -> str:
        return (f"recorded baseline {folder}: {len(self.written)} written, {len(self.unchanged)} unchanged, "
                f"{len(self.removed)} removed")  # fmt: skip


def recorded_exchanges(session: CapturedSession, result: SessionResult) -> list[RecordedExchange]:
    """The exchanges of ``result`` (a replay of ``session``), each with the completeness of its
    response: the timing of the request that starts it, else the session's outcome."""
    timings = sorted(result.exchanges, key=lambda t: t.request_offset)
    out = []
    for exchange in exchanges_from_replay(session, result):
        timing = _timing_of(exchange, timings)
        if timing is not None:
            out.append(RecordedExchange(exchange, timing.cut, timing.response_end))
        else:
            done = result.outcome is Outcome.COMPLETE
            out.append(RecordedExchange(exchange, None if done else f"{result.outcome.value}: {result.reason}", None))
    return out


def _timing_of(exchange: Exchange, timings: list[ExchangeTiming]) -> ExchangeTiming | None:
    offset = getattr(exchange.request, "offset", None)
    if offset is None:
        return None
    found = None
    for timing in timings:
        if timing.request_offset > offset:
            break
        found = timing
    return found


class RecordedBaseline:
    """The recordings of one capture under ``root``, written and read for comparisons made with
    ``config`` (its redaction, its ignored headers)."""

    def __init__(self, root: Path, capture: Path, config: DiffConfig | None = None) -> None:
        self.folder = Path(root) / Path(capture).name
        self.format = ResponseFormat(config or DiffConfig())

    def path(self, session: int) -> Path:
        return self.folder / f"s{session:04d}.json"

    def load(self, session: CapturedSession, production: list[Exchange]) -> Recording:
        """The recorded exchanges of ``session``; requests are the capture's (``production``)."""
        path = self.path(session.index)
        if not path.exists():
            return Recording(None, f"no recording of this session ({path})")
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            return Recording(None, f"{path} cannot be read: {exc}")
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else None
            return Recording(None, f"{path} is in recorded-baseline format {found!r}, not {FORMAT}")
        if doc.get("client") != str(session.client):
            return Recording(None, f"{path} was recorded for another session (client {doc.get('client')}, "
                                   f"this capture's is {session.client}): the capture changed")  # fmt: skip
        requests = {e.number: e.request for e in production}
        exchanges = []
        for number, entry in enumerate(doc.get("exchanges", ())):
            response = self.format.message(entry["response"]) if entry.get("response") is not None else None
            malformed = entry.get("malformed")
            if entry.get("cut"):
                malformed = f"recorded response cut: {entry['cut']}"
            request = requests.get(number, RawMessage(b""))
            exchanges.append(Exchange(session.index, number, request, response, entry.get("codec", "http"), malformed))
        return Recording(exchanges)

    def document(self, session: CapturedSession, result: SessionResult) -> dict:
        """The recording of ``result``, a replay of ``session``."""
        scrub = self.format.redaction.scrub_text
        exchanges = []
        for recorded in recorded_exchanges(session, result):
            exchange = recorded.exchange
            entry = {
                "exchange": exchange.id,
                "codec": exchange.codec,
                "complete": recorded.cut is None,
                "cut": None if recorded.cut is None else scrub(recorded.cut),
                "response_end": recorded.response_end,
            }
            if exchange.malformed:
                entry["malformed"] = scrub(exchange.malformed)
            entry["response"] = None if exchange.response is None else self.format.document(exchange.response)
            exchanges.append(entry)
        return {
            "format": FORMAT,
            "session": session.index,
            "client": str(session.client),
            "outcome": result.outcome.value,
            "reason": scrub(result.reason),
            "exchanges": exchanges,
        }

    def write(self, session: CapturedSession, result: SessionResult) -> bool:
        """Record ``result``, a replay of ``session``; False when the file already held the same
        answers (it is left untouched)."""
        doc = self.document(session, result)
        path = self.path(session.index)
        if _settled(_read(path)) == _settled(doc):
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return True

    def unused(self, sessions: int, clients: Mapping[int, str]) -> list[Path]:
        """Recordings of sessions a capture of ``sessions`` sessions does not have: an index past
        them, or a file recorded for another client than ``clients`` (by session index) names.
        A session ``clients`` does not name (not replayed) keeps its file."""
        if not self.folder.is_dir():
            return []
        out = []
        for path in sorted(self.folder.iterdir()):
            match = _FILE.fullmatch(path.name)
            if match is None:
                continue
            session = int(match.group(1))
            client = clients.get(session)
            if session >= sessions or (client is not None and _client_of(path) not in (None, client)):
                out.append(path)
        return out


def _read(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _client_of(path: Path) -> str | None:
    doc = _read(path)
    return None if doc is None else doc.get("client")


def _settled(doc: dict | None) -> dict | None:
    """``doc`` without what varies between two replays of the same answers (which side closed
    first: the session's ``reason``, an exchange's ``response_end``)."""
    if doc is None:
        return None
    exchanges = [{k: v for k, v in e.items() if k != "response_end"} for e in doc.get("exchanges", ())]
    return {**{k: v for k, v in doc.items() if k != "reason"}, "exchanges": exchanges}
