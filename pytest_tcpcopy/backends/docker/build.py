"""Images built for the user from a Dockerfile: ``build:PATH[:TARGET]`` as an SUT or baseline image.

``BuildSpec.parse`` reads the reference; ``build_image`` builds it with the Docker SDK, or finds
it built already. The image's tag carries a digest of everything the build reads that can
change: the context's files (as ``.dockerignore`` selects them: names, modes and bytes), the
Dockerfile, the target stage, the build arguments, and the id of every local image the
Dockerfile's FROM lines name. An unchanged build is therefore never built again, in this
session or a later one, and a changed one always is. Built images carry ``pytest-tcpcopy=1``
and the build's key (the context, Dockerfile, target and arguments, without the contents), so
cleaning up finds them: a new build of a key removes the images earlier contents of it made.

A build that fails raises SutError with the build log's tail; a daemon that cannot build at all,
EnvironmentProblem; a context that is not there, UsageError.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ...errors import EnvironmentProblem, SutError, UsageError
from .images import IMAGE_LABEL, image_exists

BUILD_REPOSITORY = "pytest-tcpcopy-build"
KEY_LABEL = f"{IMAGE_LABEL}.build-key"
CONTEXT_LABEL = f"{IMAGE_LABEL}.build-context"
LOG_TAIL = 3000  # characters of the build log an error carries

Log = Callable[[str], None]


def _stderr_log(line: str) -> None:
    print(f"pytest-tcpcopy: {line}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """One image build: a context folder, its Dockerfile (a path inside or outside the context),
    an optional target stage and build arguments."""

    context: Path
    dockerfile: Path
    target: str | None = None
    buildargs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, ref: str, buildargs: Mapping[str, str] | None = None, *, base: Path | None = None) -> BuildSpec:
        """``[build:]PATH[:TARGET]``: PATH a context folder (its ``Dockerfile`` is used) or a
        Dockerfile (its folder is the context), relative to ``base`` (default: the working
        directory); TARGET a stage of a multi-stage Dockerfile. A PATH with a colon in it cannot
        be written this way."""
        text = ref.removeprefix("build:")
        path_text, _, target = text.partition(":")
        if not path_text:
            raise UsageError(f"{ref!r}: expected build:PATH[:TARGET], PATH a folder with a Dockerfile or a Dockerfile")
        if target and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", target):
            raise UsageError(f"{ref!r}: {target!r} is not a build stage name")
        path = Path(path_text).expanduser()
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        path = path.resolve()
        if path.is_dir():
            context, dockerfile = path, path / "Dockerfile"
        elif path.is_file():
            context, dockerfile = path.parent, path
        else:
            raise UsageError(f"{ref!r}: {path} is neither a build context folder nor a Dockerfile")
        if not dockerfile.is_file():
            raise UsageError(
                f"{ref!r}: {context} has no Dockerfile; name the Dockerfile itself: build:{dockerfile.parent}/NAME"
            )
        args = tuple(sorted((str(k), str(v)) for k, v in (buildargs or {}).items()))
        return cls(context, dockerfile, target or None, args)

    def __str__(self) -> str:
        where = str(self.context) if self.dockerfile == self.context / "Dockerfile" else str(self.dockerfile)
        return where + (f" (target {self.target})" if self.target else "")

    def key(self) -> str:
        """What this build is, without what its files hold: its images share this label."""
        text = "\0".join([str(self.context), str(self.dockerfile), self.target or "", *map("=".join, self.buildargs)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def repository(self) -> str:
        name = re.sub(r"[^a-z0-9]+", "-", self.context.name.lower()).strip("-") or "context"
        if self.target:
            name += "-" + re.sub(r"[^a-z0-9]+", "-", self.target.lower()).strip("-")
        return f"{BUILD_REPOSITORY}/{name}"


def context_files(spec: BuildSpec) -> list[str]:
    """The context's files and folders the build sends, as ``.dockerignore`` selects them
    (relative paths, sorted)."""
    from docker.utils.build import exclude_paths

    ignore = spec.context / ".dockerignore"
    patterns = []
    if ignore.is_file():
        patterns = [
            line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")
        ]
    dockerfile = os.path.relpath(spec.dockerfile, spec.context)
    return sorted(exclude_paths(str(spec.context), patterns, dockerfile=dockerfile))


def build_digest(client, spec: BuildSpec) -> str:
    """A digest of everything the build reads that can change (see the module's doc)."""
    digest = hashlib.sha256()
    for part in (spec.key(), spec.dockerfile.read_bytes()):
        digest.update(part if isinstance(part, bytes) else part.encode())
    for name in context_files(spec):
        path = spec.context / name
        info = path.lstat()
        digest.update(
            b"\0" + name.encode() + b"\0" + oct(stat.S_IMODE(info.st_mode) | stat.S_IFMT(info.st_mode)).encode()
        )
        if stat.S_ISLNK(info.st_mode):
            digest.update(os.readlink(path).encode())
        elif stat.S_ISREG(info.st_mode):
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    for image in base_images(spec):
        digest.update(b"\0FROM " + image.encode() + b"=" + _local_image_id(client, image).encode())
    return digest.hexdigest()


def base_images(spec: BuildSpec) -> list[str]:
    """The images the Dockerfile's FROM lines name, build arguments and ARG defaults applied
    (stages of the same file left out)."""
    values: dict[str, str] = {}
    given = dict(spec.buildargs)
    stages: set[str] = set()
    images = []
    for line in _instructions(spec.dockerfile.read_text(errors="replace")):
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and not images:  # ARGs before the first FROM parameterise FROM lines
            name, _, default = rest.strip().partition("=")
            values[name] = given.get(name, default.strip().strip('"'))
        elif word == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            if not parts:
                continue
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), given.get(m.group(1), "")), parts[0])
            if len(parts) >= 3 and parts[1].upper() == "AS":
                stages.add(parts[2].lower())
            if image and image.lower() not in stages and image != "scratch":
                images.append(image)
    return images


def _instructions(text: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    out, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        out.append((current + line).strip())
        current = ""
    if current:
        out.append(current.strip())
    return out


def _local_image_id(client, name: str) -> str:
    import docker.errors

    try:
        return client.images.get(name).id
    except docker.errors.ImageNotFound:
        return "not present locally"
    except docker.errors.APIError as exc:
        raise EnvironmentProblem(f"cannot look up the image {name}: {exc.explanation or exc}") from None


def build_image(client, spec: BuildSpec, *, tag: str | None = None, log: Log = _stderr_log) -> str:
    """The image ``spec`` builds, built now unless an image of the same digest exists; returns
    its tag (``pytest-tcpcopy-build/NAME:DIGEST``). ``tag``, when given, is also put on it (a
    stable name to refer to it by)."""
    import docker.errors

    digest = build_digest(client, spec)
    image_tag = f"{spec.repository()}:{digest[:12]}"
    if image_exists(client, image_tag):
        log(f"image for {spec} is up to date: {image_tag}")
    else:
        log(f"building {spec} as {image_tag}")
        labels = {IMAGE_LABEL: "1", KEY_LABEL: spec.key(), CONTEXT_LABEL: str(spec)}
        try:
            client.images.build(
                path=str(spec.context),
                dockerfile=str(spec.dockerfile),
                target=spec.target,
                buildargs=dict(spec.buildargs),
                tag=image_tag,
                labels=labels,
                rm=True,
                forcerm=True,
                pull=False,
            )
        except docker.errors.BuildError as exc:
            raise SutError(f"building the image {spec} failed: {exc.msg}", logs=_log_tail(exc.build_log)) from None
        except docker.errors.APIError as exc:
            raise EnvironmentProblem(f"the Docker daemon cannot build {spec}: {exc.explanation or exc}") from None
        log(f"built {image_tag}")
    if tag is not None:
        client.images.get(image_tag).tag(tag)
    _remove_older(client, spec, image_tag)
    return image_tag


def _log_tail(build_log) -> str:
    text = "".join(
        str(chunk.get("stream") or chunk.get("error") or "") for chunk in build_log if isinstance(chunk, dict)
    )
    return text[-LOG_TAIL:].strip()


def _remove_older(client, spec: BuildSpec, current: str) -> None:
    """Untag the images earlier contents of the same build made: Docker removes each once it has
    no tag left and no container uses it."""
    import docker.errors

    for image in client.images.list(filters={"label": f"{KEY_LABEL}={spec.key()}"}):
        for old in image.tags:
            if old.startswith(BUILD_REPOSITORY + "/") and old != current:
                try:
                    client.images.remove(old)
                except docker.errors.APIError:
                    pass  # a container uses it: the next build tries again
