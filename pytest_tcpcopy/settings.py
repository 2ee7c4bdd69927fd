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


def _ignore_paths(value: Any) -> tuple[str, ...]:
    """Ignore paths as given (dotted, or deepdiff's ``root['body']['x']``), each one readable."""
    from .compare.config import parse_path

    paths = _strings(value)
    for path in paths:
        try:
            parse_path(path)
        except UsageError as exc:
            raise ValueError(str(exc).removeprefix("DiffConfig: ")) from None
    return paths


def _regexes(value: Any) -> tuple[str, ...]:
    patterns = _strings(value)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"regex {pattern!r}: {exc}") from None
    return patterns


def _tolerance(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not 0 <= number < float("inf"):
        raise ValueError("expected a number >= 0 (an absolute difference)")
    return number


def _redactions(value: Any) -> tuple[str, ...]:
    """Secret names (matched in key names) and ``re:PATTERN`` regexes."""
    items = _strings(value)
    for item in items:
        if item.startswith("re:"):
            _regexes(item[3:])
        elif not re.sub(r"[\s_.\-]+", "", item):
            raise ValueError(f"{item!r}: expected a secret NAME or re:PATTERN")
    return items


def _build_args(value: Any) -> tuple[str, ...]:
    items = _strings(value)
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{item!r}: expected KEY=VALUE")
    return items


def _capabilities(value: Any) -> tuple[str, ...]:
    items = tuple(item.strip().upper().removeprefix("CAP_") for item in _strings(value))
    for item in items:
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", item):
            raise ValueError(f"{item!r}: expected a capability name like NET_RAW or CAP_SYS_PTRACE")
    return items


def _reproducers(value: Any) -> Path | None:
    """The reproducers' folder, or None (``off``)."""
    if value in (None, "", "off"):
        return None
    return Path(str(value))


def _recording(value: Any) -> Path | None:
    if value in (None, ""):
        return None
    from .live.capture_file import capture_file_kind

    try:
        capture_file_kind(str(value))
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    return Path(value)


class Sanity(enum.Enum):
    """What a run whose sanity checks found a problem does (see ``pytest_tcpcopy.sanity``)."""

    FAIL = "fail"  # the problems are shown, and the run fails
    WARN = "warn"  # the problems are shown
    OFF = "off"  # not checked


def _sanity(value: Any) -> Sanity:
    if isinstance(value, Sanity):
        return value
    try:
        return Sanity(str(value).strip().lower())
    except ValueError:
        raise ValueError("expected fail, warn or off") from None


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
    reproducers: Path | None = setting(
        Path(".tcpcopy/reproducers"), "write a reproducer of each finding's first example into DIR (emptied by "
        "each run that writes there; default .tcpcopy/reproducers; off: none)", _reproducers, metavar="DIR|off",
        per_test=False)  # fmt: skip
    keep: bool = setting(False, "keep containers/namespaces after the run, for debugging", _bool, kind=Kind.FLAG)
    backend: str = setting("docker", "where the SUT runs: docker (default) or netns", _backend,
                           metavar="docker|netns")  # fmt: skip
    amplify: int = setting(1, "replay every session N times concurrently", parse_positive_int, metavar="N")
    ready_timeout: float = setting(30.0, "seconds the SUT may take to accept connections (default 30)", parse_seconds,
                                   metavar="SECONDS")  # fmt: skip
    http_path: str | None = setting(None, "HTTP path that must answer below 400 before the SUT counts as ready",
                                    _optional_str, metavar="PATH")  # fmt: skip
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
    # -- what is compared, and what is secret
    ignore: tuple[str, ...] = setting(
        (), "a place not to compare, dotted as failures show it: body.timestamp, headers.x-request-id, "
        "body.items[*].id (deepdiff's root['body']['timestamp'] is read too)", _ignore_paths, kind=Kind.LIST,
        metavar="PATH")  # fmt: skip
    ignore_value: tuple[str, ...] = setting(
        (), "a changed value is not a difference when both sides match this regex whole", _regexes,
        kind=Kind.LIST, metavar="REGEX")  # fmt: skip
    float_tolerance: float | None = setting(None, "JSON numbers this close (absolute difference) are equal",
                                            _tolerance, metavar="X")  # fmt: skip
    ignore_order: bool = setting(False, "compare JSON arrays as unordered collections", _bool, kind=Kind.FLAG)
    redact: tuple[str, ...] = setting(
        (), "also secret: keys whose name contains NAME, or text matching re:PATTERN (reports, failures, "
        "recorded baselines)", _redactions, kind=Kind.LIST, metavar="NAME|re:PATTERN", per_test=False)  # fmt: skip
    # -- the SUT's images and privileges
    build_arg: tuple[str, ...] = setting((), "a build argument for build:PATH images", _build_args, kind=Kind.LIST,
                                         metavar="KEY=VALUE", per_test=False)  # fmt: skip
    pull: bool = setting(False, "pull SUT images that are not present locally (off: a missing image is an error)",
                         _bool, kind=Kind.FLAG, per_test=False)  # fmt: skip
    sut_cap_add: tuple[str, ...] = setting(
        (), "give the SUT container a capability back (docker; it runs without NET_RAW)", _capabilities,
        kind=Kind.LIST, metavar="CAP")  # fmt: skip
    sut_new_privileges: bool = setting(
        False, "let the SUT container gain privileges through set-uid binaries (off: no-new-privileges)", _bool,
        kind=Kind.FLAG)  # fmt: skip
    # -- recordings and checks of the run
    record_to: Path | None = setting(
        None, "keep the live traffic taken in FILE (.pcap/.pcapng, optionally .gz)", _recording, metavar="FILE",
        per_test=False)  # fmt: skip
    baseline_keep_unused: bool = setting(
        False, "on --tcpcopy-update-baseline, keep recordings of sessions the capture no longer has", _bool,
        kind=Kind.FLAG)  # fmt: skip
    sanity: Sanity = setting(Sanity.FAIL, "when the run looks wrong (the same error everywhere ...): fail, warn or off",
                             _sanity, metavar="fail|warn|off", per_test=False)  # fmt: skip

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

    def anchored(self, base: Path) -> Settings:
        """A copy whose relative paths to project files (captures, a ``dir:`` baseline, ``build:``
        contexts of the SUT and baseline images) start at ``base``; the ini file's values are
        anchored at the rootdir, the command line's stay relative to the working directory."""
        baseline = self.baseline
        if baseline.kind == "dir":
            baseline = Baseline("dir", str(_anchor(baseline.ref, base)))
        elif baseline.kind == "image":
            baseline = Baseline("image", _anchor_build(baseline.ref, base))
        pcap = tuple(_anchor(str(path), base) for path in self.pcap)
        image = None if self.image is None else _anchor_build(self.image, base)
        return replace(self, pcap=pcap, image=image, baseline=baseline)

    def diff_config(self):  # -> compare.DiffConfig (the comparison library is imported on first use)
        """How responses are compared with these settings."""
        from .compare import DiffConfig

        return DiffConfig(ignore_paths=self.ignore, ignore_value_patterns=self.ignore_value,
                          float_tolerance=self.float_tolerance, ignore_order=self.ignore_order,
                          redaction=self.redaction())  # fmt: skip

    def redaction(self):  # -> compare.Redaction
        """What is secret: the default names and patterns, and those of ``redact``."""
        from .compare import Redaction

        patterns = tuple(item[3:] for item in self.redact if item.startswith("re:"))
        names = tuple(item for item in self.redact if not item.startswith("re:"))
        return Redaction().with_names(*names).with_patterns(*patterns)

    @property
    def build_args(self) -> dict[str, str]:
        """``build_arg`` as a mapping (the last value of a key wins)."""
        return dict(item.partition("=")[::2] for item in self.build_arg)

    def missing_sut(self) -> str | None:
        """What to set for a SUT to replay into (None when ``configured``)."""
        missing = [] if self.image or self.command else ["--tcpcopy-image (docker backend) or --tcpcopy-command "
                                                         "(netns backend)"]  # fmt: skip
        missing += [] if self.port is not None else ["--tcpcopy-port"]
        return f"set {', and '.join(missing)}" if missing else None

    @property
    def configured(self) -> bool:
        """True when there is a SUT to replay into (an image or a command, and its port)."""
        return (self.image is not None or bool(self.command)) and self.port is not None

    @property
    def live_sources(self) -> tuple[str, ...]:
        """The live traffic sources configured, by name: ``live:IFACE``, ``mirror:ADDR:PORT``."""
        live = (f"live:{self.live}",) if self.live else ()
        return live + ((f"mirror:{self.mirror_listen}",) if self.mirror_listen else ())

    def recording_for(self, kind: str) -> Path | None:
        """Where ``record_to`` keeps the traffic of a live source of ``kind`` (``live``, ``mirror``):
        the path itself; with both sources configured, ``NAME-KIND`` before the capture suffixes
        (``traffic-live.pcapng.gz``, ``traffic-mirror.pcapng.gz``)."""
        target = self.record_to
        if target is None or len(self.live_sources) < 2:
            return target
        suffixes = "".join(s for s in target.suffixes[-2:] if s.lower() in (".pcap", ".pcapng", ".gz"))
        return target.with_name(target.name.removesuffix(suffixes) + f"-{kind}{suffixes}")

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


def _anchor(path: str, base: Path) -> Path:
    given = Path(path).expanduser()
    return given if given.is_absolute() else base / given


def _anchor_build(ref: str, base: Path) -> str:
    """A ``build:PATH[:TARGET]`` reference with a relative PATH made absolute; other references as they are."""
    if not ref.startswith("build:"):
        return ref
    path, sep, target = ref.removeprefix("build:").partition(":")
    return f"build:{_anchor(path, base)}{sep}{target}" if path else ref


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
        options.update(action="append", default=[], type=argument_type(_one(spec.parse)))
    parser.add_argument(flag, **{**options, **overrides})


def _one(parse: Callable[[Any], tuple]) -> Callable[[str], Any]:
    """A list setting's parser for one value of a repeatable option."""

    def one(text: str) -> Any:
        (value,) = parse([text]) or (None,)
        if value is None:
            raise ValueError("expected a value")
        return value

    one.__name__ = getattr(parse, "__name__", "value").lstrip("_")
    return one
