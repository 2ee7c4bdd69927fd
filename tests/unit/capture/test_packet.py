"""Packet keeps the NamedTuple interface it had, compiled (a C struct) and in pure Python alike."""

from __future__ import annotations

import pickle

import pytest

from pytest_tcpcopy.capture import packet as public_module
from pytest_tcpcopy.endpoint import Endpoint
from pytest_tcpcopy.flows.assembler import FlowAssembler
from pytest_tcpcopy.kernel import packet as packet_module
from pytest_tcpcopy.kernel.packet import ACK, FIN, SYN, Packet, new_packet
from pytest_tcpcopy.replay.engine import ReplayEngine
from pytest_tcpcopy.tcp.translator import SessionTranslator, TranslatorConfig

FIELDS = {
    "index": 7, "ts": 1.5, "src": b"\x0a\x00\x00\x01", "dst": b"\x0a\x00\x00\x02", "sport": 40000,
    "dport": 80, "seq": 0xFFFFFFFF, "ack": 12345, "flags": SYN | FIN, "window": 65535, "options": b"\x01\x01",
    "payload": b"GET", "payload_len": 5, "ip_id": 9, "ttl": 64,
}  # fmt: skip


def test_positional_keyword_and_fast_construction_agree():
    by_keyword = Packet(**FIELDS)
    assert Packet(*FIELDS.values()) == by_keyword
    assert new_packet(*FIELDS.values()) == by_keyword
    assert Packet._fields == tuple(FIELDS)
    assert {name: getattr(by_keyword, name) for name in Packet._fields} == FIELDS
    assert public_module.Packet is Packet and public_module.SYN == SYN


def test_it_iterates_indexes_and_unpacks_like_a_tuple():
    packet = Packet(**FIELDS)
    assert tuple(packet) == tuple(FIELDS.values()) == packet.as_tuple()
    assert len(packet) == 15 and packet[2] == FIELDS["src"] and packet[-1] == 64 and packet[4:6] == (40000, 80)
    index, ts, *_, ttl = packet
    assert (index, ts, ttl) == (7, 1.5, 64)


def test_equality_and_hash_are_by_value():
    a, b = Packet(**FIELDS), Packet(**FIELDS)
    assert a == b and (a != b) is False and hash(a) == hash(b) and len({a, b}) == 1
    assert a != a._replace(ttl=63) and a._replace(ttl=63) != a
    assert a != tuple(a)  # a Packet equals Packets only


def test_replace_copies_with_changes_and_refuses_unknown_fields():
    packet = Packet(**FIELDS)
    moved = packet._replace(seq=1, payload=b"")
    assert (moved.seq, moved.payload, moved.ack) == (1, b"", FIELDS["ack"])
    assert packet.seq == FIELDS["seq"]  # the original is untouched
    with pytest.raises(ValueError, match="no fields"):
        packet._replace(sequence=1)


def test_properties_pickle_and_repr():
    packet = Packet(**FIELDS)
    assert packet.truncated  # 3 of 5 payload bytes captured
    assert packet.seq_len == 5 + 1 + 1  # SYN and FIN take one each
    assert not packet._replace(payload=b"GET!!", flags=ACK).truncated
    assert pickle.loads(pickle.dumps(packet)) == packet
    assert repr(packet).startswith("Packet(index=7, ts=1.5, src=b'\\n\\x00\\x00\\x01'")


def test_a_compiled_packet_is_read_only():
    packet = Packet(**FIELDS)
    if packet_module.__file__.endswith(".py"):
        packet.seq = 1  # pure Python: plain slots (treated as immutable by convention)
        assert packet.seq == 1
    else:
        with pytest.raises(AttributeError):
            packet.seq = 1


@pytest.mark.parametrize("feed", ["assembler", "translator", "engine"])
def test_a_none_packet_is_refused_not_a_crash(feed):
    """Compiled, these read C fields of the packet: a None must raise, as in pure Python."""
    target, client = Endpoint(b"\x0a\x00\x00\x02", 80), Endpoint(b"\xc6\x12\x00\x01", 40000)
    call = {
        "assembler": lambda: FlowAssembler().feed(None),
        "translator": lambda: SessionTranslator(TranslatorConfig(), client, target, session_id=0).feed_client(None, 0.0),
        "engine": lambda: ReplayEngine(target, lambda endpoint, copy: client).feed_capture(None, 0.0),
    }[feed]
    with pytest.raises(AttributeError):
        call()
