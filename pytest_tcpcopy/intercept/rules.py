"""The netfilter rules and the route the intercept puts into the SUT's network namespace.

One chain per intercept, ``TCPCOPY-<pid>``, jumped to first thing from OUTPUT:

    -p tcp -d RANGE --sport PORT -j NFQUEUE --queue-num Q   (one per service port; never --queue-bypass)
    -d RANGE -j DROP                                         (fail closed: anything else to a replayed client)

If the intercept dies, the NFQUEUE rule stays with no reader bound and the kernel drops what it
queues: still fail closed. Only traffic to the client range is touched, so the SUT keeps serving
everyone else (health checks, the harness). The SUT also needs a route to the client range or it
never answers a SYN; when none covers it, one is added with protocol ``ROUTE_PROTO`` so that
``reap()`` can find it after a killed run.

iptables is tried with its nft backend first, then ``iptables-legacy``; whichever accepts the
chain is used. IPv6 ranges use ip6tables the same way.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import EnvironmentProblem

log = logging.getLogger(__name__)

CHAIN_PREFIX = "TCPCOPY-"
ROUTE_PROTO = 124  # an unassigned routing protocol number: marks routes the intercept added
DEFAULT_CLIENT_RANGE = "198.18.0.0/15"

_TOOLS = {4: ("iptables", "iptables-legacy"), 6: ("ip6tables", "ip6tables-legacy")}
_CAP_HINT = "the intercept needs CAP_NET_ADMIN in the SUT's network namespace"


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        raise EnvironmentProblem(f"{argv[0]} is not installed; the intercept needs iptables and iproute2") from None


def _check(argv: Sequence[str]) -> str:
    done = _run(argv)
    if done.returncode != 0:
        raise EnvironmentProblem(f"`{' '.join(argv)}` failed: {done.stderr.strip()}; {_CAP_HINT}")
    return done.stdout


@dataclass
class RuleSet:
    """Rules and routes installed by ``install``; ``remove()`` takes them out again (idempotent)."""

    chain: str
    tools: dict[int, str] = field(default_factory=dict)  # family -> iptables binary in use
    routes: list[tuple[str, str]] = field(default_factory=list)  # (range, dev) we added

    def remove(self) -> None:
        """Remove the chain from every tool it was put in, then the routes we added."""
        problems = []
        for tool in self.tools.values():
            problems += _remove_chain(tool, self.chain)
        self.tools.clear()
        for cidr, dev in self.routes:
            done = _run(["ip", f"-{_family(cidr)}", "route", "del", cidr, "dev", dev, "proto", str(ROUTE_PROTO)])
            if done.returncode != 0:
                problems.append(f"route {cidr} dev {dev}: {done.stderr.strip()}")
        self.routes.clear()
        if problems:
            raise EnvironmentProblem("could not remove every intercept rule: " + "; ".join(problems))


def _family(cidr: str) -> int:
    return ipaddress.ip_network(cidr, strict=False).version


def _remove_chain(tool: str, chain: str) -> list[str]:
    while _run([tool, "-w", "-D", "OUTPUT", "-j", chain]).returncode == 0:
        pass
    problems = []
    for op in ("-F", "-X"):
        done = _run([tool, "-w", op, chain])
        if done.returncode != 0:
            problems.append(f"{tool} {op} {chain}: {done.stderr.strip()}")
    return problems


def _pick_tool(family: int, chain: str) -> str:
    errors = []
    for tool in _TOOLS[family]:
        done = _run([tool, "-w", "-N", chain]) if _has(tool) else None
        if done is None:
            errors.append(f"{tool}: not installed")
        elif done.returncode == 0:
            return tool
        else:
            errors.append(f"{tool}: {done.stderr.strip()}")
    raise EnvironmentProblem(f"cannot create chain {chain}: {'; '.join(errors)}; {_CAP_HINT}")


def _has(tool: str) -> bool:
    return shutil.which(tool, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])) is not None


def _route_device(cidr: str) -> str | None:
    """None when a route already covers ``cidr``; else the interface to route it through."""
    net = ipaddress.ip_network(cidr, strict=False)
    probe = _run(["ip", f"-{net.version}", "route", "get", str(net.network_address + 1)])
    if probe.returncode == 0:
        return None
    links = json.loads(_check(["ip", "-j", "link", "show", "up"]) or "[]")
    for link in links:
        if "LOOPBACK" not in link.get("flags", []):
            return str(link["ifname"])
    raise EnvironmentProblem(
        f"the SUT's network namespace has no route for the client range {cidr} and no interface "
        "that is up to add one through; the SUT could not answer replayed clients"
    )


def install(ports: Sequence[int], queue_num: int, client_ranges: Sequence[str], *, chain: str | None = None) -> RuleSet:
    """Queue the SUT's TCP from ``ports`` to ``client_ranges`` to NFQUEUE ``queue_num``, fail closed.

    Everything installed is removed again when a step fails.
    """
    if not ports:
        raise ValueError("install() needs at least one service port")
    rules = RuleSet(chain or f"{CHAIN_PREFIX}{os.getpid()}")
    try:
        for family in sorted({_family(c) for c in client_ranges}):
            tool = _pick_tool(family, rules.chain)
            rules.tools[family] = tool
            for cidr in (c for c in client_ranges if _family(c) == family):
                for port in ports:
                    _check([tool, "-w", "-A", rules.chain, "-p", "tcp", "-d", cidr, "--sport", str(port),
                            "-j", "NFQUEUE", "--queue-num", str(queue_num)])
                _check([tool, "-w", "-A", rules.chain, "-d", cidr, "-j", "DROP"])
            _check([tool, "-w", "-I", "OUTPUT", "1", "-j", rules.chain])
        for cidr in client_ranges:
            dev = _route_device(cidr)
            if dev is not None:
                _check(["ip", f"-{_family(cidr)}", "route", "add", cidr, "dev", dev, "proto", str(ROUTE_PROTO)])
                rules.routes.append((cidr, dev))
    except BaseException:
        rules.remove()
        raise
    log.info("installed chain %s (%s), routes %s", rules.chain, rules.tools, rules.routes)
    return rules


def _owner_alive(chain: str) -> bool:
    pid = chain[len(CHAIN_PREFIX):]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    return b"intercept" in cmdline and b"tcpcopy" in cmdline


def reap() -> list[str]:
    """Remove what killed intercepts left in this namespace: chains named ``TCPCOPY-<pid>`` whose
    process is gone, and, when no live intercept remains, routes marked with ``ROUTE_PROTO``.
    Returns a description of each thing removed."""
    removed = []
    live = False
    for family, tools in _TOOLS.items():
        for tool in tools:
            if not _has(tool):
                continue
            listing = _run([tool, "-w", "-S"])
            if listing.returncode != 0:
                continue
            for line in listing.stdout.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == "-N" and parts[1].startswith(CHAIN_PREFIX):
                    if _owner_alive(parts[1]):
                        live = True
                        continue
                    problems = _remove_chain(tool, parts[1])
                    if problems:
                        raise EnvironmentProblem("could not reap: " + "; ".join(problems))
                    removed.append(f"{tool} chain {parts[1]}")
    if not live:
        for family in (4, 6):
            listing = _run(["ip", f"-{family}", "route", "show", "proto", str(ROUTE_PROTO)])
            for line in listing.stdout.splitlines() if listing.returncode == 0 else []:
                argv = ["ip", f"-{family}", "route", "del", *line.split()]
                if _run(argv).returncode == 0:
                    removed.append(f"route {line.strip()}")
    return removed
