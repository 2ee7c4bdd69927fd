"""Starting a watchdog: a process of this package that cleans up after a run if its owner dies
(the Docker backend's host reaper, the netns supervisor).

The watchdog runs ``python -m MODULE ARGS`` with this very package first on its path, in a
session of its own (a Ctrl-C or SIGTERM for the owner's process group does not reach it). It
says ``ready`` on stdout once it watches, then reads its stdin, a pipe whose only writer is the
owner: the owner letting go, or dying by any signal, ends the pipe.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys

import pytest_tcpcopy

READY_TIMEOUT = 20.0  # seconds a watchdog has to say it is ready


class WatchdogNotReady(Exception):
    """The watchdog did not say ``ready``: ``reason`` is what it said instead (its stderr)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def start_watchdog(module: str, *args: str, timeout: float = READY_TIMEOUT) -> subprocess.Popen:
    """Start the watchdog ``module`` with ``args`` and return it once it is ready, its stdin
    (the owner's pipe) and stderr open; WatchdogNotReady when it does not say so within
    ``timeout`` seconds (it is killed then)."""
    package_root = os.path.dirname(os.path.dirname(pytest_tcpcopy.__file__))
    python_path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": python_path},
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else b""
    if line != b"ready\n":
        process.kill()
        _, err = process.communicate()
        raise WatchdogNotReady((err or line).decode(errors="replace").strip() or "it said nothing")
    process.stdout.close()
    return process
