"""The session translator's connection states, every transition between them, and every flag
that decides what may happen next.

Rules this module obeys (after h11's _state.py):

1. Every change of `SessionState` goes through `SessionStateMachine.fire`, and every legal
   change is a row of TRANSITIONS below: the table is the whole machine. The translator decides
   *when* a trigger fires (that needs segments, offsets and clocks); this table decides *what*
   the trigger may do.
2. A trigger that reports something returns its event (`established`, `reconnect`, `finish`,
   `abort`): the caller queues what the machine made, never an event of its own choosing.
3. The flags that steer the translator beside the state live here too, each set by one method
   that says what it changes; nothing else writes them.
4. No bytes, no clocks, no segments here: only states, triggers and flags.
5. A trigger the table does not allow in the current state is a bug in the translator, never
   the SUT's or the capture's fault (those are handled as events before any trigger fires), so
   it raises IllegalTransition.

Theory of operation (tcpcopy's tc_session.c, reworked):

    IDLE --send SYN--> SYN_SENT --SYN-ACK--> ESTABLISHED --send FIN--> CLOSING
                          ^                       |                       |
                          +------ reconnect ------+                       |
      (SUT FIN/RST with requests pending: RST the old connection, fake SYN on a new one)
    ESTABLISHED / CLOSING --clean close, or release RST--> DONE
    any live state --give up (RST to the SUT where a connection exists)--> ABORTED
    IDLE --nothing to replay (no SYN, no client payload captured)--> ABORTED

The flags, and what each one changes:

- ``sut_closed``: the SUT's FIN arrived in order. The response being read is over; a captured
  request still to send needs a new connection (RECONNECT); at the end of the capture the
  client side closes with a FIN (SEND_FIN).
- ``sut_reset``: the SUT reset after answering every request sent. The same, except that the
  end of the capture finishes the session at once (FINISH by the SUT, reset).
- ``capture_closed``: a captured FIN or RST is queued; later captured bytes are moot.
- ``capture_done``: no more captured segments will come: once every byte is sent and the last
  response is over, the session ends.
- ``gap``: the capture misses client bytes: the stream stops there, and the session ends with
  ABORT (capture gap) once the last response before the hole is over.
- ``closed_first``: which side closed first, for the Closed event.
- ``waiting_for``: what the send loop stopped at: nothing, a response (the request gate: the
  next request, or the end, waits until the response before it is over) or the SUT's window.
  While it waits on the SUT, the idle timeout runs; while it waits on a response, the
  response timeout does too.

RECONNECT clears the connection's flags (``sut_closed``, ``sut_reset``, ``closed_first``,
``waiting_for``); FINISH and ABORT clear ``waiting_for``.
"""

from __future__ import annotations

import enum

from pytest_tcpcopy.errors import TcpcopyError
from pytest_tcpcopy.tcp.events import Aborted, AbortReason, Closed, Established, Reconnected, Side


class SessionState(enum.Enum):
    __hash__ = object.__hash__  # members are singletons: hashed by identity, as they compare

    IDLE = "no segment sent yet"
    SYN_SENT = "SYN sent, waiting for the SUT's SYN-ACK"
    ESTABLISHED = "connected: requests and responses flow"
    CLOSING = "client FIN sent, waiting for the SUT to acknowledge it and close"
    DONE = "ended normally"
    ABORTED = "given up"


class Trigger(enum.Enum):
    __hash__ = object.__hash__  # as for SessionState

    SEND_SYN = "send SYN"
    SYN_ACK = "SYN-ACK accepted"
    SEND_FIN = "client FIN sent"
    RECONNECT = "reconnect"
    FINISH = "session ended"
    ABORT = "give up"


# The states and triggers by name, as h11 names its states: the table below and ``state is
# CLOSING`` read like the diagram above.
IDLE, SYN_SENT, ESTABLISHED, CLOSING, DONE, ABORTED = (
    SessionState.IDLE, SessionState.SYN_SENT, SessionState.ESTABLISHED, SessionState.CLOSING, SessionState.DONE,
    SessionState.ABORTED,
)  # fmt: skip
SEND_SYN, SYN_ACK, SEND_FIN, RECONNECT, FINISH, ABORT = (
    Trigger.SEND_SYN, Trigger.SYN_ACK, Trigger.SEND_FIN, Trigger.RECONNECT, Trigger.FINISH, Trigger.ABORT,
)  # fmt: skip

TRANSITIONS: dict[SessionState, dict[Trigger, SessionState]] = {
    IDLE: {SEND_SYN: SYN_SENT, FINISH: DONE, ABORT: ABORTED},
    SYN_SENT: {SYN_ACK: ESTABLISHED, ABORT: ABORTED},
    ESTABLISHED: {SEND_FIN: CLOSING, RECONNECT: SYN_SENT, FINISH: DONE, ABORT: ABORTED},
    CLOSING: {FINISH: DONE, ABORT: ABORTED},
    DONE: {},
    ABORTED: {},
}

TERMINAL = frozenset(s for s, moves in TRANSITIONS.items() if not moves)
CONNECTED = frozenset({ESTABLISHED, CLOSING})  # a SUT connection exists to send on

# What the send loop waits for (``waiting_for``).
WAIT_NOTHING, WAIT_RESPONSE, WAIT_WINDOW = 0, 1, 2


class IllegalTransition(TcpcopyError):
    """A translator bug: a trigger fired in a state that does not allow it."""


class SessionStateMachine:
    """The current state, whether it has a connection (``connected``) or is over (``terminal``),
    and the flags of the module comment."""

    __slots__ = (
        "capture_closed", "capture_done", "closed_first", "connected", "gap", "state", "sut_closed",
        "sut_reset", "terminal", "waiting_for",
    )  # fmt: skip

    def __init__(self) -> None:
        self.state = IDLE
        self.connected = self.terminal = False
        self.sut_closed = self.sut_reset = False
        self.capture_closed = self.capture_done = self.gap = False
        self.closed_first: Side | None = None
        self.waiting_for = WAIT_NOTHING

    def fire(self, trigger: Trigger) -> SessionState:
        try:
            state = self.state = TRANSITIONS[self.state][trigger]
        except KeyError:
            raise IllegalTransition(
                f"translator bug: trigger {trigger.name} is not allowed in state {self.state.name}"
            ) from None
        self.connected = state in CONNECTED
        self.terminal = state in TERMINAL
        if self.terminal:
            self.waiting_for = WAIT_NOTHING
        return state

    # -- triggers ------------------------------------------------------------------------------

    def send_syn(self) -> None:
        self.fire(SEND_SYN)

    def established(self, fake_syn: bool) -> Established:
        self.fire(SYN_ACK)
        return Established(fake_syn)

    def send_fin(self) -> None:
        self.fire(SEND_FIN)
        if self.closed_first is None:
            self.closed_first = Side.CLIENT

    def reconnect(self, attempt: int, resume_offset: int) -> Reconnected:
        self.fire(RECONNECT)
        self.sut_closed = self.sut_reset = False
        self.closed_first = None
        self.waiting_for = WAIT_NOTHING
        return Reconnected(attempt, resume_offset)

    def finish(self, by: Side, reset: bool) -> Closed:
        self.fire(FINISH)
        return Closed(by, reset)

    def abort(self, reason: AbortReason, detail: str) -> Aborted:
        self.fire(ABORT)
        return Aborted(reason, detail)

    # -- flags ---------------------------------------------------------------------------------

    def on_sut_fin(self) -> None:
        self.sut_closed = True
        if self.closed_first is None:
            self.closed_first = Side.SUT

    def on_sut_reset_after_answers(self) -> None:
        self.sut_reset = True

    def on_capture_closed(self) -> None:
        self.capture_closed = True

    def on_capture_gap(self) -> None:
        self.gap = True

    def on_capture_done(self) -> None:
        self.capture_done = True

    def wait_for(self, what: int) -> None:
        self.waiting_for = what
