"""A capture read through once before anything is started for it.

Commands that start a SUT for a capture (``netns-run``, ``docker-run``) check it first, so that a
file the copier would refuse (corrupt, not a capture, a decompression bomb: see ``source``) fails
in seconds with its reason instead of after a SUT, its namespace or its containers are up. The
check decodes every record as the copier will, streaming: memory stays flat whatever the file's
size, and the time is the copier's own ingest time (about a second per 100,000 packets in pure
Python, a few times less compiled).
"""

from __future__ import annotations

import os

from ..errors import CaptureError
from .reader import open_capture
from .stats import CaptureStats


def check_capture(path: str | os.PathLike[str]) -> CaptureStats:
    """Read the whole capture; its counts, or CaptureError for a file the copier would refuse or
    one without a single TCP segment (nothing to replay)."""
    with open_capture(path) as reader:
        for _ in reader.batches():
            pass
    if reader.stats.tcp_packets == 0:
        raise CaptureError(
            os.fspath(path), None, f"no TCP segment in {reader.stats.records} records: nothing to replay"
        )
    return reader.stats
