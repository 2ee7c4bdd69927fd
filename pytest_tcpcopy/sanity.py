"""Sanity checks of a whole replay: the signs that a green run proves nothing.

A replay can pass every exchange and still test nothing: the capture is of another service, the
SUTs lack production's data, the replay went to the wrong port. ``SanityCounters`` is fed, per
judged exchange, three HTTP status codes (the candidate's, the baseline's, production's in the
capture; None where there is none: no response, or not HTTP) and knows the SUT's port and the
capture's server ports. ``problems()`` then says, in this order:

1. ``same-error``: at least ``MIN_EXCHANGES`` exchanges have a status on both sides, and on at
   least ``SAME_ERROR_SHARE`` (90 %) of them the candidate and the baseline answered the same
   error (4xx or 5xx). Both releases failing alike passes every item; it usually means the
   traffic does not fit the SUTs (another service's capture, data production had and the SUTs
   lack). Fails the run.
2. ``baseline-disagrees``: at least ``MIN_EXCHANGES`` exchanges have a baseline status and a
   production status, and on more than ``DISAGREE_SHARE`` (half) of them the baseline answered
   another status than production did. The baseline then does not reproduce production, so
   agreeing with it proves little. A ``capture`` baseline is production: never. Fails the run.
   Not said when ``same-error`` is (whose message counts production's answers too).
3. ``port``: the SUT listens on a port none of the captured sessions went to. The replay sends
   every session to the SUT's port, which is right when the service moved ports, and a mistake
   when the wrong port or capture was given. A warning only.

The counters are a few small tables of status tuples: feeding them costs nothing per exchange
and they hold no exchange, so a streaming judge feeds them as it goes. Nothing here does I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

MIN_EXCHANGES = 5  # fewer exchanges with statuses than this: no status check says anything
SAME_ERROR_SHARE = 0.9  # "nearly every exchange": this share of them, or more
DISAGREE_SHARE = 0.5  # "most exchanges": more than this share of them
SHOWN = 3  # most frequent statuses or status changes named in a message


@dataclass(frozen=True, slots=True)
class SanityProblem:
    """One check that found the run suspect: ``check`` names it, ``fails`` when it fails the run
    (under the default ``--tcpcopy-sanity fail``), ``message`` says what was seen and what to check."""

    check: str
    message: str
    fails: bool


def status_of(message: object) -> int | None:
    """The HTTP status of a response message (``HttpResponse``), None for anything else."""
    status = getattr(message, "status", None)
    return status if isinstance(status, int) and not isinstance(status, bool) else None


class SanityCounters:
    """The counts the sanity checks read; see the module comment."""

    def __init__(self, sut_port: int | None = None, capture_ports: Iterable[int] = ()) -> None:
        self.sut_port = sut_port
        self.capture_ports = frozenset(capture_ports)
        self.statuses: Counter[tuple[int | None, int | None, int | None]] = Counter()

    def add(self, candidate: int | None, baseline: int | None, production: int | None) -> None:
        """One judged exchange's statuses: the candidate's, the baseline's (production's own, for
        a ``capture`` baseline) and production's in the capture."""
        self.statuses[(candidate, baseline, production)] += 1

    def add_capture_port(self, port: int) -> None:
        """A server port a captured session went to."""
        self.capture_ports = self.capture_ports | {port}

    def problems(self) -> list[SanityProblem]:
        """What the checks found, in the module comment's order; empty when the run looks sane."""
        same_error = self._same_error()  # it names production's statuses too: the disagreement is no news then
        found = [same_error or self._disagreement(), self._port()]
        return [problem for problem in found if problem is not None]

    def _same_error(self) -> SanityProblem | None:
        both = same = 0
        errors: Counter[int] = Counter()
        answered_by_production = 0
        for (candidate, baseline, production), n in self.statuses.items():
            if candidate is None or baseline is None:
                continue
            both += n
            if candidate == baseline and candidate >= 400:
                same += n
                errors[candidate] += n
                if production is not None and production < 400:
                    answered_by_production += n
        if both < MIN_EXCHANGES or same < SAME_ERROR_SHARE * both:
            return None
        shown = ", ".join(f"{status} x{n}" for status, n in errors.most_common(SHOWN))
        production = (f"; production answered {answered_by_production} of them below 400"
                      if answered_by_production else "")  # fmt: skip
        return SanityProblem(
            "same-error",
            f"{same} of {both} exchanges got the same error status from the candidate and the baseline "
            f"({shown}){production}: the traffic does not fit the SUTs (a capture of another service? "
            f"data production had that the SUTs lack?){self._port_hint()}",
            fails=True,
        )

    def _disagreement(self) -> SanityProblem | None:
        both = differing = 0
        changes: Counter[tuple[int, int]] = Counter()
        for (_, baseline, production), n in self.statuses.items():
            if baseline is None or production is None:
                continue
            both += n
            if baseline != production:
                differing += n
                changes[(production, baseline)] += n
        if both < MIN_EXCHANGES or differing <= DISAGREE_SHARE * both:
            return None
        shown = ", ".join(f"{old} -> {new} x{n}" for (old, new), n in changes.most_common(SHOWN))
        return SanityProblem(
            "baseline-disagrees",
            f"the baseline answered {differing} of {both} exchanges with another status than production did "
            f"in the capture (production -> baseline: {shown}): it does not reproduce production, so agreeing "
            f"with it proves little{self._port_hint()}",
            fails=True,
        )

    def _port(self) -> SanityProblem | None:
        if self.sut_port is None or not self.capture_ports or self.sut_port in self.capture_ports:
            return None
        ports = ", ".join(map(str, sorted(self.capture_ports)))
        return SanityProblem(
            "port",
            f"the SUT listens on port {self.sut_port}, the captured sessions went to port {ports}: every session "
            "was replayed to the SUT's port (right if the service moved; else check --tcpcopy-port and the capture)",
            fails=False,
        )

    def _port_hint(self) -> str:
        if self._port() is None:
            return ""
        ports = ", ".join(map(str, sorted(self.capture_ports)))
        return f"; note the SUT's port {self.sut_port} is not the capture's ({ports})"


def sanity_lines(problems: Iterable[tuple[str, SanityProblem]], *, fail: bool) -> list[tuple[str, bool]]:
    """The summary lines of ``problems`` (each with the name of its replay), and whether each is
    loud (it fails the run: ``fail`` and a failing check), closed by what to do when one is."""
    lines = []
    for name, problem in problems:
        loud = fail and problem.fails
        lines.append((f"{'SANITY CHECK FAILED' if loud else 'sanity warning'}: {name}: {problem.message}", loud))
    if any(loud for _, loud in lines):
        lines.append(("the run fails its sanity checks (exit status 1); if the set-up is right, --tcpcopy-sanity warn "
                      "only warns", True))  # fmt: skip
    return lines
