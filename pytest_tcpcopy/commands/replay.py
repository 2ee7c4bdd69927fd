"""``pytest-tcpcopy replay``: the copier side, replaying a capture (or live traffic, as it arrives)
into a target via raw sockets."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

from ..endpoint import Endpoint
from ..errors import UsageError
from ..live import LiveSource, MirrorSource, PacketSource
from ..live.stream import PcapStreamSource
from ..replay.copier import ReplayOptions, replay_capture, replay_source
from ..replay.engine import ReplayEngine
from ..tcp.config import RESPONSE_TIMEOUT
from ..tcp.translator import TranslatorConfig


def parse_speed(text: str) -> float | None:
    """``max`` (as fast as the SUT takes it) or a positive factor (1 = the capture's own pace)."""
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"speed must be 'max' or a positive number, got {text!r}")
    return value


def parse_endpoint(text: str) -> Endpoint:
    try:
        return Endpoint.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def session_list(text: str) -> frozenset[int]:
    """``0,4,10-20`` -> {0, 4, 10, ..., 20}."""
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        first, sep, last = part.partition("-")
        if not first.isdigit() or (sep and not last.isdigit()):
            raise argparse.ArgumentTypeError(f"expected session indexes like 0,4,10-20, got {text!r}")
        out.update(range(int(first), int(last if sep else first) + 1))
    return frozenset(out)


def format_session_list(indexes) -> str:
    """The inverse of ``session_list``: sorted indexes with runs folded."""
    out, run = [], []
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


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``replay`` and ``netns-run``."""
    parser.add_argument("--speed", type=parse_speed, default=None, metavar="X|max",
                        help="pace: 1 = the capture's timing, 2 = twice as fast, max = as fast as the SUT takes it (default)")
    parser.add_argument("--amplify", type=positive_int, default=1, metavar="N",
                        help="replay every session N times concurrently, each copy on its own connection")
    parser.add_argument("--max-sessions", type=positive_int, default=10_000, metavar="N",
                        help="bound on concurrently active sessions (default 10000)")
    parser.add_argument("--pipeline", action="store_true",
                        help="send requests without waiting for the previous response (tcpcopy -W)")
    parser.add_argument("--capture-responses", action="store_true",
                        help="collect the SUT's response bytes, not only their lengths")
    parser.add_argument("--max-duration", type=float, default=3600.0, metavar="SECONDS",
                        help="stop the replay after this long whatever remains (default 3600)")
    parser.add_argument("--response-timeout", type=positive_float, default=RESPONSE_TIMEOUT, metavar="SECONDS",
                        help="cut a response that makes no progress for this long: the session ends as a timeout, "
                        f"'SUT too slow' (default {RESPONSE_TIMEOUT:g})")
    parser.add_argument("--sessions", type=session_list, default=None, metavar="LIST",
                        help="replay only these captured sessions (indexes as `inspect` shows them): 0,4,10-20")
    parser.add_argument("--json", action="store_true", help="print per-session results and totals as JSON")
    parser.add_argument("--progress", action="store_true",
                        help='write a JSON progress line ({"event": "progress", ...}) to stderr every second')


def copier_arguments(args: argparse.Namespace) -> list[str]:
    """The ``add_replay_arguments`` options of ``args`` as ``replay`` command-line arguments."""
    argv = ["--speed", "max" if args.speed is None else repr(args.speed), "--amplify", str(args.amplify),
            "--max-sessions", str(args.max_sessions), "--max-duration", str(args.max_duration),
            "--response-timeout", repr(args.response_timeout)]  # fmt: skip
    if args.pipeline:
        argv.append("--pipeline")
    if args.capture_responses:
        argv.append("--capture-responses")
    if args.sessions is not None:
        argv += ["--sessions", format_session_list(args.sessions)]
    if args.progress:
        argv.append("--progress")
    return argv


def translator_config(args: argparse.Namespace) -> TranslatorConfig:
    return TranslatorConfig(pipeline=args.pipeline, capture_payload=args.capture_responses,
                            response_timeout=args.response_timeout)


EXIT_INCOMPLETE = 3  # a failure (a lost intercept) stopped the replay; the full result was printed


def exit_status(data: dict) -> int:
    """The exit status for a printed ``ReplayResult.to_json()`` document: EXIT_INCOMPLETE when a
    failure stopped the replay (sessions it never got to are in it as ``not_replayed``), else 0.
    The copier itself (``replay``) exits 0 either way: its caller reads the document."""
    stopped = data.get("stopped")
    return EXIT_INCOMPLETE if stopped and stopped.get("failure") else 0


DEFAULT_LIVE_DURATION = 60.0  # seconds of live traffic --live / --mirror-listen take by default


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def progress_printer(out=None, clock: Callable[[], float] = time.monotonic) -> Callable[[ReplayEngine], None]:
    """A replay progress callback writing one JSON line per call to ``out`` (default stderr):
    session copies done of the total (null until known), active, waiting, requests sent, errors,
    and the rate of copies done per second since the previous line."""
    last = [clock(), 0]

    def report(engine: ReplayEngine) -> None:
        now, done = clock(), engine.sessions_done
        interval = now - last[0]
        rate = (done - last[1]) / interval if interval > 0 else 0.0
        last[:] = [now, done]
        line = {"event": "progress", "sessions_done": done, "sessions_total": engine.sessions_total,
                "active": engine.active, "waiting": engine.waiting, "requests": engine.requests,
                "rate": round(rate, 1), "errors": engine.errors}  # fmt: skip
        stream = out or sys.stderr
        stream.write(json.dumps(line) + "\n")
        stream.flush()

    return report


def parse_progress_line(line: str) -> dict | None:
    """The progress document of a ``--progress`` stderr line, or None for any other line."""
    if not line.startswith('{"event": "progress"'):
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def progress_callback(args: argparse.Namespace) -> Callable[[ReplayEngine], None] | None:
    """The progress callback ``--progress`` asks for, or None."""
    return progress_printer() if args.progress else None


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay a capture or live traffic into a target (copier side; needs CAP_NET_RAW and a running intercept)",
        description="Replay every TCP session of CAPTURE into --target through a raw socket. "
        "Responses are reported by `pytest-tcpcopy intercept` running in the target's network namespace. "
        "Instead of CAPTURE, --live, --mirror-listen or --stdin-stream replays live traffic as it arrives, for "
        "--duration seconds (a stdin stream: until it ends); "
        "the sessions still open then are played to their end.",
    )
    parser.add_argument("capture", metavar="CAPTURE", nargs="?", help="pcap/pcapng file (optionally gzipped)")
    parser.add_argument("--live", metavar="IFACE",
                        help="instead of CAPTURE: capture on this interface (needs --port) and replay as it arrives")
    parser.add_argument("--mirror-listen", type=parse_endpoint, metavar="ADDR:PORT",
                        help="instead of CAPTURE: receive from `pytest-tcpcopy mirror` agents on ADDR:PORT "
                        "(in this process's network namespace) and replay as it arrives")
    parser.add_argument("--stdin-stream", action="store_true",
                        help="instead of CAPTURE: read a classic pcap stream from stdin and replay it as it "
                        "arrives, until the stream ends (or --duration)")
    parser.add_argument("--duration", type=positive_float, default=None, metavar="SECONDS",
                        help=f"how long to take live traffic (default {DEFAULT_LIVE_DURATION:g})")
    parser.add_argument("--target", type=parse_endpoint, required=True, metavar="IP:PORT")
    parser.add_argument("--intercept", action="append", required=True, metavar="ADDR:PORT",
                        help="an intercept to use (repeatable; port 36524 by default)")
    parser.add_argument("--port", type=int, action="append", default=[], metavar="N",
                        help="the capture's server port(s) (default: from each connection's SYN)")
    add_replay_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = ReplayOptions(
        target=args.target,
        intercepts=args.intercept,
        server_ports=args.port,
        speed=args.speed,
        amplify=args.amplify,
        max_active=args.max_sessions,
        translator=translator_config(args),
        max_duration=args.max_duration,
        only_sessions=args.sessions,
    )
    source = live_source(args)
    if source is None:
        result = replay_capture(args.capture, options, progress=progress_callback(args))
    else:
        try:
            result = replay_source(source, options, progress=progress_callback(args))
        finally:
            source.close()
    print_result(result.to_json(), as_json=args.json)
    return 0


def live_source(args: argparse.Namespace) -> PacketSource | None:
    """The live source ``--live`` / ``--mirror-listen`` / ``--stdin-stream`` ask for, or None for
    CAPTURE; UsageError for anything but exactly one of the four."""
    given = [name for name, value in (("CAPTURE", args.capture), ("--live", args.live),
                                      ("--mirror-listen", args.mirror_listen),
                                      ("--stdin-stream", args.stdin_stream or None)) if value is not None]  # fmt: skip
    if len(given) != 1:
        problem = f"got {' and '.join(given)}" if given else "got none"
        raise UsageError("replay needs exactly one of CAPTURE, --live IFACE, --mirror-listen ADDR:PORT, "
                         f"--stdin-stream ({problem})")  # fmt: skip
    if args.capture is not None:
        if args.duration is not None:
            raise UsageError("--duration applies to live traffic; a capture file is replayed whole")
        return None
    if args.speed is not None:
        raise UsageError("--speed applies to capture files: live traffic is replayed as it arrives (drop --speed)")
    if args.stdin_stream:
        return PcapStreamSource(sys.stdin.fileno(), args.duration)
    duration = DEFAULT_LIVE_DURATION if args.duration is None else args.duration
    if args.live is not None:
        if not args.port:
            raise UsageError("--live needs the service's --port N (the capture filter)")
        return LiveSource(args.live, args.port, duration)
    return MirrorSource(args.mirror_listen, duration)


def print_result(data: dict, *, as_json: bool, out=None) -> None:
    """Print a ``ReplayResult.to_json()`` document, as JSON or as a short summary."""
    out = out or sys.stdout
    if as_json:
        out.write(json.dumps(data) + "\n")  # one write; the C encoder (indent would force the Python one)
        return
    totals = data["totals"]
    out.write(
        f"sessions {totals['sessions']}  established {totals['established']}  completed {totals['completed']}  "
        f"requests {totals['requests_sent']}  request bytes {totals['request_bytes']}  "
        f"response bytes {totals['response_bytes']}  elapsed {totals['elapsed']:.2f} s\n"
    )
    for reason, count in sorted(totals["aborted"].items(), key=lambda kv: -kv[1]):
        out.write(f"  not complete: {count} x {reason}\n")
    for note in data["notes"]:
        out.write(f"  note: {note}\n")
