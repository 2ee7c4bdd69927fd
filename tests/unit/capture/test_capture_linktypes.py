"""Link-header decoders on hand-made frames: every BSD address family in both byte orders, VLAN
stacks behind cooked headers, and frames too short for their own link header."""

from __future__ import annotations

import pytest

from pytest_tcpcopy.capture.linktypes import CUT, LINK_DECODERS, NOT_IP, bsd_loop, bsd_null, linux_sll, linux_sll2

IPV4 = b"\x45" + b"\0" * 19
IPV6 = b"\x60" + b"\0" * 39


@pytest.mark.parametrize("family,version", [(2, 4), (24, 6), (28, 6), (30, 6), (7, NOT_IP)])
@pytest.mark.parametrize("order", ["little", "big"])
def test_null_family_in_either_host_order(family: int, version: int, order: str) -> None:
    assert bsd_null(family.to_bytes(4, order) + IPV4) == (version, 4)


@pytest.mark.parametrize("family,version", [(2, 4), (24, 6), (28, 6), (30, 6), (0x02000000, NOT_IP)])
def test_loop_family_in_network_order(family: int, version: int) -> None:
    assert bsd_loop(family.to_bytes(4, "big") + IPV4) == (version, 4)


def test_cooked_headers_with_vlan_tags() -> None:
    sll = b"\0" * 14 + b"\x81\x00" + b"\x00\x0a" + b"\x86\xdd" + IPV6
    assert linux_sll(sll) == (6, 20)
    sll2 = b"\x88\xa8" + b"\0" * 18 + b"\x00\x64" + b"\x81\x00" + b"\x00\x0a" + b"\x08\x00" + IPV4
    assert linux_sll2(sll2) == (4, 28)
    assert linux_sll2(b"\x08\x06" + b"\0" * 18) == (NOT_IP, 20)  # ARP


@pytest.mark.parametrize("linktype", sorted(LINK_DECODERS))
def test_short_frames_are_cut_not_guessed(linktype: int) -> None:
    decode = LINK_DECODERS[linktype]
    assert decode(b"")[0] == CUT
    for size in range(1, 24):
        version, offset = decode(b"\x45" * size)
        assert version in (CUT, NOT_IP, 4, 6)
        assert version <= 0 or offset <= size
