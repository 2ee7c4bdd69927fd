"""The session state table on its own, without bytes (h11's test_state idea)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tcpsim import CAPTURED_CLIENT, CAPTURED_SERVER, CLIENT, TARGET

from pytest_tcpcopy.capture.packet import Packet
from pytest_tcpcopy.errors import TcpcopyError
from pytest_tcpcopy.tcp import SessionTranslator, TranslatorConfig, parse_sut_segment
from pytest_tcpcopy.tcp._state import (
    TRANSITIONS,
    IllegalTransition,
    SessionState,
    SessionStateMachine,
    Trigger,
)

S, T = SessionState, Trigger


def test_a_replay_with_a_reconnect_walks_the_table():
    sm = SessionStateMachine()
    path = [T.SEND_SYN, T.SYN_ACK, T.RECONNECT, T.SYN_ACK, T.SEND_FIN, T.FINISH]
    states = [sm.fire(t) for t in path]
    assert states == [S.SYN_SENT, S.ESTABLISHED, S.SYN_SENT, S.ESTABLISHED, S.CLOSING, S.DONE]
    assert sm.terminal and not sm.connected


@pytest.mark.parametrize("state", list(S))
def test_every_state_either_moves_on_or_is_terminal(state):
    moves = TRANSITIONS[state]
    assert moves or state in (S.DONE, S.ABORTED)
    if state not in (S.DONE, S.ABORTED, S.IDLE):
        assert moves.get(T.ABORT) is S.ABORTED


def test_an_illegal_trigger_names_trigger_and_state():
    sm = SessionStateMachine()
    with pytest.raises(IllegalTransition, match="SYN_ACK.*IDLE"):
        sm.fire(T.SYN_ACK)
    sm.fire(T.SEND_SYN)
    sm.fire(T.ABORT)
    with pytest.raises(IllegalTransition, match="terminal|ABORTED"):
        sm.fire(T.SEND_SYN)


packets = st.builds(
    Packet, index=st.integers(0, 10), ts=st.floats(0, 10), src=st.just(CAPTURED_CLIENT.addr),
    dst=st.just(CAPTURED_SERVER.addr), sport=st.just(CAPTURED_CLIENT.port),
    dport=st.just(CAPTURED_SERVER.port), seq=st.integers(0, 2**32 - 1),
    ack=st.integers(0, 2**32 - 1), flags=st.integers(0, 255), window=st.integers(0, 65535),
    options=st.sampled_from([b"", b"\x01\x01\x08\x0a" + bytes(8), b"\x02\x04\x05", b"\x03"]),
    payload=st.binary(max_size=50), payload_len=st.integers(0, 60), ip_id=st.just(1),
    ttl=st.just(64),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), packets, st.binary(min_size=20, max_size=60)), max_size=30))
def test_any_input_sequence_returns_or_raises_our_error(steps):
    """Fuzz invariant: whatever the capture and the SUT throw at it, the translator returns
    normally (or raises a TcpcopyError), and every packet it emits parses back."""
    t = SessionTranslator(TranslatorConfig(), CLIENT, TARGET, session_id=3)
    now = 0.0
    for is_client, pkt, raw in steps:
        now += 0.05
        try:
            if is_client:
                t.feed_client(pkt._replace(payload_len=max(pkt.payload_len, len(pkt.payload))), now)
            else:
                t.feed_sut(parse_sut_segment(b"\x45" + raw[1:]), now)
        except TcpcopyError:
            pass
        deadline = t.next_timer()
        if deadline is not None:
            t.on_timer(max(now, deadline))
        for out in t.packets_to_send():
            assert parse_sut_segment(out).dport == TARGET.port
        t.events()
    t.end_of_capture(now)
