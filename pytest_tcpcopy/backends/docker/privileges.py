"""The least privilege each container of a run gets.

- The SUT keeps Docker's default capabilities but ``NET_RAW`` (no raw sockets, no ``ping``) and
  runs with ``no-new-privileges`` (no set-uid or file-capability gains). ``cap_add`` gives
  capabilities back (``NET_RAW`` included); ``new_privileges=True`` lifts ``no-new-privileges``
  for images whose entrypoint relies on set-uid binaries (``su``, ``sudo``).
- Agent containers drop every capability and run as uid 65534. The one that needs a capability
  gets it alone and runs the agent image's Python copy that carries it as a file capability
  (``agent.Dockerfile``): ``python3-netraw`` for the copier's raw socket, ``python3-netadmin``
  for the intercept's NFQUEUE (whose ``iptables`` and ``ip`` carry ``cap_net_admin`` too). File
  capabilities are granted at exec, which ``no-new-privileges`` forbids, so only the agent
  containers without a capability (the probe) also get ``no-new-privileges``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import UsageError

AGENT_USER = "65534:65534"
NO_NEW_PRIVILEGES = "no-new-privileges:true"
SUT_DROPPED = ("NET_RAW",)
_CAPABLE_PYTHON = {"NET_RAW": "python3-netraw", "NET_ADMIN": "python3-netadmin"}


def sut_privileges(cap_add: Sequence[str] = (), *, new_privileges: bool = False) -> dict[str, Any]:
    """``containers.run`` keywords for a SUT container."""
    given = [_capability(cap) for cap in cap_add]
    return {
        "cap_drop": [cap for cap in SUT_DROPPED if cap not in given] or None,
        "cap_add": given or None,
        "security_opt": None if new_privileges else [NO_NEW_PRIVILEGES],
    }


def agent_privileges(argv: Sequence[str], capability: str | None = None) -> dict[str, Any]:
    """``containers.create`` keywords (the command included) for an agent container running the
    ``python3`` command ``argv`` as uid 65534 with ``capability`` alone, or none."""
    if capability is None:
        return {"command": list(argv), "user": AGENT_USER, "cap_drop": ["ALL"], "security_opt": [NO_NEW_PRIVILEGES]}
    if argv[0] != "python3" or capability not in _CAPABLE_PYTHON:
        raise UsageError(f"an agent with {capability} runs python3 with one of {sorted(_CAPABLE_PYTHON)}")
    command = [_CAPABLE_PYTHON[capability], *argv[1:]]
    return {"command": command, "user": AGENT_USER, "cap_drop": ["ALL"], "cap_add": [capability]}


def _capability(name: str) -> str:
    cap = name.strip().upper().removeprefix("CAP_")
    if not cap.replace("_", "").isalnum():
        raise UsageError(f"capability {name!r}: expected a name like NET_RAW or CAP_SYS_PTRACE")
    return cap
