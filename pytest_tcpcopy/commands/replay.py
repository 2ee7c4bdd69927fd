"""``pytest-tcpcopy replay``: the copier side, replaying a capture (or live traffic, as it arrives)
into a target via raw sockets."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from ..backends.base import SutReplay
from ..errors import SutError
from ..live import LiveSource, MirrorSource, PacketSource
from ..live.stream import PcapStreamSource
from ..replay.contract import (
    CopierCommand,
    CopierSettings,
    Output,
    Progress,
    add_report_arguments,
    parse_endpoint,
    result_lines,
    session_line,
)
from ..replay.copier import ReplayOptions, replay_capture, replay_source
from ..replay.engine import ReplayEngine
from ..replay.results import ReplayResult, SessionCounts, SessionResult
from ..tcp.translator import TranslatorConfig


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    """The copier's settings and reporting options, for the commands that run a whole rig
    (``netns-run``, ``docker-run``): there ``--port`` is the SUT's, so the capture's server
    ports are ``--capture-port``."""
    CopierSettings.add_arguments(parser, ports_flag="--capture-port")
    add_report_arguments(parser, lines=False)


def translator_config(settings: CopierSettings) -> TranslatorConfig:
    return TranslatorConfig(pipeline=settings.pipeline, capture_payload=settings.capture_responses,
                            response_timeout=settings.response_timeout)


LOG_TAIL = 3000  # characters of a SUT's output printed when it failed
EXIT_INCOMPLETE = 3  # a failure (a lost intercept) stopped the replay; the full result was printed


EXIT_SUT_DIED = 1  # a SUT died during the replay (said on stderr, with its log tail)


def exit_status(replays: Sequence[SutReplay]) -> int:
    """The exit status of a rig command (``netns-run``, ``docker-run``) once its results were
    printed: EXIT_SUT_DIED when a SUT died during the replay (each said on stderr), else
    EXIT_INCOMPLETE when a failure stopped a replay (the sessions it never got to are in the
    result as ``not_replayed``), else 0. The copier itself (``replay``) exits 0 either way: its
    caller reads the result."""
    dead = [r for r in replays if r.sut_exit is not None]
    for replayed in dead:
        print(f"pytest-tcpcopy: {replayed.result.notes[0]}", file=sys.stderr)
    if dead:
        return EXIT_SUT_DIED
    return EXIT_INCOMPLETE if any(r.result.stopped_by_failure for r in replays) else 0


@contextmanager
def sut_logs_on_error() -> Iterator[None]:
    """Print a SutError's SUT output (its tail) on stderr before the error's one-line message."""
    try:
        yield
    except SutError as error:
        if error.logs:
            print(f"--- SUT logs (tail) ---\n{error.logs[-LOG_TAIL:]}", file=sys.stderr)
        raise


DEFAULT_LIVE_DURATION = 60.0  # seconds of live traffic --live / --mirror-listen take by default


def progress_printer(out=None, clock: Callable[[], float] = time.monotonic) -> Callable[[ReplayEngine], None]:
    """A replay progress callback writing one progress line (``contract.Progress``) per call to
    ``out`` (default stderr); the rate counts the copies done since the previous line."""
    last = [clock(), 0]

    def report(engine: ReplayEngine) -> None:
        now, done = clock(), engine.sessions_done
        interval = now - last[0]
        rate = (done - last[1]) / interval if interval > 0 else 0.0
        last[:] = [now, done]
        progress = Progress(done, engine.sessions_total, engine.active, engine.waiting, engine.requests,
                            round(rate, 1), engine.errors)  # fmt: skip
        stream = out or sys.stderr
        stream.write(progress.to_line() + "\n")
        stream.flush()

    return report


def print_progress(sut: str, report: Progress) -> None:
    """A backend's progress callback for the commands that run a rig: the copier's line, on stderr."""
    sys.stderr.write(report.to_line() + "\n")
    sys.stderr.flush()


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
    CopierCommand.add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    command = CopierCommand.from_namespace(args)
    settings = command.settings
    streamed = SessionCounts() if command.output is not Output.JSON else None  # JSON: one document of all
    options = ReplayOptions(
        target=parse_endpoint(command.target),
        intercepts=command.intercepts,
        server_ports=settings.server_ports,
        speed=settings.speed,
        amplify=settings.amplify,
        max_active=settings.max_sessions,
        translator=translator_config(settings),
        max_duration=settings.max_duration,
        only_sessions=settings.sessions,
        on_session=None if streamed is None else session_writer(streamed, command.output),
    )
    progress = progress_printer() if command.progress else None
    source = live_source(command)
    if source is None:
        assert command.capture is not None
        result = replay_capture(command.capture, options, progress=progress)
    else:
        try:
            result = replay_source(source, options, progress=progress)
        finally:
            source.close()
    result.reported = streamed
    print_result(result, command.output)
    return 0


def session_writer(counts: SessionCounts, output: Output, out=None) -> Callable[[SessionResult], None]:
    """The copier's hand-out of each session copy as it ends: counted into ``counts`` and, for
    the result stream, written as its line at once (the host judges it while the replay goes on)."""

    def write(session: SessionResult) -> None:
        counts.add(session)
        if output is Output.JSON_LINES:
            (out or sys.stdout).write(session_line(session) + "\n")

    return write


def live_source(command: CopierCommand) -> PacketSource | None:
    """The live source the command names, or None for a capture file."""
    if command.stdin_stream:
        return PcapStreamSource(sys.stdin.fileno(), command.duration)
    duration = DEFAULT_LIVE_DURATION if command.duration is None else command.duration
    if command.live is not None:
        return LiveSource(command.live, command.settings.server_ports, duration)
    if command.mirror_listen is not None:
        return MirrorSource(parse_endpoint(command.mirror_listen), duration)
    return None


def print_result(result: ReplayResult, output: Output, out=None) -> None:
    """Print ``result`` as the result stream (the session copies it still holds, then the
    totals line), one JSON document, or a short summary."""
    out = out or sys.stdout
    if output is Output.JSON_LINES:
        out.write("".join(line + "\n" for line in result_lines(result)))
        return
    if output is Output.JSON:
        out.write(json.dumps(result.to_json()) + "\n")  # one write; the C encoder (indent would force the Python one)
        return
    print_summary(result, out)


def print_summary(result: ReplayResult, out=None) -> None:
    """A few lines for people: the totals, why sessions did not complete, the notes."""
    out = out or sys.stdout
    totals = result.totals()
    out.write(
        f"sessions {totals['sessions']}  established {totals['established']}  completed {totals['completed']}  "
        f"requests {totals['requests_sent']}  request bytes {totals['request_bytes']}  "
        f"response bytes {totals['response_bytes']}  elapsed {totals['elapsed']:.2f} s\n"
    )
    for reason, count in sorted(totals["aborted"].items(), key=lambda kv: -kv[1]):
        out.write(f"  not complete: {count} x {reason}\n")
    for note in result.notes:
        out.write(f"  note: {note}\n")
