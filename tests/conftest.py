"""Shared test plumbing: prerequisites that skip on a laptop but fail under CI=true."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, what: str) -> None:
    """Skip when a prerequisite is missing; under CI=true fail instead, naming what is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing under CI=true: {what}", pytrace=False)
    pytest.skip(f"prerequisite missing: {what}")


def require_root() -> None:
    require(os.geteuid() == 0, "root (network namespaces, raw sockets, iptables)")


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    require(not missing, f"commands not on PATH: {', '.join(missing)}")


@pytest.fixture
def root() -> None:
    """Use as a fixture argument in tests that need root."""
    require_root()
