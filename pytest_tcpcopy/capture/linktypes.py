"""Link-layer headers: where the IP packet starts inside a captured frame, per link type.

Each decoder takes the frame bytes and returns ``(ip_version, offset)``: version 4 or 6 with the
offset of the IP header, ``NOT_IP`` for frames that carry something else (ARP, LLDP, ...), or
``CUT`` when the frame is too short to hold its own link header.
"""

from __future__ import annotations

from collections.abc import Callable

NOT_IP = 0
CUT = -1

# A link decoder: frame -> (IP version or NOT_IP or CUT, offset of the IP header); see above.
LinkDecoder = Callable[[bytes], tuple[int, int]]

ETHERNET = 1
NULL = 0
LOOP = 108
RAW = 101
RAW_DLT_12 = 12
RAW_DLT_14 = 14
IPV4 = 228  # written by scapy's pcapng writer for IPv6 packets too, so the nibble decides here as well
IPV6 = 229
LINUX_SLL = 113
LINUX_SLL2 = 276

_ETHERTYPE_VERSION = {0x0800: 4, 0x86DD: 6}
_VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))
# BSD address families: AF_INET, then AF_INET6 as numbered by NetBSD/OpenBSD, FreeBSD and macOS.
_FAMILY_VERSION = {2: 4, 24: 6, 28: 6, 30: 6}


def _after_ethertype(frame: bytes, at: int) -> tuple[int, int]:
    """Follow a 2-byte ethertype at ``at`` through any stack of VLAN tags to the IP header."""
    while True:
        if len(frame) < at + 2:
            return CUT, 0
        ethertype = (frame[at] << 8) | frame[at + 1]
        if ethertype in _VLAN_TPIDS:
            at += 4  # skip the TPID's tag control field; the next ethertype follows it
            continue
        return _ETHERTYPE_VERSION.get(ethertype, NOT_IP), at + 2


def ethernet(frame: bytes) -> tuple[int, int]:
    return _after_ethertype(frame, 12)


def linux_sll(frame: bytes) -> tuple[int, int]:
    """Linux cooked v1: 16-byte header, protocol in its last two bytes."""
    return _after_ethertype(frame, 14)


def linux_sll2(frame: bytes) -> tuple[int, int]:
    """Linux cooked v2: 20-byte header, protocol in its first two bytes; VLAN tags follow it."""
    if len(frame) < 20:
        return CUT, 0
    protocol = (frame[0] << 8) | frame[1]
    if protocol in _VLAN_TPIDS:
        return _after_ethertype(frame, 22)
    return _ETHERTYPE_VERSION.get(protocol, NOT_IP), 20


def raw_ip(frame: bytes) -> tuple[int, int]:
    """No link header: the IP version is the first nibble."""
    if not frame:
        return CUT, 0
    version = frame[0] >> 4
    return (version, 0) if version in (4, 6) else (NOT_IP, 0)


def bsd_null(frame: bytes) -> tuple[int, int]:
    """4-byte address family in the capturing host's byte order, which may not be the file's."""
    if len(frame) < 4:
        return CUT, 0
    family = int.from_bytes(frame[:4], "little")
    if family > 0xFFFF:
        family = int.from_bytes(frame[:4], "big")
    return _FAMILY_VERSION.get(family, NOT_IP), 4


def bsd_loop(frame: bytes) -> tuple[int, int]:
    """4-byte address family in network byte order."""
    if len(frame) < 4:
        return CUT, 0
    return _FAMILY_VERSION.get(int.from_bytes(frame[:4], "big"), NOT_IP), 4


LINK_DECODERS: dict[int, LinkDecoder] = {
    ETHERNET: ethernet,
    LINUX_SLL: linux_sll,
    LINUX_SLL2: linux_sll2,
    RAW: raw_ip,
    RAW_DLT_12: raw_ip,
    RAW_DLT_14: raw_ip,
    IPV4: raw_ip,
    IPV6: raw_ip,
    NULL: bsd_null,
    LOOP: bsd_loop,
}
