"""Every pytest-tcpcopy setting in one table, parsed with errors that name where a value came from.

The pytest plugin feeds values from markers, the command line, ini files and defaults (in that
order of precedence); nothing here imports pytest, so the same parsing serves the Python API.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import UsageError

BACKENDS = ("docker", "netns")


@dataclass(frozen=True, slots=True)
class Baseline:
    """What the candidate's responses are compared with.

    ``capture``: production's own responses in the capture; ``image:REF``: a baseline image replayed
    side by side (docker backend); ``command:CMD``: a baseline command replayed side by side (netns
    backend); ``dir:PATH``: a recorded baseline; ``none``: no comparison, replay only.
    """

    kind: str
    ref: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.ref}" if self.ref else self.kind


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """Which captured exchanges to replay: capture server ports, HTTP methods, a path regex."""

    ports: tuple[int, ...] = ()
    methods: tuple[str, ...] = ()
    path: re.Pattern | None = None

    def __str__(self) -> str:
        parts = []
        if self.ports:
            parts.append("port=" + ",".join(map(str, self.ports)))
        if self.methods:
            parts.append("method=" + ",".join(self.methods))
        if self.path is not None:
            parts.append(f"path={self.path.pattern}")
        return " ".join(parts) or "all"


@dataclass(frozen=True, slots=True)
class Settings:
    pcap: tuple[Path, ...] = ()
    image: str | None = None
    command: tuple[str, ...] = ()
    port: int | None = None
    baseline: Baseline = Baseline("capture")
    update_baseline: bool = False
    speed: float | None = None
    sample: float = 100.0
    filter: SessionFilter = SessionFilter()
    report: Path | None = None
    keep: bool = False
    backend: str = "docker"
    amplify: int = 1
    ready_timeout: float = 30.0
    http_path: str | None = None
    ignore: tuple[str, ...] = field(default=())
    noise: bool = False  # run a second baseline instance; what differs between the two is noise
    live: str | None = None  # capture live traffic on this interface (AF_PACKET, root)
    mirror_listen: str | None = None  # receive live traffic from mirror agents here (ADDR:PORT)
    duration: float = 10.0  # seconds of live traffic to take

    def with_overrides(self, overrides: Mapping[str, Any], source: str) -> "Settings":
        """A copy with raw values applied (strings parsed, other values validated), as from ``source``."""
        known = {f.name for f in fields(self)}
        changes = {}
        for name, value in overrides.items():
            if name not in known:
                raise UsageError(f"{source}: unknown setting {name!r}; known: {', '.join(sorted(known))}")
            changes[name] = parse(name, value, source)
        return replace(self, **changes)

    @property
    def configured(self) -> bool:
        """True when there is traffic (a capture or a live source) and a SUT to replay it into."""
        traffic = bool(self.pcap) or self.live is not None or self.mirror_listen is not None
        return traffic and (self.image is not None or bool(self.command)) and self.port is not None

    def describe(self) -> str:
        """One line for pytest's report header."""
        sut = self.image if self.backend == "docker" else " ".join(self.command)
        captures = ", ".join([p.name for p in self.pcap] + [f"live:{s}" for s in (self.live, self.mirror_listen) if s])
        captures = captures or "none"
        speed = "max" if self.speed is None else f"x{self.speed:g}"
        parts = [f"captures: {captures}", f"backend: {self.backend}", f"sut: {sut or 'none'}:{self.port or '?'}",
                 f"baseline: {self.baseline}", f"speed: {speed}"]  # fmt: skip
        if self.sample < 100:
            parts.append(f"sample: {self.sample:g}%")
        if self.amplify > 1:
            parts.append(f"amplify: x{self.amplify}")
        if str(self.filter) != "all":
            parts.append(f"filter: {self.filter}")
        return "tcpcopy: " + ", ".join(parts)


def _paths(value: Any) -> tuple[Path, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return tuple(Path(item) for item in items if str(item).strip())


def _command(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return tuple(shlex.split(str(value)))


def _port(value: Any) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise ValueError("expected a TCP port, 1..65535")
    return port


def _speed(value: Any) -> float | None:
    if value is None or str(value).strip().lower() == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        speed = 0.0
    if not speed > 0:
        raise ValueError("expected 'max' or a positive factor (1 = the capture's own pace)")
    return speed


def _sample(value: Any) -> float:
    text = str(value).strip().rstrip("%")
    pct = float(text)
    if not 0 < pct <= 100:
        raise ValueError("expected a percentage in (0, 100]")
    return pct


def _baseline(value: Any) -> Baseline:
    if isinstance(value, Baseline):
        return value
    text = str(value).strip()
    kind, sep, ref = text.partition(":")
    if kind in ("capture", "none") and not sep:
        return Baseline(kind)
    if kind in ("image", "dir", "command") and ref:
        return Baseline(kind, ref)
    raise ValueError("expected capture, none, image:REF, command:CMD or dir:PATH")


def _filter(value: Any) -> SessionFilter:
    if isinstance(value, SessionFilter):
        return value
    ports: list[int] = []
    methods: list[str] = []
    path = None
    for item in shlex.split(str(value)):
        key, sep, val = item.partition("=")
        if not sep or not val:
            raise ValueError(f"{item!r}: expected port=N[,N], method=GET[,POST] or path=REGEX")
        if key == "port":
            ports.extend(_port(p) for p in val.split(","))
        elif key == "method":
            methods.extend(m.upper() for m in val.split(","))
        elif key == "path":
            try:
                path = re.compile(val)
            except re.error as exc:
                raise ValueError(f"path regex {val!r}: {exc}") from None
        else:
            raise ValueError(f"{item!r}: unknown filter {key!r} (port, method, path)")
    return SessionFilter(tuple(ports), tuple(methods), path)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _backend(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in BACKENDS:
        raise ValueError(f"expected one of {', '.join(BACKENDS)}")
    return text


def _positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a positive integer")
    number = int(value)
    if number < 1:
        raise ValueError("expected a positive integer")
    return number


def _positive_float(value: Any) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("expected a positive number of seconds")
    return number


def _endpoint(value: Any) -> str | None:
    if value in (None, ""):
        return None
    from .endpoint import Endpoint

    return str(Endpoint.parse(str(value)))


def _optional_str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _optional_path(value: Any) -> Path | None:
    return None if value in (None, "") else Path(str(value))


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return tuple(line.strip() for line in str(value).splitlines() if line.strip())


PARSERS: dict[str, Callable[[Any], Any]] = {
    "pcap": _paths,
    "image": _optional_str,
    "command": _command,
    "port": _port,
    "baseline": _baseline,
    "update_baseline": _bool,
    "speed": _speed,
    "sample": _sample,
    "filter": _filter,
    "report": _optional_path,
    "keep": _bool,
    "backend": _backend,
    "amplify": _positive_int,
    "ready_timeout": _positive_float,
    "http_path": _optional_str,
    "ignore": _strings,
    "noise": _bool,
    "live": _optional_str,
    "mirror_listen": _endpoint,
    "duration": _positive_float,
}


def parse(name: str, value: Any, source: str) -> Any:
    """Parse one raw value of setting ``name``; a bad value raises UsageError naming ``source``."""
    try:
        return PARSERS[name](value)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{source}: bad value {value!r} for {name}: {exc}") from None
