"""The intercept's route table and delay buffer, in memory."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6

from pytest_tcpcopy.endpoint import Endpoint
from pytest_tcpcopy.intercept.routing import RouteTable, pair_key
from pytest_tcpcopy.kernel.codecs import segment_key

CLIENT = Endpoint.parse("198.18.0.7:40001")
TARGET = Endpoint.parse("10.0.0.2:8080")


def reply(flags: str = "SA", client: Endpoint = CLIENT) -> bytes:
    return bytes(IP(src="10.0.0.2", dst=str(client).split(":")[0]) / TCP(sport=8080, dport=client.port, flags=flags))


def test_segment_key_is_the_replys_destination_then_source() -> None:
    assert segment_key(reply()) == (pair_key(CLIENT, TARGET), 20)
    with_options = bytes(IP(src="10.0.0.2", dst="198.18.0.7", options=b"\x01" * 4) / TCP(sport=8080, dport=40001))
    assert segment_key(with_options) == (pair_key(CLIENT, TARGET), 24)
    v6 = bytes(IPv6(src="2001:db8::1", dst="2001:db8::7") / TCP(sport=443, dport=40001))
    assert segment_key(v6) == (pair_key(Endpoint.parse("[2001:db8::7]:40001"), Endpoint.parse("[2001:db8::1]:443")), 40)


def test_segment_keys_hold_ports_with_the_high_bit_set() -> None:
    """Both ports in one int: a SUT on port 50000 answering client port 65535 (no sign trouble)."""
    client, target = Endpoint.parse("198.18.0.7:65535"), Endpoint.parse("10.0.0.2:50000")
    segment = bytes(IP(src="10.0.0.2", dst="198.18.0.7") / TCP(sport=50000, dport=65535, flags="SA"))
    assert segment_key(segment) == (pair_key(client, target), 20)
    assert pair_key(client, target) != pair_key(Endpoint.parse("198.18.0.7:50000"), Endpoint.parse("10.0.0.2:65535"))


def test_segment_key_refuses_what_it_cannot_read() -> None:
    assert segment_key(b"") is None
    assert segment_key(reply()[:30]) is None
    assert segment_key(bytes(IP(src="10.0.0.2", dst="198.18.0.7", proto=17) / (b"\x00" * 20))) is None
    assert segment_key(b"\x50" + b"\x00" * 59) is None


def test_full_four_tuple_keys_do_not_alias() -> None:
    table: RouteTable[str] = RouteTable()
    other_target = Endpoint.parse("10.0.0.3:8080")
    table.register(pair_key(CLIENT, TARGET), "a")
    table.register(pair_key(CLIENT, other_target), "b")
    assert table.owners[segment_key(reply())[0]] == "a"
    assert table.owners[pair_key(CLIENT, other_target)] == "b"


def test_unregister_and_drop_owner() -> None:
    table: RouteTable[str] = RouteTable()
    table.register(pair_key(CLIENT, TARGET), "a")
    table.unregister(pair_key(CLIENT, TARGET), "b")
    assert pair_key(CLIENT, TARGET) in table.owners
    table.register(pair_key(CLIENT, TARGET), "b")  # a later registration wins
    assert table.drop_owner("a") == 0
    assert table.drop_owner("b") == 1
    assert table.owners == {}


def test_syn_ack_and_rst_are_parked_until_registered_others_are_not() -> None:
    table: RouteTable[str] = RouteTable(delay_limit=2.0)
    key = pair_key(CLIENT, TARGET)
    assert table.park(key, b"syn-ack", 0x12, now=10.0)
    assert table.park(key, b"rst", 0x04, now=10.5)
    assert not table.park(key, b"data", 0x18, now=10.5)
    assert table.register(key, "a") == [b"syn-ack", b"rst"]
    assert table.register(key, "a") == []
    assert table.parked_count == 0


def test_parked_segments_expire() -> None:
    table: RouteTable[str] = RouteTable(delay_limit=2.0, delay_capacity=2)
    key = pair_key(CLIENT, TARGET)
    table.park(key, b"syn-ack", 0x12, now=10.0)
    table.park(pair_key(Endpoint.parse("198.18.0.8:1"), TARGET), b"rst", 0x04, now=11.0)
    assert not table.park(key, b"third", 0x12, now=11.0)  # over capacity
    assert table.next_expiry() == 12.0
    assert table.expire(11.9) == 0
    assert table.expire(12.0) == 1
    assert table.register(key, "a") == []
    assert table.expire(13.0) == 1
    assert table.parked_count == 0 and table.next_expiry() is None
