"""Opening sockets inside another network namespace (a container's, a rig's) without moving.

A socket belongs to the network namespace it was created in, whichever thread uses it later. So
the socket is made on a short-lived thread that first joins the namespace (setns(2) changes only
the calling thread); the caller's threads never leave their own namespace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from ..errors import EnvironmentProblem

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def made_in_netns(netns: str | os.PathLike[str], make: Callable[[], T]) -> T:
    """``make()``'s result, called on a thread that joined the network namespace ``netns`` (a
    /proc/PID/ns/net or /run/netns/NAME path). Needs CAP_SYS_ADMIN; ``make``'s own errors pass
    through unchanged."""
    path = os.fspath(netns)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot open the network namespace {path}: {exc.strerror or exc}") from None
    outcome: list = []

    def joined() -> None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            if libc.setns(fd, CLONE_NEWNET) != 0:
                code = ctypes.get_errno()
                raise EnvironmentProblem(f"cannot enter the network namespace {path}: {os.strerror(code)}"
                                         + (" (needs root: CAP_SYS_ADMIN)" if code == 1 else ""))  # fmt: skip
            outcome.append((True, make()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
            outcome.append((False, exc))

    try:
        thread = threading.Thread(target=joined, name="netns-open", daemon=True)
        thread.start()
        thread.join()
    finally:
        os.close(fd)
    ok, value = outcome[0]
    if not ok:
        raise value
    return value
