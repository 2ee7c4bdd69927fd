"""The session translator's connection states and every transition between them.

Rules this module obeys (after h11's _state.py):

1. Every change of `SessionState` goes through `SessionStateMachine.fire`, and every legal
   change is a row of TRANSITIONS below: the table is the whole machine. The translator decides
   *when* a trigger fires (that needs segments, offsets and clocks); this table decides *what*
   the trigger may do.
2. No bytes, no clocks, no segments here: only states and triggers.
3. A trigger the table does not allow in the current state is a bug in the translator, never
   the SUT's or the capture's fault (those are handled as events before any trigger fires), so
   it raises IllegalTransition.

Theory of operation (tcpcopy's tc_session.c, reworked):

    IDLE --send SYN--> SYN_SENT --SYN-ACK--> ESTABLISHED --send FIN--> CLOSING
                          ^                       |                       |
                          +------ reconnect ------+                       |
      (SUT FIN/RST with requests pending: RST the old connection, fake SYN on a new one)
    ESTABLISHED / CLOSING --clean close, or release RST--> DONE
    any live state --give up (RST to the SUT where a connection exists)--> ABORTED

Orthogonal to the state, the translator tracks whether the SUT has closed its side (a FIN
received) or reset after answering (either way the next captured request fires RECONNECT and
the end of the capture fires FINISH), and the request gate: a captured segment whose captured
ack grew (the real client had received more response bytes before sending it) starts a new
request and waits until the SUT's response to the previous one is complete (as many bytes as
the capture shows, or a quiet period).
"""

from __future__ import annotations

import enum

from pytest_tcpcopy.errors import TcpcopyError


class SessionState(enum.Enum):
    # Members are singletons compared by identity, so the C-level identity hash is consistent
    # with equality; Enum's own __hash__ is a Python function, and `fire` hashes on every call.
    __hash__ = object.__hash__

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


S, T = SessionState, Trigger

TRANSITIONS: dict[SessionState, dict[Trigger, SessionState]] = {
    S.IDLE: {T.SEND_SYN: S.SYN_SENT, T.FINISH: S.DONE, T.ABORT: S.ABORTED},
    S.SYN_SENT: {T.SYN_ACK: S.ESTABLISHED, T.ABORT: S.ABORTED},
    S.ESTABLISHED: {
        T.SEND_FIN: S.CLOSING, T.RECONNECT: S.SYN_SENT, T.FINISH: S.DONE, T.ABORT: S.ABORTED,
    },
    S.CLOSING: {T.FINISH: S.DONE, T.ABORT: S.ABORTED},
    S.DONE: {},
    S.ABORTED: {},
}

TERMINAL = frozenset(s for s, moves in TRANSITIONS.items() if not moves)
CONNECTED = frozenset({S.ESTABLISHED, S.CLOSING})  # a SUT connection exists to send on


_INITIAL = S.IDLE  # bound once: reading a member off an Enum class is a slow hook in 3.11


class IllegalTransition(TcpcopyError):
    """A translator bug: a trigger fired in a state that does not allow it."""


class SessionStateMachine:
    """The current state, plus its two classes as plain booleans (read per segment; an enum
    hash is a Python-level call)."""

    __slots__ = ("connected", "state", "terminal")

    def __init__(self) -> None:
        self.state = _INITIAL
        self.connected = self.terminal = False

    def fire(self, trigger: Trigger) -> SessionState:
        try:
            state = self.state = TRANSITIONS[self.state][trigger]
        except KeyError:
            raise IllegalTransition(
                f"translator bug: trigger {trigger.name} is not allowed in state {self.state.name}"
            ) from None
        self.connected = state in CONNECTED
        self.terminal = state in TERMINAL
        return state
