"""A tiny classic-BPF interpreter: enough of the instruction set for tcpdump's and our programs.

Loads past the end of the frame end the program with 0 (drop), as the kernel does. Of the
kernel's ancillary loads only the packet type (direction) is known: pass it as ``pkttype``.
"""

from __future__ import annotations

import struct

_CLASS = 0x07
_LD, _LDX, _ALU, _JMP, _RET = 0x00, 0x01, 0x04, 0x05, 0x06
_SIZE = 0x18
_W, _H, _B = 0x00, 0x08, 0x10
_MODE = 0xE0
_IMM, _ABS, _IND, _MSH = 0x00, 0x20, 0x40, 0xA0
_JA, _JEQ, _JGT, _JGE, _JSET = 0x00, 0x10, 0x20, 0x30, 0x40
_X_SOURCE = 0x08
_ALU_OPS = {0x00: lambda a, b: a + b, 0x10: lambda a, b: a - b, 0x50: lambda a, b: a & b,
            0x40: lambda a, b: a | b, 0x60: lambda a, b: a << b, 0x70: lambda a, b: a >> b}  # fmt: skip


def _load(frame: bytes, at: int, size: int) -> int | None:
    width = {_W: 4, _H: 2, _B: 1}[size]
    if at < 0 or at + width > len(frame):
        return None
    return int.from_bytes(frame[at : at + width], "big")


_SKF_AD_PKTTYPE = 0xFFFFF004
PACKET_HOST, PACKET_OUTGOING = 0, 4


def run(
    program: list[tuple[int, int, int, int]], frame: bytes, pkttype: int = PACKET_HOST, max_steps: int = 4096
) -> int:
    """The program's return value for ``frame`` (0: drop; else bytes to keep)."""
    a = x = 0
    pc = 0
    for _ in range(max_steps):
        code, jt, jf, k = program[pc]
        cls = code & _CLASS
        pc += 1
        if cls == _RET:
            return a if code & 0x18 == 0x10 else k
        if cls == _LD:
            mode = code & _MODE
            if mode == _IMM:
                a = k
                continue
            if mode == _ABS and k >= 0xFFFFF000:
                if k != _SKF_AD_PKTTYPE:
                    raise ValueError(f"ancillary load 0x{k:x} not interpreted")
                a = pkttype
                continue
            value = _load(frame, k if mode == _ABS else x + k, code & _SIZE)
            if value is None:
                return 0
            a = value
        elif cls == _LDX:
            if code & _MODE == _MSH:
                value = _load(frame, k, _B)
                if value is None:
                    return 0
                x = (value & 0x0F) * 4
            else:
                x = k
        elif cls == _ALU:
            operand = x if code & _X_SOURCE else k
            a = _ALU_OPS[code & 0xF0](a, operand) & 0xFFFFFFFF
        elif cls == _JMP:
            op = code & 0xF0
            if op == _JA:
                pc += k
                continue
            operand = x if code & _X_SOURCE else k
            taken = {_JEQ: a == operand, _JGT: a > operand, _JGE: a >= operand, _JSET: bool(a & operand)}[op]
            pc += jt if taken else jf
        else:
            raise ValueError(f"instruction 0x{code:02x} not interpreted")
    raise RuntimeError("program did not return")


def parse_dd(text: str) -> list[tuple[int, int, int, int]]:
    """Instructions from ``tcpdump -dd`` output."""
    out = []
    for line in text.splitlines():
        line = line.strip().strip(",").strip("{}")
        if line:
            out.append(tuple(int(field.strip(), 0) for field in line.split(",")))
    return out


def from_bytes(packed: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack_from("=HBBI", packed, at) for at in range(0, len(packed), 8)]
