"""LiveCapture refuses what it cannot do, saying what to fix."""

from __future__ import annotations

import pytest
from conftest import require_root

from pytest_tcpcopy.errors import EnvironmentProblem, UsageError
from pytest_tcpcopy.live import LiveCapture


def test_no_ports_is_our_callers_mistake():
    with pytest.raises(UsageError, match="at least one TCP port"):
        LiveCapture("lo", [])


def test_an_unknown_interface_is_named():
    require_root()
    with pytest.raises(EnvironmentProblem, match="cannot capture on interface 'tcpcp-lv-none'.*ip link"):
        LiveCapture("tcpcp-lv-none", [80])


def test_loopback_is_recognised():
    require_root()
    with LiveCapture("lo", [80]) as capture:
        assert capture.loopback
