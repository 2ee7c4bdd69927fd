"""Where the benchmark captures are: $TCPCOPY_SHARED/bench, shared/bench beside the checkout, or
/work/shared/bench (shared/bench/README.md describes them and the anchor's figures)."""

from __future__ import annotations

import os
from pathlib import Path


def bench_dir() -> Path:
    here = Path(__file__).resolve().parents[1]
    for candidate in (os.environ.get("TCPCOPY_SHARED"), here.parent / "shared", "/work/shared"):
        if candidate and (Path(candidate) / "bench" / "short.pcap.gz").exists():
            return Path(candidate) / "bench"
    raise SystemExit("benchmark captures not found: set TCPCOPY_SHARED to the folder holding bench/")
