"""Client address remapping, amplify allocation, and capture pacing."""

from __future__ import annotations

import ipaddress

import pytest

from pytest_tcpcopy.endpoint import Endpoint
from pytest_tcpcopy.errors import UsageError
from pytest_tcpcopy.tcp import CapturePacer, ClientAddressMap, ClientAllocator


def clients(n: int) -> list[bytes]:
    return [ipaddress.ip_address(0x0A000000 + i).packed for i in range(n)]


def test_distinct_clients_stay_distinct_inside_the_network():
    m = ClientAddressMap()
    got = [m.address(a) for a in clients(5000)]
    assert len(set(got)) == 5000
    net = ipaddress.ip_network("198.18.0.0/15")
    assert all(ipaddress.ip_address(a) in net for a in got)
    assert all(ipaddress.ip_address(a) not in (net.network_address, net.broadcast_address) for a in got)


def test_mapping_is_deterministic_and_stable():
    a, b = ClientAddressMap(), ClientAddressMap()
    addrs = clients(300)
    assert [a.address(x) for x in addrs] == [b.address(x) for x in addrs]
    assert a.address(addrs[7]) == a.address(addrs[7]) and len(a) == 300


def test_collisions_are_probed_not_shared():
    m = ClientAddressMap("10.0.0.0/29")  # six usable addresses: collisions are certain
    got = {m.address(x) for x in clients(6)}
    assert len(got) == 6
    with pytest.raises(UsageError, match="full"):
        m.address(clients(7)[6])


def test_amplified_copies_are_unique_across_sessions_and_copies():
    alloc = ClientAllocator(copies=20)
    sessions = [Endpoint(a, port) for a in clients(40) for port in (40000, 40001, 51000)]
    seen = set()
    for ep in sessions:
        for k in range(20):
            seen.add(alloc.endpoint(ep, k))
    assert len(seen) == len(sessions) * 20
    again = ClientAllocator(copies=20)
    assert again.endpoint(sessions[5], 3) == alloc.endpoint(sessions[5], 3)
    assert alloc.endpoint(sessions[5], 3).port == sessions[5].port


def test_allocator_rejects_copies_out_of_range():
    alloc = ClientAllocator(copies=2)
    with pytest.raises(UsageError, match="copy 2"):
        alloc.endpoint(Endpoint(clients(1)[0], 1), 2)
    with pytest.raises(UsageError):
        ClientAllocator(copies=0)
    with pytest.raises(UsageError, match="client network"):
        ClientAddressMap("not-a-net")


def test_ipv6_captured_clients_map_into_the_ipv4_network():
    m = ClientAddressMap()
    v6 = ipaddress.ip_address("2001:db8::5").packed
    assert len(m.address(v6)) == 4


def test_pacer_maps_capture_time_to_replay_time():
    p = CapturePacer(2.0)
    assert p.due(100.0, now=5.0) == 5.0
    assert p.due(101.0, now=5.1) == pytest.approx(5.5)
    assert p.due(104.0, now=5.1) == pytest.approx(7.0)


def test_pacer_without_speed_sends_everything_at_once():
    p = CapturePacer(None)
    assert [p.due(t, now=3.0) for t in (10.0, 20.0, 30.0)] == [3.0, 3.0, 3.0]


def test_pacer_skips_long_idle_gaps():
    p = CapturePacer(1.0, max_gap=1.0)
    p.due(0.0, now=0.0)
    assert p.due(0.5, now=0.0) == pytest.approx(0.5)
    assert p.due(10.5, now=0.0) == pytest.approx(1.5)  # a 10 s silence became 1 s
    assert p.due(11.0, now=0.0) == pytest.approx(2.0)


def test_pacer_never_schedules_before_the_start():
    p = CapturePacer(1.0)
    p.due(50.0, now=1.0)
    assert p.due(49.0, now=1.0) == 1.0


@pytest.mark.parametrize("speed", [0, -1.0])
def test_pacer_rejects_bad_speed(speed):
    with pytest.raises(UsageError, match="speed"):
        CapturePacer(speed)
