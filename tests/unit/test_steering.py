"""The RPS bitmap of the netns rig's receive steering (a pure function)."""

import pytest

from pytest_tcpcopy.netns.steering import rps_mask


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
