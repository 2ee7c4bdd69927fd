"""The labels every container and network of a run carries, as plain names (no Docker SDK).

``pytest-tcpcopy=1`` marks everything we make (images too); ``pytest-tcpcopy.run`` names the run,
``pytest-tcpcopy.role`` what the object is for (network, sut, intercept, copier, probe, reaper),
and the owner labels say which process on which host made it (``runs.RunLabels``).
"""

from __future__ import annotations

IMAGE_LABEL = "pytest-tcpcopy"
RUN_LABEL = f"{IMAGE_LABEL}.run"
PID_LABEL = f"{IMAGE_LABEL}.owner-pid"
START_LABEL = f"{IMAGE_LABEL}.owner-start"
HOST_LABEL = f"{IMAGE_LABEL}.owner-host"
KEEP_LABEL = f"{IMAGE_LABEL}.keep"
ROLE_LABEL = f"{IMAGE_LABEL}.role"
REAPER_ROLE = "reaper"


def run_filter(run_id: str | None = None) -> str:
    """The label filter of one run's objects (or, without ``run_id``, of every run's)."""
    return RUN_LABEL if run_id is None else f"{RUN_LABEL}={run_id}"
