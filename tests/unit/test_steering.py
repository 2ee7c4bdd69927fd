"""The CPU split and the RPS bitmap of the netns rig's receive steering (pure functions)."""

import pytest

from pytest_tcpcopy.backends.netns.steering import CpuSplit, auto_steer, receive_thread_problem, rps_mask, split_cpus


def test_the_copier_gets_the_last_cpu_and_receiving_the_rest():
    assert split_cpus({0, 1}) == CpuSplit(copier=frozenset({1}), receive=frozenset({0}))
    assert split_cpus([5, 2, 9]) == CpuSplit(copier=frozenset({9}), receive=frozenset({2, 5}))


def test_a_single_cpu_is_not_split():
    assert split_cpus({3}) is None
    assert split_cpus(()) is None


@pytest.mark.parametrize(
    ("cpus", "mask"),
    [({0}, "1"), ({0, 1, 2}, "7"), ({4}, "10"), ({31}, "80000000"), ({32}, "1,00000000"),
     (set(range(40)), "ff,ffffffff"), ({0, 64}, "1,00000000,00000001")],
)  # fmt: skip
def test_rps_masks_are_hex_in_groups_of_32_cpus(cpus, mask):
    assert rps_mask(cpus) == mask


def test_an_empty_or_negative_cpu_set_is_refused():
    with pytest.raises(ValueError):
        rps_mask(set())
    with pytest.raises(ValueError):
        rps_mask({-1})


def test_steering_is_automatic_from_three_cpus_on() -> None:
    assert [auto_steer(set(range(n))) for n in (1, 2, 3, 8)] == [False, False, True, True]


def test_the_receive_thread_needs_a_veth_that_pushes_back() -> None:
    assert receive_thread_problem("6.18.44-fc-v595") is None
    assert receive_thread_problem("6.16.0") is None
    assert receive_thread_problem("7.0.1-arch1-1") is None
    for old in ("6.15.9-arch1-1", "6.1.0-18-cloud-amd64", "5.10.0-28-amd64"):
        assert "lacks veth backpressure (Linux 6.16)" in receive_thread_problem(old)
    assert "cannot tell" in receive_thread_problem("custom")
