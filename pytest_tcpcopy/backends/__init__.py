"""Where SUTs run: ``docker`` (containers on an internal network) and ``netns`` (local commands in
fresh network namespaces, as root). Both have the shape of ``base.Backend``; ``open_backend``
makes one by name, importing its dependencies (the Docker SDK) only then."""

from __future__ import annotations

from collections.abc import Callable

from .base import Backend, SutReplay, SutSpec

BACKENDS = ("docker", "netns")


def open_backend(name: str, *, keep: bool = False, log: Callable[[str], None] | None = None) -> Backend:
    """A backend of kind ``name``, not yet entered (use it as ``with open_backend(...) as run:``).
    ``keep`` leaves a docker run's containers up, ``log`` gets its progress lines."""
    if name == "netns":
        from .netns import NetnsBackend

        return NetnsBackend()
    if name == "docker":
        from .docker import DockerBackend

        return DockerBackend(keep=keep, **({"log": log} if log is not None else {}))
    raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "SutReplay", "SutSpec", "open_backend"]
