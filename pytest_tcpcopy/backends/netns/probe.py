"""Readiness probe, run as a program inside the rig's client namespace.

``python probe.py ADDR PORT [PATH]`` exits 0 when a TCP connection to ADDR:PORT succeeds (and,
with PATH, a GET of it answers with a status below 400); otherwise it prints why on stdout and
exits 1. It uses the standard library only, so it runs by path without the package installed.
Running it in the client namespace checks the SUT the way the replay will reach it, not through
some host-side shortcut.
"""

from __future__ import annotations

import http.client
import socket
import sys

TIMEOUT = 1.0


def probe(addr: str, port: int, path: str | None) -> str | None:
    """None when the SUT is ready, else the reason it is not."""
    if path is None:
        try:
            socket.create_connection((addr, port), timeout=TIMEOUT).close()
        except OSError as exc:
            return f"connect to {addr}:{port}: {exc.strerror or exc}"
        return None
    conn = http.client.HTTPConnection(addr, port, timeout=TIMEOUT)
    try:
        conn.request("GET", path)
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return f"GET http://{addr}:{port}{path}: {getattr(exc, 'strerror', None) or exc!r}"
    finally:
        conn.close()
    return None if status < 400 else f"GET http://{addr}:{port}{path}: HTTP {status}"


def main(argv: list[str]) -> int:
    addr, port, *path = argv
    reason = probe(addr, int(port), path[0] if path else None)
    if reason is None:
        return 0
    print(reason)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
