"""Recorded baselines (``--tcpcopy-baseline dir:PATH``): one reviewable JSON file per session.

``PATH/<capture file name>/s0042.json`` holds what the SUT answered to captured session 42: the
response bytes (as text when they are UTF-8, else base64), the request/response timings that split
them into exchanges, and the exchange ids for a reviewer. Keys are sorted and indented, so a
re-record that changes nothing changes no byte. Updating writes the sessions that ran and never
deletes files of sessions that did not.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING

from .compare import exchanges_from_replay

if TYPE_CHECKING:
    from .runner import CaptureIndex

_FORMAT = 1


class RecordedBaseline:
    def __init__(self, root: Path, capture: Path) -> None:
        self.folder = root / capture.name

    def path(self, session: int) -> Path:
        return self.folder / f"s{session:04d}.json"

    def load(self, session: int) -> dict | None:
        """The stored result of ``session`` in the copier's result form, or None if none is stored."""
        path = self.path(session)
        if not path.exists():
            return None
        doc = json.loads(path.read_text())
        if doc.get("format") != _FORMAT:
            raise ValueError(f"{path}: unknown recorded-baseline format {doc.get('format')!r}")
        raw = doc["response"].encode() if doc["response_encoding"] == "utf-8" else base64.b64decode(doc["response"])
        return {
            "session": session,
            "copy": 0,
            "outcome": doc["outcome"],
            "reason": doc.get("reason", ""),
            "exchanges": doc["timings"],
            "response": base64.b64encode(raw).decode(),
            "response_bytes": len(raw),
        }

    def update(self, results: dict[int, dict], index: "CaptureIndex") -> list[Path]:
        """Record the given sessions' results (those that ran); return the files written."""
        written = []
        self.folder.mkdir(parents=True, exist_ok=True)
        for session, result in sorted(results.items()):
            if session not in index.selected:
                continue
            raw = base64.b64decode(result.get("response", ""))
            try:
                text, encoding = raw.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                text, encoding = base64.b64encode(raw).decode(), "base64"
            doc = {
                "format": _FORMAT,
                "session": session,
                "captured_client": result["captured_client"],
                "outcome": result["outcome"],
                "reason": result.get("reason", ""),
                "exchange_ids": [e.id for e in exchanges_from_replay(index.sessions[session], result)],
                "timings": [{k: t[k] for k in ("request_offset", "request_bytes", "response_bytes")}
                            for t in result.get("exchanges", [])],  # fmt: skip
                "response_encoding": encoding,
                "response": text,
            }
            path = self.path(session)
            path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
            written.append(path)
        return written
