"""Classic BPF for live capture: "tcp and (port P1 or port P2 ...)" on Ethernet frames, built here.

No libpcap: the program is assembled from the handful of instructions tcpdump itself emits for that
expression (``tcpdump -dd 'tcp and (port 80 or port 8080)'``), for IPv4 and IPv6. One deliberate
difference: IPv4 TCP fragments other than the first carry no ports, and tcpdump drops them; this
program keeps them, so the receiving side can reassemble the datagram and check its ports there.
An IPv6 packet whose TCP header sits behind extension headers is dropped, as tcpdump does.

The kernel attaches the program with SO_ATTACH_FILTER; a nonzero return value is the number of
bytes of the frame to keep (the snap length).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Sequence

from ..errors import UsageError

# Instruction layout: struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; }, host byte order.
INSTRUCTION = struct.Struct("=HBBI")

LD_W_ABS = 0x20  # A = u32 at [k]; with k = SKF_AD_OFF + n, the kernel's ancillary field n
LD_H_ABS = 0x28  # A = u16 at [k]
LD_B_ABS = 0x30  # A = u8 at [k]
LD_H_IND = 0x48  # A = u16 at [X + k]
LDX_B_MSH = 0xB1  # X = 4 * ([k] & 0x0F): the IPv4 header length
JEQ_K = 0x15  # pc += (A == k) ? jt : jf
JSET_K = 0x45  # pc += (A & k) ? jt : jf
RET_K = 0x06  # accept k bytes (0: drop)

SKF_AD_PKTTYPE = 0xFFFFF000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE: the packet's direction/type
PACKET_OUTGOING = 4
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
IPPROTO_TCP = 6
MAX_PORTS = 48  # jumps are 8-bit: past this, the port comparisons outgrow them

Instruction = tuple[int, int, int, int]

_ACCEPT = "accept"
_DROP = "drop"
_IPV6 = "ipv6"


def tcp_ports_filter(ports: Sequence[int], snaplen: int, *, skip_outgoing: bool = False) -> list[Instruction]:
    """The program that keeps TCP segments from or to any of ``ports`` (Ethernet framing), cut to
    ``snaplen`` bytes, plus IPv4 TCP fragments past the first (whose ports cannot be seen).

    ``skip_outgoing`` drops packets the host sends: for a loopback interface, where every packet
    is also seen arriving (libpcap skips the leaving copy the same way, in user space).
    """
    ports = sorted(set(ports))
    if not ports:
        raise UsageError("live capture needs at least one TCP port to filter on")
    if len(ports) > MAX_PORTS:
        raise UsageError(f"live capture filters on at most {MAX_PORTS} ports, got {len(ports)}")
    for port in ports:
        if not 0 < port < 65536:
            raise UsageError(f"port {port}: expected 1..65535")
    if not 0 < snaplen <= 0xFFFFFFFF:
        raise UsageError(f"snap length {snaplen}: expected a positive byte count")
    # (code, jump-if-true label, jump-if-false label, k); a None label means the next instruction.
    direction = [(LD_W_ABS, None, None, SKF_AD_PKTTYPE), (JEQ_K, _DROP, None, PACKET_OUTGOING)]
    program: list[tuple[int, str | None, str | None, int] | str] = [
        *(direction if skip_outgoing else []),
        (LD_H_ABS, None, None, 12),
        (JEQ_K, None, _IPV6, ETHERTYPE_IPV4),
        (LD_B_ABS, None, None, 23),
        (JEQ_K, None, _DROP, IPPROTO_TCP),
        (LD_H_ABS, None, None, 20),
        (JSET_K, _ACCEPT, None, 0x1FFF),  # a non-first fragment: keep, its ports are checked later
        (LDX_B_MSH, None, None, 14),
        (LD_H_IND, None, None, 14),
        *_any_port(ports, None),
        (LD_H_IND, None, None, 16),
        *_any_port(ports, _DROP),
        _IPV6,
        (JEQ_K, None, _DROP, ETHERTYPE_IPV6),
        (LD_B_ABS, None, None, 20),
        (JEQ_K, None, _DROP, IPPROTO_TCP),
        (LD_H_ABS, None, None, 54),
        *_any_port(ports, None),
        (LD_H_ABS, None, None, 56),
        *_any_port(ports, _DROP),
        _ACCEPT,
        (RET_K, None, None, snaplen),
        _DROP,
        (RET_K, None, None, 0),
    ]
    return _resolve(program)


def _any_port(ports: list[int], otherwise: str | None) -> list[tuple[int, str | None, str | None, int]]:
    """Compare A with each port: equal jumps to accept; the last mismatch goes to ``otherwise``."""
    return [(JEQ_K, _ACCEPT, otherwise if i == len(ports) - 1 else None, port) for i, port in enumerate(ports)]


def _resolve(program: list) -> list[Instruction]:
    labels: dict[str, int] = {}
    code: list[tuple[int, str | None, str | None, int]] = []
    for item in program:
        if isinstance(item, str):
            labels[item] = len(code)
        else:
            code.append(item)
    out: list[Instruction] = []
    for pc, (op, jt, jf, k) in enumerate(code):
        offsets = [0 if label is None else labels[label] - pc - 1 for label in (jt, jf)]
        if any(not 0 <= off <= 255 for off in offsets):
            raise UsageError(f"BPF jump out of range at instruction {pc}; use fewer ports")
        out.append((op, offsets[0], offsets[1], k))
    return out


def pack(program: Sequence[Instruction]) -> bytes:
    """The instructions as the kernel reads them (struct sock_filter[])."""
    return b"".join(INSTRUCTION.pack(*ins) for ins in program)


def sock_fprog(program: Sequence[Instruction]) -> tuple[bytes, ctypes.Array]:
    """A struct sock_fprog for setsockopt, and the instruction buffer it points to (keep it alive
    until setsockopt returns)."""
    instructions = ctypes.create_string_buffer(pack(program))
    return struct.pack("HP", len(program), ctypes.addressof(instructions)), instructions
