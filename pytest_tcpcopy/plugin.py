"""pytest glue: maps options, markers and fixtures onto the library. Nothing else imports pytest."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tcpcopy", "replay captured production traffic (pytest-tcpcopy)")
    group.addoption(
        "--tcpcopy-pcap",
        action="append",
        default=None,
        metavar="CAPTURE",
        help="capture file(s) of production traffic to replay (pcap, pcapng, optionally gzipped)",
    )
    parser.addini("tcpcopy_pcap", "capture file(s) to replay", type="linelist", default=[])
