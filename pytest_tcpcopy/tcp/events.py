"""What a `SessionTranslator` reports to its driver: typed, immutable events and the counters.

Offsets are stream positions, not sequence numbers: request offsets count client bytes from the
first byte after the client's ISN; response offsets count the SUT's bytes from the first byte
after its ISN, continuing across reconnects (a reconnected connection's bytes follow the last
byte of the previous one).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Side(enum.Enum):
    CLIENT = "client"  # the replayed client (the capture, or the translator on its behalf)
    SUT = "sut"


class AbortReason(enum.Enum):
    SUT_RESET = "the SUT reset the connection mid-session"
    NOT_ESTABLISHED = "the SUT never completed the handshake (no SYN-ACK, or a RST: not listening?)"
    IDLE_TIMEOUT = "the SUT made no progress for the idle timeout while the session waited on it"
    TOO_MANY_RECONNECTS = "the SUT kept closing the connection with captured requests pending"
    CAPTURE_GAP = "the capture lacks client bytes the session needs (a hole in the client stream)"
    RESPONSE_TIMEOUT = "the SUT made no progress on an awaited response for the response timeout"
    NOTHING_TO_REPLAY = "the capture holds neither the SYN nor any client payload of the session"


class ResponseEnd(enum.Enum):
    """By which rule the response to the latest request was judged over (see gate.py)."""

    __hash__ = object.__hash__  # identity: members are singletons (a dict key per exchange)

    FRAMING = "framing"  # the protocol's framing (HTTP/1.x) says it ended
    LENGTH = "captured_length"  # as many bytes arrived as the captured client had received
    CLOSE = "sut_close"  # the SUT closed (FIN) or reset its side of the connection
    QUIET = "quiet"  # the last resort: no length known, or short of it, and the SUT fell silent
    TIMEOUT = "timeout"  # cut: no progress for the response timeout (the session is aborted)


class Event:
    """Base of the translator's events; never instantiated itself.

    The events are frozen dataclasses without slots: events.pxd makes them Cython dataclasses,
    which take none.
    """

    __slots__ = ()


@dataclass(frozen=True)
class Established(Event):
    """The handshake with the SUT completed (again, after a reconnect)."""

    fake_syn: bool  # the SYN was synthesised (session captured mid-stream, or reconnect)


@dataclass(frozen=True)
class RequestSent(Event):
    """Client bytes [offset, offset + length) went to the SUT for the first time on the
    current connection (after a reconnect the unacknowledged bytes are sent, and reported,
    again)."""

    offset: int
    length: int


@dataclass(frozen=True)
class ResponseData(Event):
    """The SUT sent response bytes [offset, offset + length), in order.

    ``data`` holds the bytes in response-capture mode, else None. It is shorter than
    ``length`` when the intercept truncated the packet (a copy-range limit): the missing tail
    is a gap, never padded.
    """

    offset: int
    length: int
    data: bytes | None


@dataclass(frozen=True)
class ResponseEnded(Event):
    """The response to the latest request is over (``by`` which rule), or was cut (``by`` is
    TIMEOUT, and an Aborted event follows). ``received`` bytes of it arrived; ``expected`` is
    the length the framing or the capture gave for it, None when neither knew."""

    by: ResponseEnd
    received: int
    expected: int | None


@dataclass(frozen=True)
class Reconnected(Event):
    """The SUT closed or reset with captured requests pending; a new connection was opened
    to send them, resuming at client offset ``resume_offset``."""

    attempt: int
    resume_offset: int


@dataclass(frozen=True)
class Closed(Event):
    """The session ended normally. ``by`` closed first; ``reset`` is True when the connection
    was released with a RST instead of a FIN exchange (capture ended without a close, a
    captured client RST, or a SUT RST after all requests were answered)."""

    by: Side
    reset: bool


@dataclass(frozen=True)
class Aborted(Event):
    """The session was given up; a RST released the SUT's connection where one existed."""

    reason: AbortReason
    detail: str


_COUNTERS = (
    "packets_sent", "bytes_sent", "retransmits", "rto_timeouts", "fast_retransmits", "dup_acks",
    "window_probes", "sut_segments", "response_bytes", "sut_retransmits", "sut_out_of_order",
    "ignored_sut_segments", "captured_duplicates", "captured_out_of_order", "reconnects",
)  # fmt: skip


class SessionCounters:
    """Which paths a session's segments took, for statistics and tests.

    A plain slotted class (events.pxd types its counters).
    """

    __slots__ = _COUNTERS

    def __init__(self) -> None:
        self.packets_sent = 0
        self.bytes_sent = 0  # client payload bytes sent for the first time
        self.retransmits = 0  # segments sent again (SYN, data or FIN)
        self.rto_timeouts = 0
        self.fast_retransmits = 0
        self.dup_acks = 0
        self.window_probes = 0
        self.sut_segments = 0
        self.response_bytes = 0  # in-order SUT payload bytes
        self.sut_retransmits = 0  # SUT segments carrying only bytes already received
        self.sut_out_of_order = 0
        self.ignored_sut_segments = 0  # stale, unacceptable, or for an older connection
        self.captured_duplicates = 0  # captured client retransmissions dropped or trimmed
        self.captured_out_of_order = 0  # captured segments held until a gap filled
        self.reconnects = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _COUNTERS}

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}={value}" for name, value in self.as_dict().items() if value)
        return f"SessionCounters({counts})"
