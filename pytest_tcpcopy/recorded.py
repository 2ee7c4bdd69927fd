"""Recorded baselines (``--tcpcopy-baseline dir:PATH``): one reviewable JSON file per session.

``PATH/<capture file name>/s0042.json`` holds what the SUT answered to captured session 42: the
response bytes (as text when they are UTF-8, else base64), the request/response timings that split
them into exchanges, and the exchange ids for a reviewer. Keys are sorted and indented, so a
re-record that changes nothing changes no byte. Updating writes each session as it is judged
(``write``) and never deletes files of sessions that did not run.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from .compare import exchanges_from_replay
from .flows.session import CapturedSession
from .replay.results import ExchangeTiming, Outcome, SessionResult

_FORMAT = 1


class RecordedBaseline:
    def __init__(self, root: Path, capture: Path) -> None:
        self.folder = root / capture.name

    def path(self, session: int) -> Path:
        return self.folder / f"s{session:04d}.json"

    def load(self, session: int) -> SessionResult | None:
        """The stored result of ``session`` as a copier result, or None if none is stored."""
        path = self.path(session)
        if not path.exists():
            return None
        doc = json.loads(path.read_text())
        if doc.get("format") != _FORMAT:
            raise ValueError(f"{path}: unknown recorded-baseline format {doc.get('format')!r}")
        raw = doc["response"].encode() if doc["response_encoding"] == "utf-8" else base64.b64decode(doc["response"])
        return SessionResult(
            session,
            0,
            doc.get("captured_client", ""),
            "",
            "",
            outcome=Outcome(doc["outcome"]),
            reason=doc.get("reason", ""),
            exchanges=[ExchangeTiming(t["request_offset"], t["request_bytes"], 0.0, response_bytes=t["response_bytes"])
                       for t in doc["timings"]],  # fmt: skip
            response_chunks={0: raw} if raw else {},
            response_bytes=len(raw),
        )

    def write(self, session: CapturedSession, result: SessionResult) -> Path:
        """Record ``result``, the replay of captured ``session``; return the file written."""
        raw = result.response_data()
        try:
            text, encoding = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(raw).decode(), "base64"
        doc = {
            "format": _FORMAT,
            "session": session.index,
            "captured_client": str(result.captured_client),
            "outcome": result.outcome.value,
            "reason": result.reason,
            "exchange_ids": [e.id for e in exchanges_from_replay(session, result)],
            "timings": [{"request_offset": t.request_offset, "request_bytes": t.request_bytes,
                         "response_bytes": t.response_bytes} for t in result.exchanges],  # fmt: skip
            "response_encoding": encoding,
            "response": text,
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(session.index)
        path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        return path
