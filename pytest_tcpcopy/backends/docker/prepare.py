"""The images a run's SUTs need, made ready once before anything starts.

A reference is either an image (``svc:2``) or a build (``build:PATH[:TARGET]``, see ``build``).
``ImagePreparer.resolve`` turns one into a local image tag: a build is built (or found built)
once per preparer; an image is looked up locally (``docker image inspect``). An image that is not
there is an error naming it, unless pulling was allowed: then it is pulled, once. Nothing else in
the package pulls: the Docker backend refuses an image that is not present locally.

Results and failures are memoised per reference, so a run with many replays builds, checks or
fails once, with one message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from ...errors import EnvironmentProblem, TcpcopyError, UsageError

Log = Callable[[str], None]
BUILD_PREFIX = "build:"


def missing_image_message(ref: str) -> str:
    """What to do about an image that is not present locally."""
    return (f"image {ref!r} is not present locally: build or pull it (docker pull {ref}), "
            "or let the run pull it (--tcpcopy-pull; docker-run: --pull)")  # fmt: skip


class ImagePreparer:
    """Makes image references ready; ``client_factory()`` gives a ``docker.DockerClient`` when the
    first reference needs one. ``buildargs`` go to every build; ``base`` is where relative build
    paths start (default: the working directory); ``pull`` allows pulling missing images."""

    def __init__(self, client_factory: Callable[[], object] | None = None, *,
                 buildargs: Mapping[str, str] | None = None, pull: bool = False, base: Path | None = None,
                 log: Log | None = None) -> None:  # fmt: skip
        self._client_factory = client_factory
        self._client = None
        self.buildargs = dict(buildargs or {})
        self.pull = pull
        self.base = base
        self.log = log
        self._done: dict[str, str | TcpcopyError] = {}

    @property
    def client(self):
        if self._client is None:
            if self._client_factory is None:
                from .runs import docker_client

                self._client_factory = docker_client
            self._client = self._client_factory()
        return self._client

    def resolve(self, ref: str) -> str:
        """The local image tag for ``ref``, made ready on first use; raises the same error every
        time when it cannot be."""
        if ref not in self._done:
            try:
                self._done[ref] = self._prepare(ref)
            except TcpcopyError as exc:
                self._done[ref] = exc
        found = self._done[ref]
        if isinstance(found, TcpcopyError):
            raise found
        return found

    def _prepare(self, ref: str) -> str:
        if ref.startswith(BUILD_PREFIX):
            from .build import BuildSpec, build_image

            spec = BuildSpec.parse(ref, self.buildargs, base=self.base)
            options = {} if self.log is None else {"log": self.log}
            return build_image(self.client, spec, **options)
        if not ref.strip():
            raise UsageError("an empty image reference")
        if self._present(ref):
            return ref
        if not self.pull:
            raise UsageError(missing_image_message(ref))
        self._pull(ref)
        return ref

    def _present(self, ref: str) -> bool:
        import docker.errors

        try:
            self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as exc:
            if exc.status_code == 400:  # not a valid reference at all
                raise UsageError(f"image {ref!r} is not a valid image reference: {exc.explanation}") from None
            raise EnvironmentProblem(f"cannot look up the image {ref!r}: {exc.explanation or exc}") from None
        return True

    def _pull(self, ref: str) -> None:
        import docker.errors

        if self.log is not None:
            self.log(f"pulling {ref}")
        try:
            self.client.images.pull(ref)
        except docker.errors.ImageNotFound:
            raise UsageError(f"image {ref!r} is neither present locally nor in its registry") from None
        except docker.errors.APIError as exc:
            raise UsageError(f"image {ref!r} could not be pulled: {exc.explanation or exc}") from None
