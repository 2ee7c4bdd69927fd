"""The contract between the host (plugin, runner, backends) and the agents it starts.

Everything that crosses a process boundary is declared here, once, in both directions:

- **the copier's command line** (``pytest-tcpcopy replay``): ``CopierSettings`` holds what the host
  chooses per replay (speed, amplify, bounds, which sessions ...), ``CopierCommand`` adds where the
  traffic comes from and goes to. Each maps to argv (``to_argv``) and back (``add_arguments`` +
  ``from_namespace``), so the host and the copier cannot disagree on a flag;
- **the intercept's command line** (``intercept_argv``) and its ``ready`` line (``event_of``);
- **the progress line** the copier writes to stderr (``Progress``);
- **the result stream** the copier writes to stdout with ``--json-lines``: one line per session
  copy, written as the copy ends (``{"event": "session", ...}``, a ``SessionResult.to_json()``
  document; in the order they end), then one totals line (``{"event": "totals", "totals":
  {...}, "notes": [...], "stopped": ...}``). ``ResultDecoder`` decodes it line by line into
  typed ``SessionResult``s as they come, then the ``ReplayResult``; JSON never travels further
  up than this module.

It imports no part of the copier engine, so the host can import it cheaply.
"""

from __future__ import annotations

import argparse
import enum
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..channel.protocol import DEFAULT_PORT
from ..endpoint import Endpoint
from ..errors import EnvironmentProblem, UsageError
from .results import ReplayResult, SessionCounts, SessionResult

# -- values: one parser per kind, raising ValueError with what was expected -----------------------


def parse_speed(value: Any) -> float | None:
    """``max`` (None: as fast as the SUT takes it) or a positive factor (1 = the capture's own pace)."""
    if value is None or str(value).strip().lower() == "max":
        return None
    try:
        speed = float(value)
    except (TypeError, ValueError):
        speed = 0.0
    if not speed > 0:
        raise ValueError("expected 'max' or a positive factor (1 = the capture's own pace)")
    return speed


def format_speed(speed: float | None) -> str:
    return "max" if speed is None else repr(speed)


def parse_positive_int(value: Any) -> int:
    if isinstance(value, bool) or not str(value).strip().isdigit() or int(value) < 1:
        raise ValueError("expected a positive integer")
    return int(value)


def parse_seconds(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if not number > 0:
        raise ValueError("expected a positive number of seconds")
    return number


def parse_port(value: Any) -> int:
    if isinstance(value, bool) or not str(value).strip().isdigit() or not 0 < int(value) < 65536:
        raise ValueError("expected a TCP port, 1..65535")
    return int(value)


def parse_session_list(value: Any) -> frozenset[int]:
    """``0,4,10-20`` -> {0, 4, 10, ..., 20}."""
    out: set[int] = set()
    for part in filter(None, str(value).split(",")):
        first, sep, last = part.partition("-")
        if not first.isdigit() or (sep and not last.isdigit()):
            raise ValueError("expected session indexes like 0,4,10-20")
        out.update(range(int(first), int(last if sep else first) + 1))
    return frozenset(out)


def format_session_list(indexes: Iterable[int]) -> str:
    """The inverse of ``parse_session_list``: sorted indexes with runs folded."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def parse_endpoint(value: Any) -> Endpoint:
    return Endpoint.parse(str(value))


def argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` as an argparse ``type``: its ValueError becomes argparse's usage message."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc}, got {text!r}") from None

    convert.__name__ = parse.__name__.removeprefix("parse_")
    return convert


# -- the copier's command line -----------------------------------------------------------------


def _flag(flag: str, help: str, default: Any, *, parse: Callable[[str], Any] | None = None,
          format: Callable[[Any], str] = str, metavar: str | None = None, repeat: bool = False) -> Any:  # fmt: skip
    """A ``CopierSettings`` field: its flag, help, how it parses from and formats to argv.
    Without ``parse`` it is a switch (``--pipeline``); with ``repeat`` the flag may be given once
    per value (a tuple)."""
    meta = {"flag": flag, "help": help, "parse": parse, "format": format, "metavar": metavar, "repeat": repeat}
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class CopierSettings:
    """How the copier replays: what the host chooses per replay, apart from where the traffic
    comes from and goes to. To add a copier option, add a field here: the copier's parser, the
    host's argv and the round-trip test follow."""

    speed: float | None = _flag(
        "--speed", "pace: 1 = the capture's timing, 2 = twice as fast, max = as fast as the SUT takes it (default)",
        None, parse=parse_speed, format=format_speed, metavar="X|max")  # fmt: skip
    amplify: int = _flag("--amplify", "replay every session N times concurrently, each copy on its own connection",
                         1, parse=parse_positive_int, metavar="N")  # fmt: skip
    max_sessions: int = _flag("--max-sessions", "bound on concurrently active sessions (default 10000)",
                              10_000, parse=parse_positive_int, metavar="N")  # fmt: skip
    pipeline: bool = _flag("--pipeline", "send requests without waiting for the previous response (tcpcopy -W)",
                           False)  # fmt: skip
    capture_responses: bool = _flag("--capture-responses", "collect the SUT's response bytes, not only their lengths",
                                    False)  # fmt: skip
    max_duration: float = _flag("--max-duration", "stop the replay after this long whatever remains (default 3600)",
                                3600.0, parse=parse_seconds, metavar="SECONDS")  # fmt: skip
    response_timeout: float = _flag(
        "--response-timeout", "cut a response that makes no progress for this long: the session ends as a "
        "timeout, 'SUT too slow' (default 5)", 5.0, parse=parse_seconds, metavar="SECONDS")  # fmt: skip
    sessions: frozenset[int] | None = _flag(
        "--sessions", "replay only these captured sessions (indexes as `inspect` shows them): 0,4,10-20",
        None, parse=parse_session_list, format=format_session_list, metavar="LIST")  # fmt: skip
    server_ports: tuple[int, ...] = _flag(
        "--port", "the capture's server port(s) (default: from each connection's SYN)",
        (), parse=parse_port, metavar="N", repeat=True)  # fmt: skip

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *, ports_flag: str = "--port") -> None:
        """Add every setting to ``parser``; ``ports_flag`` renames ``--port`` where a command's
        ``--port`` means the SUT's port (``netns-run``, ``docker-run``: ``--capture-port``)."""
        for f in fields(cls):
            meta = f.metadata
            flag = ports_flag if f.name == "server_ports" else meta["flag"]
            if meta["parse"] is None:
                parser.add_argument(flag, dest=f.name, action="store_true", help=meta["help"])
            elif meta["repeat"]:
                parser.add_argument(flag, dest=f.name, type=argument_type(meta["parse"]), action="append", default=[],
                                    metavar=meta["metavar"], help=meta["help"] + " (repeatable)")  # fmt: skip
            else:
                parser.add_argument(flag, dest=f.name, type=argument_type(meta["parse"]), default=f.default,
                                    metavar=meta["metavar"], help=meta["help"])  # fmt: skip

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> CopierSettings:
        values = {f.name: getattr(args, f.name) for f in fields(cls)}
        values["server_ports"] = tuple(values["server_ports"])
        return cls(**values)

    def to_argv(self) -> list[str]:
        """The copier options for these settings (defaults left out)."""
        argv: list[str] = []
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if value == f.default:
                continue
            if meta["parse"] is None:
                argv.append(meta["flag"])
            elif meta["repeat"]:
                for item in value:
                    argv += [meta["flag"], meta["format"](item)]
            else:
                argv += [meta["flag"], meta["format"](value)]
        return argv


class Output(enum.Enum):
    """What the copier prints on stdout at the end."""

    TEXT = "text"  # a short summary for people
    JSON = "json"  # one ``ReplayResult.to_json()`` document
    JSON_LINES = "json-lines"  # the result stream: a line per session, then the totals line


@dataclass(frozen=True, slots=True)
class CopierCommand:
    """One whole copier command line: the traffic source (exactly one of ``capture``, ``live``,
    ``mirror_listen``, ``stdin_stream``), the target and its intercepts, the settings, and what
    it reports (stdout ``output``, stderr progress lines)."""

    target: str
    intercepts: tuple[str, ...]
    settings: CopierSettings = CopierSettings()
    capture: str | None = None
    live: str | None = None  # an interface to capture on
    mirror_listen: str | None = None  # ADDR:PORT where mirror agents connect
    stdin_stream: bool = False  # a classic pcap stream on stdin
    duration: float | None = None  # seconds of live traffic
    output: Output = Output.JSON_LINES
    progress: bool = False

    def to_argv(self) -> list[str]:
        """The argv after ``pytest-tcpcopy replay``."""
        argv = [] if self.capture is None else [self.capture]
        if self.live is not None:
            argv += ["--live", self.live]
        if self.mirror_listen is not None:
            argv += ["--mirror-listen", self.mirror_listen]
        if self.stdin_stream:
            argv.append("--stdin-stream")
        if self.duration is not None:
            argv += ["--duration", repr(self.duration)]
        argv += ["--target", self.target]
        for intercept in self.intercepts:
            argv += ["--intercept", intercept]
        argv += self.settings.to_argv()
        if self.output is not Output.TEXT:
            argv.append("--" + self.output.value)
        if self.progress:
            argv.append("--progress")
        return argv

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("capture", metavar="CAPTURE", nargs="?", help="pcap/pcapng file (optionally gzipped)")
        parser.add_argument("--live", metavar="IFACE",
                            help="instead of CAPTURE: capture on this interface (needs --port) and replay as it "
                            "arrives")
        parser.add_argument("--mirror-listen", type=argument_type(parse_endpoint), metavar="ADDR:PORT",
                            help="instead of CAPTURE: receive from `pytest-tcpcopy mirror` agents on ADDR:PORT "
                            "(in this process's network namespace) and replay as it arrives")
        parser.add_argument("--stdin-stream", action="store_true",
                            help="instead of CAPTURE: read a classic pcap stream from stdin and replay it as it "
                            "arrives, until the stream ends (or --duration)")
        parser.add_argument("--duration", type=argument_type(parse_seconds), default=None, metavar="SECONDS",
                            help="how long to take live traffic (default 60)")
        parser.add_argument("--target", type=argument_type(parse_endpoint), required=True, metavar="IP:PORT")
        parser.add_argument("--intercept", action="append", required=True, metavar="ADDR:PORT",
                            help=f"an intercept to use (repeatable; port {DEFAULT_PORT} by default)")
        CopierSettings.add_arguments(parser)
        add_report_arguments(parser)

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> CopierCommand:
        """The command ``args`` (parsed by ``add_arguments``) give; UsageError unless exactly one
        traffic source is given, or for options that do not apply to it."""
        sources = (("CAPTURE", args.capture), ("--live", args.live), ("--mirror-listen", args.mirror_listen),
                   ("--stdin-stream", args.stdin_stream or None))  # fmt: skip
        given = [name for name, value in sources if value is not None]
        if len(given) != 1:
            problem = f"got {' and '.join(given)}" if given else "got none"
            raise UsageError("replay needs exactly one of CAPTURE, --live IFACE, --mirror-listen ADDR:PORT, "
                             f"--stdin-stream ({problem})")  # fmt: skip
        settings = CopierSettings.from_namespace(args)
        if args.capture is not None and args.duration is not None:
            raise UsageError("--duration applies to live traffic; a capture file is replayed whole")
        if args.capture is None and settings.speed is not None:
            raise UsageError("--speed applies to capture files: live traffic is replayed as it arrives (drop --speed)")
        if args.live is not None and not settings.server_ports:
            raise UsageError("--live needs the service's --port N (the capture filter)")
        return cls(
            target=str(args.target),
            intercepts=tuple(args.intercept),
            settings=settings,
            capture=args.capture,
            live=args.live,
            mirror_listen=None if args.mirror_listen is None else str(args.mirror_listen),
            stdin_stream=args.stdin_stream,
            duration=args.duration,
            output=output_of(args),
            progress=args.progress,
        )


def add_report_arguments(parser: argparse.ArgumentParser, *, lines: bool = True) -> None:
    """How a replaying command reports: ``--json`` (and, with ``lines``, ``--json-lines``) on
    stdout, ``--progress`` on stderr."""
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="print per-session results and totals as JSON")
    if lines:
        formats.add_argument("--json-lines", action="store_true",
                             help='print one JSON line per session ({"event": "session", ...}), then the totals '
                             'line ({"event": "totals", ...})')  # fmt: skip
    parser.add_argument("--progress", action="store_true",
                        help='write a JSON progress line ({"event": "progress", ...}) to stderr every second')


def output_of(args: argparse.Namespace) -> Output:
    if getattr(args, "json_lines", False):
        return Output.JSON_LINES
    return Output.JSON if args.json else Output.TEXT


# -- the intercept -------------------------------------------------------------------------------


def intercept_argv(port: int, listen: str, *, capture_responses: bool) -> list[str]:
    """The argv after ``pytest-tcpcopy intercept`` for a SUT listening on ``port``."""
    return ["--port", str(port), "--listen", listen] + (["--capture-responses"] if capture_responses else [])


def event_of(line: str) -> dict | None:
    """The JSON event an agent wrote on ``line`` (``{"event": "ready", ...}``), or None for any other line."""
    line = line.strip()
    if not line.startswith('{"event": '):
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("event"), str) else None


def is_ready_line(line: str) -> bool:
    """True for the intercept's ``ready`` line: its rules are in, copiers may connect."""
    event = event_of(line)
    return event is not None and event["event"] == "ready"


# -- progress ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress report of a running copier: session copies done of the total (None until
    known), active, waiting, requests sent, errors, and copies done per second since the last."""

    sessions_done: int = 0
    sessions_total: int | None = None
    active: int = 0
    waiting: int = 0
    requests: int = 0
    rate: float = 0.0
    errors: int = 0

    def to_line(self) -> str:
        return json.dumps({"event": "progress", **asdict(self)})

    @classmethod
    def from_line(cls, line: str) -> Progress | None:
        """The report on a progress line, or None for any other line."""
        event = event_of(line)
        if event is None or event["event"] != "progress":
            return None
        return cls(**{f.name: event[f.name] for f in fields(cls) if f.name in event})


# -- the result stream -----------------------------------------------------------------------------


def result_lines(result: ReplayResult) -> Iterable[str]:
    """``result`` as the result stream: a line per session copy, then the totals line."""
    for session in sorted(result.sessions, key=lambda s: (s.session, s.copy)):
        yield session_line(session)
    yield totals_line(result)


def session_line(session: SessionResult) -> str:
    return json.dumps({"event": "session", **session.to_json()})


def totals_line(result: ReplayResult) -> str:
    stopped = None if result.stopped is None else {"reason": result.stopped, "failure": result.stopped_by_failure}
    return json.dumps({"event": "totals", "totals": result.totals(), "notes": result.notes, "stopped": stopped})


class ResultDecoder:
    """Decodes the copier's result stream line by line. ``feed`` returns each finished session
    copy as it arrives (and hands it to ``on_session``); ``finish`` returns the whole result, or
    raises EnvironmentProblem when the stream ended before its totals line (the copier died).

    With ``keep_sessions=False`` the sessions are handed on and not kept: the result then holds
    none, and its totals are the copier's (``ReplayResult.reported``), so a stream of any length
    is decoded in constant memory.
    """

    def __init__(self, source: str = "the copier", on_session: Callable[[SessionResult], None] | None = None,
                 *, keep_sessions: bool = True) -> None:  # fmt: skip
        self._source = source
        self._on_session = on_session
        self._keep = keep_sessions
        self._sessions: list[SessionResult] = []
        self._seen = 0
        self._end: dict | None = None
        self._lines = 0

    @property
    def sessions_seen(self) -> int:
        """Session copies decoded so far."""
        return self._seen

    @property
    def ended(self) -> bool:
        """True once the totals line was read."""
        return self._end is not None

    def feed(self, line: str) -> SessionResult | None:
        self._lines += 1
        if not line.strip():
            return None
        event = event_of(line)
        if event is None or self._end is not None:
            raise EnvironmentProblem(f"{self._source}: result line {self._lines} is not a result event: {line[:200]!r}")
        try:
            if event["event"] == "session":
                session = SessionResult.from_json(event)
                self._seen += 1
                if self._keep:
                    self._sessions.append(session)
                if self._on_session is not None:
                    self._on_session(session)
                return session
            if event["event"] == "totals":
                self._end = event
                return None
        except (KeyError, TypeError, ValueError) as exc:
            raise EnvironmentProblem(f"{self._source}: result line {self._lines} does not decode: {exc!r}") from None
        raise EnvironmentProblem(f"{self._source}: result line {self._lines}: unknown event {event['event']!r}")

    def feed_all(self, lines: Iterable[str]) -> ReplayResult:
        for line in lines:
            self.feed(line)
        return self.finish()

    def finish(self) -> ReplayResult:
        if self._end is None:
            raise EnvironmentProblem(f"{self._source} ended its result stream without a totals line "
                                     f"({self._seen} sessions reported)")  # fmt: skip
        doc = {"sessions": [], "totals": self._end["totals"], "notes": self._end["notes"],
               "stopped": self._end.get("stopped")}  # fmt: skip
        if self._keep:
            return ReplayResult.from_json(doc, sessions=self._sessions)
        return ReplayResult.from_json(doc, sessions=[], reported=SessionCounts.from_json(self._end["totals"]))


def decode_result(text: str, source: str = "the copier") -> ReplayResult:
    """A whole result stream (``--json-lines``) at once."""
    return ResultDecoder(source).feed_all(text.splitlines())


__all__ = [
    "CopierCommand",
    "CopierSettings",
    "Output",
    "Progress",
    "ResultDecoder",
    "add_report_arguments",
    "argument_type",
    "decode_result",
    "event_of",
    "format_session_list",
    "format_speed",
    "intercept_argv",
    "is_ready_line",
    "output_of",
    "parse_endpoint",
    "parse_port",
    "parse_positive_int",
    "parse_seconds",
    "parse_session_list",
    "parse_speed",
    "result_lines",
    "session_line",
    "totals_line",
]
