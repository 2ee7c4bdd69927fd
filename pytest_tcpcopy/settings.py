"""Every pytest-tcpcopy setting, declared once, parsed with errors that name where a value came from.

Each field of ``Settings`` carries its declaration (``SettingSpec``, in the field's metadata): its
help, its kind (a value, a flag, a repeatable list), its parser, whether a test's marker may set
it. The plugin makes ``--tcpcopy-NAME`` and the ini key ``tcpcopy_NAME`` of every declared setting
from it, the CLI commands take their shared options from it (``add_argument``), and the tests
iterate over ``SETTINGS``. Values come from markers, the command line, ini files and defaults (in
that order of precedence); nothing here imports pytest, so the same parsing serves the Python API.

To add a setting: add a field with ``setting(default, help, parser, ...)`` below; the option, the
ini key, the marker key and the help follow. Its parser takes the raw value (text from the
command line or ini file, any object from a marker) and raises ValueError saying what it expected.
"""

from __future__ import annotations

import argparse
import enum
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .backends import BACKENDS
from .errors import UsageError
from .replay.contract import argument_type, parse_port, parse_positive_int, parse_seconds, parse_speed


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


def _paths(value: Any) -> tuple[Path, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return tuple(Path(item) for item in items if str(item).strip())


def _command(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return tuple(shlex.split(str(value)))


def _sample(value: Any) -> float:
    text = str(value).strip().rstrip("%")
    try:
        pct = float(text)
    except ValueError:
        pct = 0.0
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
            ports.extend(parse_port(p) for p in val.split(","))
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


ITEM_KINDS = ("exchange", "endpoint")  # what a capture's test items stand for


def _items(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ITEM_KINDS:
        raise ValueError(f"expected one of {', '.join(ITEM_KINDS)}")
    return text


def _endpoint(value: Any) -> str | None:
    if value in (None, ""):
        return None
    from .endpoint import Endpoint

    return str(Endpoint.parse(str(value)))


def _optional_str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _reports(value: Any) -> tuple[Path, ...]:
    """Report paths: each .html or .json, none twice."""
    paths = _paths(value)
    for path in paths:
        if path.suffix.lower() not in (".html", ".htm", ".json"):
            suffix = path.suffix or "no suffix"
            raise ValueError(f"report path {str(path)!r}: give a .html or .json file name, not {suffix!r}")
    seen = set()
    for path in paths:
        key = Path(path).resolve()
        if key in seen:
            raise ValueError(f"report path {str(path)!r} given twice")
        seen.add(key)
    return paths


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return tuple(line.strip() for line in str(value).splitlines() if line.strip())


class Kind(enum.Enum):
    """How a setting is given on the command line (its ini twin follows: a list is one per line)."""

    VALUE = "value"  # --tcpcopy-x VALUE
    FLAG = "flag"  # --tcpcopy-x (true when given)
    LIST = "list"  # --tcpcopy-x VALUE, repeatable


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """The declaration of one setting (see the module's docstring)."""

    name: str
    help: str
    parse: Callable[[Any], Any]
    kind: Kind = Kind.VALUE
    metavar: str = "VALUE"
    per_test: bool = True  # a tcpcopy(...) marker may set it (else it applies to the whole run)

    @property
    def option(self) -> str:
        return "--tcpcopy-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "tcpcopy_" + self.name


def setting(default: Any, help: str, parse: Callable[[Any], Any], *, kind: Kind = Kind.VALUE, metavar: str = "VALUE",
            per_test: bool = True) -> Any:  # fmt: skip
    """A ``Settings`` field declared with everything the plugin, the CLI and the tests need."""
    spec = {"help": help, "parse": parse, "kind": kind, "metavar": metavar, "per_test": per_test}
    return field(default=default, metadata={"setting": spec})


@dataclass(frozen=True, slots=True)
class Settings:
    pcap: tuple[Path, ...] = setting(
        (), "capture file(s) of production traffic to replay (pcap/pcapng, optionally gzipped)", _paths,
        kind=Kind.LIST, metavar="FILE")  # fmt: skip
    image: str | None = setting(None, "Docker image of the system under test (docker backend)", _optional_str,
                                metavar="REF")  # fmt: skip
    command: tuple[str, ...] = setting((), "command that starts the system under test (netns backend, as root)",
                                       _command, metavar="CMD")  # fmt: skip
    port: int | None = setting(None, "TCP port the system under test listens on", parse_port, metavar="N")
    baseline: Baseline = setting(
        Baseline("capture"), "what responses are compared with: capture, none, image:REF, command:CMD, dir:PATH",
        _baseline, metavar="B")  # fmt: skip
    update_baseline: bool = setting(False, "write the recorded baseline (dir:PATH) from this run", _bool,
                                    kind=Kind.FLAG)  # fmt: skip
    speed: float | None = setting(None, "replay pace: max (default) or a factor of the capture's own timing",
                                  parse_speed, metavar="X|max")  # fmt: skip
    sample: float = setting(100.0, "percentage of captured sessions to replay, chosen by a stable hash", _sample,
                            metavar="PCT")  # fmt: skip
    filter: SessionFilter = setting(SessionFilter(), "which exchanges: port=N[,N] method=GET[,POST] path=REGEX",
                                    _filter, metavar="F")  # fmt: skip
    report: tuple[Path, ...] = setting((), "write a report: an .html or .json path", _reports, kind=Kind.LIST,
                                       metavar="PATH", per_test=False)  # fmt: skip
    keep: bool = setting(False, "keep containers/namespaces after the run, for debugging", _bool, kind=Kind.FLAG)
    backend: str = setting("docker", "where the SUT runs: docker (default) or netns", _backend,
                           metavar="docker|netns")  # fmt: skip
    amplify: int = setting(1, "replay every session N times concurrently", parse_positive_int, metavar="N")
    ready_timeout: float = setting(30.0, "seconds the SUT may take to accept connections (default 30)", parse_seconds,
                                   metavar="SECONDS")  # fmt: skip
    http_path: str | None = setting(None, "HTTP path that must answer below 400 before the SUT counts as ready",
                                    _optional_str, metavar="PATH")  # fmt: skip
    ignore: tuple[str, ...] = setting((), "diff paths to ignore, one per line, e.g. body.timestamp", _strings,
                                      kind=Kind.LIST, metavar="PATH")  # fmt: skip
    noise: bool = setting(False, "run a second baseline instance; its differences from the first are noise", _bool,
                          kind=Kind.FLAG)  # fmt: skip
    live: str | None = setting(
        None, "capture live traffic on this interface for --tcpcopy-duration and replay it (root)", _optional_str,
        metavar="IFACE", per_test=False)  # fmt: skip
    mirror_listen: str | None = setting(
        None, "receive traffic from `pytest-tcpcopy mirror` agents on ADDR:PORT and replay it", _endpoint,
        metavar="ADDR:PORT", per_test=False)  # fmt: skip
    duration: float = setting(10.0, "seconds of live or mirrored traffic to take (default 10)", parse_seconds,
                              metavar="SECONDS", per_test=False)  # fmt: skip
    max_sessions: int | None = setting(
        None, "bound on concurrently replayed sessions (default: the capture's peak of concurrent sessions x "
        "amplify, at least 32)", parse_positive_int, metavar="N")  # fmt: skip
    response_timeout: float = setting(
        5.0, "seconds an awaited response may make no progress before it is cut: the exchange is not comparable, "
        "'SUT too slow' (default 5)", parse_seconds, metavar="SECONDS")  # fmt: skip
    items: str = setting("exchange", "test items per capture: one per exchange (default) or one per endpoint "
                         "template (large captures)", _items, metavar="exchange|endpoint")  # fmt: skip
    full_output: bool = setting(False, "show every failing exchange's full diff (default: the first few per "
                                "finding, the others refer to their finding; -v does the same)", _bool,
                                kind=Kind.FLAG)  # fmt: skip

    def with_overrides(self, overrides: Mapping[str, Any], source: str, *, per_test: bool = False) -> Settings:
        """A copy with raw values applied (strings parsed, other values validated), as from
        ``source``; with ``per_test`` (a marker), only settings a test may set."""
        changes = {}
        for name, value in overrides.items():
            spec = SPECS.get(name)
            if spec is None:
                raise UsageError(f"{source}: unknown setting {name!r}; known: {', '.join(sorted(SPECS))}")
            if per_test and not spec.per_test:
                raise UsageError(f"{source}: {name} applies to the whole run, not to one test; "
                                 f"set it with {spec.option} or {spec.ini}")  # fmt: skip
            changes[name] = parse(name, value, source)
        return replace(self, **changes)

    @property
    def configured(self) -> bool:
        """True when there is a SUT to replay into (an image or a command, and its port)."""
        return (self.image is not None or bool(self.command)) and self.port is not None

    @property
    def live_sources(self) -> tuple[str, ...]:
        """The live traffic sources configured, by name: ``live:IFACE``, ``mirror:ADDR:PORT``."""
        live = (f"live:{self.live}",) if self.live else ()
        return live + ((f"mirror:{self.mirror_listen}",) if self.mirror_listen else ())

    def describe(self) -> str:
        """One line for pytest's report header."""
        sut = self.image if self.backend == "docker" else " ".join(self.command)
        captures = ", ".join([p.name for p in self.pcap] + list(self.live_sources)) or "none"
        speed = "max" if self.speed is None else f"x{self.speed:g}"
        parts = [f"captures: {captures}", f"backend: {self.backend}", f"sut: {sut or 'none'}:{self.port or '?'}",
                 f"baseline: {self.baseline}", f"speed: {speed}"]  # fmt: skip
        if self.sample < 100:
            parts.append(f"sample: {self.sample:g}%")
        if self.amplify > 1:
            parts.append(f"amplify: x{self.amplify}")
        if str(self.filter) != "all":
            parts.append(f"filter: {self.filter}")
        if self.max_sessions is not None:
            parts.append(f"max sessions: {self.max_sessions}")
        if self.items != "exchange":
            parts.append(f"items: per {self.items}")
        return "tcpcopy: " + ", ".join(parts)


SETTINGS: tuple[SettingSpec, ...] = tuple(SettingSpec(f.name, **f.metadata["setting"]) for f in fields(Settings))
SPECS: dict[str, SettingSpec] = {spec.name: spec for spec in SETTINGS}


def parse(name: str, value: Any, source: str) -> Any:
    """Parse one raw value of setting ``name``; a bad value raises UsageError naming ``source``."""
    try:
        return SPECS[name].parse(value)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{source}: bad value {value!r} for {name}: {exc}") from None


def add_argument(parser: argparse.ArgumentParser, name: str, flag: str | None = None, **overrides: Any) -> None:
    """Add setting ``name`` to a CLI command's ``parser`` as ``flag`` (default ``--NAME``), with its
    declared help, metavar and parser; ``overrides`` go to ``add_argument`` (``required``, ``default``)."""
    spec = SPECS[name]
    flag = flag or "--" + name.replace("_", "-")
    if spec.kind is Kind.FLAG:
        parser.add_argument(flag, dest=name, action="store_true", help=spec.help, **overrides)
        return
    options: dict[str, Any] = {"dest": name, "type": argument_type(spec.parse), "metavar": spec.metavar,
                               "help": spec.help}  # fmt: skip
    if spec.kind is Kind.LIST:
        options.update(action="append", default=[])
    parser.add_argument(flag, **{**options, **overrides})
