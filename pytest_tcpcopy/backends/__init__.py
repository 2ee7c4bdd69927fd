"""Where SUTs run: ``docker`` (containers on an internal network) and ``netns`` (local commands in
fresh network namespaces, as root). Both have the shape of ``base.Backend``; ``open_backend``
makes one by name, importing its dependencies (the Docker SDK) only then.

One folder per backend: ``docker/`` (``backend``; the images, builds, labels, reaper and
privileges it needs) and ``netns/`` (``backend``; the namespace rig, its supervisor and
steering). Shared by both: ``base`` (the protocol and its values), ``readiness`` (waiting until
a SUT answers) and ``signals`` (signals held while objects are made)."""

from __future__ import annotations

from collections.abc import Callable

from .base import Backend, SutReplay, SutSpec

BACKENDS = ("docker", "netns")


def open_backend(name: str, *, keep: bool = False, log: Callable[[str], None] | None = None) -> Backend:
    """A backend of kind ``name``, not yet entered (use it as ``with open_backend(...) as run:``).
    ``keep`` leaves a docker run's containers up, ``log`` gets its progress lines."""
    if name == "netns":
        from .netns.backend import NetnsBackend

        return NetnsBackend()
    if name == "docker":
        from .docker.backend import DockerBackend

        return DockerBackend(keep=keep, **({"log": log} if log is not None else {}))
    raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "SutReplay", "SutSpec", "open_backend"]
