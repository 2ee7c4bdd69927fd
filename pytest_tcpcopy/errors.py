"""One rooted error hierarchy; each branch says who is to blame.

- ``UsageError``: the caller misused the library or CLI (a bad option, a wrong call order).
- ``CaptureError``: the input capture is bad (corrupt, truncated, unsupported). It names the file,
  the record index and the reason.
- ``EnvironmentProblem``: the machine cannot do what was asked (no root, no CAP_NET_ADMIN,
  a missing tool); the message says what to fix.
- ``SutError``: the system under test misbehaved (it died, never answered, reset).
"""

from __future__ import annotations


class TcpcopyError(Exception):
    """Base of every error pytest-tcpcopy raises on purpose."""


class UsageError(TcpcopyError):
    """Our caller's mistake: a bad option value or an API used out of order."""


class CaptureError(TcpcopyError):
    """A capture file that cannot be read as asked.

    ``path`` is the file, ``record`` the 0-based record (packet or block) index where reading
    failed (None when the file as a whole is unusable), ``reason`` a short explanation.
    """

    def __init__(self, path: str, record: int | None, reason: str) -> None:
        self.path = str(path)
        self.record = record
        self.reason = reason
        where = f" at record {record}" if record is not None else ""
        super().__init__(f"{self.path}{where}: {reason}")


class EnvironmentProblem(TcpcopyError):
    """The machine lacks something the operation needs; the message says what to fix."""


class SutError(TcpcopyError):
    """The system under test misbehaved: it exited, never listened, or never answered."""

    def __init__(self, message: str, logs: str = "") -> None:
        self.logs = logs
        super().__init__(message if not logs else f"{message}\n--- SUT logs ---\n{logs}")
