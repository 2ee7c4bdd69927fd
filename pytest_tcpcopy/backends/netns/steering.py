"""Keeping the SUT's receive work off the copier's CPU.

A raw send into a plain veth runs the receiving side's whole network stack (IP, netfilter, TCP,
waking the SUT) at once, in the sender's context: without the receive thread, about a third of
the copier's CPU on short sessions is the SUT's kernel work, billed to the copier's core.

Receive thread (the rig's default): with GRO on at the SUT's end, a veth receives through NAPI,
and with threaded NAPI that polling runs in a kernel thread of its own (``napi/<veth>-N``). The
copier's send then only queues the packet; the thread takes the SUT's receive work in batches,
on whichever CPU the scheduler finds room. It needs no CPU count and no pinning, so it suits
short sessions (copier-bound) and keep-alive (SUT-bound) alike; and the batches cost less than
the same work packet by packet. GRO may merge consecutive segments of one flow on their way
into the SUT: its TCP sees the same byte stream in fewer segments, as behind any modern NIC.
The copier's own side keeps every offload off (veth only uses NAPI for senders without TSO) and
gets a packet queue: the thread's ring holds 256 packets, and a veth with a queue behind it
pushes back when the ring is full instead of dropping (Linux 6.16 on; on older kernels the rig
stays unthreaded). docs/benchmarks.md has the figures.

Steering (on request, or by default from three CPUs on): the rig
pins the copier to one CPU and sets Receive Packet Steering on the SUT side of the veth to the
others, so that work is queued to them instead. Nothing changes what is sent or received, and
nothing changes on a single CPU.

Why pinned, and not RPS over every CPU: RPS picks a CPU by the packet's flow hash, and every packet
of the copier's connected raw socket carries that socket's one hash, so "every CPU" means one CPU
per replay, chosen at random: some runs all offloaded, others not at all.

When it pays: it moves work, it does not remove it. With the receive thread on (the default),
short sessions come out even on two CPUs while keep-alive, which waits on every round trip, loses
about 10 % (the one other CPU, shared by the SUT, the intercept and all the receive work, fills
up, and each round trip crosses CPUs); docs/benchmarks.md has the figures. With three CPUs or more the receive work has room of its own.
Hence ``auto_steer``: the netns backend and ``netns-run`` steer by default from three CPUs on;
``--steer-receive`` / ``--no-steer-receive`` (``steer_receive=True/False``) decide either way.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

RECEIVE_THREAD_OFFLOADS = ("gro", "on")  # a veth end with GRO on receives through NAPI
# The copier's end of the veth: a queue the veth can push back into when the receive thread's ring
# (256 packets) is full. Without one, a burst of sends overflows the ring and the packets are lost
# (about one session in six had to retransmit at --speed max). The copier's raw socket buffer
# bounds what waits in it, well below the limit.
RECEIVE_THREAD_QDISC = ("pfifo", "limit", "65536")
VETH_BACKPRESSURE = (6, 16)  # Linux release whose veth pushes back into a qdisc instead of dropping


def receive_thread_problem(kernel_release: str) -> str | None:
    """Why the receive thread would lose packets on this kernel (``platform.release()``), or None."""
    try:
        version = tuple(int(part) for part in kernel_release.split("-")[0].split(".")[:2])
    except ValueError:
        return f"cannot tell the kernel version from {kernel_release!r}"
    if version < VETH_BACKPRESSURE:
        wanted = ".".join(map(str, VETH_BACKPRESSURE))
        return f"kernel {kernel_release} lacks veth backpressure (Linux {wanted}): its receive ring would drop bursts"
    return None


@dataclass(frozen=True)
class CpuSplit:
    copier: frozenset[int]  # the CPUs the copier may run on
    receive: frozenset[int]  # the CPUs that run the SUT side's receive processing


AUTO_STEER_MIN_CPUS = 3


def auto_steer(allowed: Collection[int]) -> bool:
    """Whether to steer when not told: with three CPUs or more to run on."""
    return len(allowed) >= AUTO_STEER_MIN_CPUS


def split_cpus(allowed: Collection[int]) -> CpuSplit | None:
    """The last allowed CPU for the copier, the rest for receiving; None with fewer than two."""
    cpus = sorted(allowed)
    if len(cpus) < 2:
        return None
    return CpuSplit(copier=frozenset(cpus[-1:]), receive=frozenset(cpus[:-1]))


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
