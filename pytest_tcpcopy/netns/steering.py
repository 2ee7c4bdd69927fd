"""Receive steering on the SUT side of the veth: its receive work spread over the CPUs.

A packet sent into a veth is received at once, in the sender's own context: the SUT namespace's
whole network stack (IP, netfilter, TCP, waking the SUT) runs inside the copier's raw send, on
the copier's CPU, and is billed to the copier (about a seventh of its CPU on short sessions).
A real server's NIC spreads received packets over the CPUs (RSS). Receive Packet Steering on the
SUT side of the veth does the same: each flow's packets are queued to a CPU chosen by its hash,
and processed there, beside the copier instead of inside it. Nothing changes what is sent or
received, or its order within a connection.

Measured on 2 CPUs (docs/benchmarks.md): short sessions about 15-20 % faster, keep-alive
unchanged. Pinning the copier to one CPU and steering to the others gained a little more on short
sessions but cost keep-alive a tenth (the SUT, the intercept and all the receive work then share
one CPU), so the rig does not pin.
"""

from __future__ import annotations

from collections.abc import Collection


def rps_mask(cpus: Collection[int]) -> str:
    """``cpus`` as the kernel's rps_cpus bitmap: hex, in comma-separated groups of 32 CPUs."""
    if not cpus or min(cpus) < 0:
        raise ValueError(f"an RPS mask needs CPU numbers >= 0, not {sorted(cpus)}")
    bits = sum(1 << cpu for cpu in set(cpus))
    groups = []
    while True:
        groups.append(bits & 0xFFFFFFFF)
        bits >>= 32
        if not bits:
            break
    return ",".join([f"{groups[-1]:x}", *(f"{g:08x}" for g in reversed(groups[:-1]))])
