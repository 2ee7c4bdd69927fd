"""``mirror`` command-line checks that need no capture: bad values are refused with the fix."""

from __future__ import annotations

import subprocess
import sys

import pytest


MIRROR = [sys.executable, "-m", "pytest_tcpcopy", "mirror"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "127.0.0.1:9000"], "--port is required"),
        (["--port", "0", "--to", "127.0.0.1:9000"], "--port 0: expected 1..65535"),
        (["--port", "80", "--to", "127.0.0.1:80"], "port 80 is also a --port"),
        (["--port", "80", "--to", "nowhere:9000"], "--to: expected IP:PORT"),
        (["--port", "80", "--to", "127.0.0.1:9000", "--buffer", "0"], "--buffer 0: expected at least 1"),
        (["--port", "80", "--to", "127.0.0.1:9000", "--duration", "0"], "--duration 0: expected a positive"),
    ],
)
def test_bad_options_exit_2_with_the_reason(args, message):
    done = subprocess.run([*MIRROR, "--iface", "lo", *args], check=False, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.startswith("pytest-tcpcopy mirror: error: ")
    assert message in done.stderr
    assert done.stdout == ""
