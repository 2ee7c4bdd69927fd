"""``pytest-tcpcopy record``: record a service's TCP traffic into a capture file, no tcpdump needed.

Captures the service's port(s) with AF_PACKET and the package's own BPF filter (both directions),
on a host interface or inside a running container's network namespace (``--container``: its
interface eth0 and its exposed ports unless told otherwise), and writes every packet as it
arrives to ``-o FILE`` (pcap or pcapng by the name, ``.gz`` compressed). It stops after
``--duration`` seconds, once ``--count`` sessions have ended, or at Ctrl-C / SIGTERM, whichever
comes first. Progress goes to stderr; at the end the recording is read back and summarised
(sessions, exchanges, packets) on stdout, as one JSON document with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field

from ..capture import CaptureTruncatedWarning, open_capture
from ..capture.packet import Packet
from ..errors import EnvironmentProblem, UsageError
from ..flows import FlowAssembler, assemble_sessions
from ..live.capture import DEFAULT_SNAPLEN, LiveCapture
from ..live.capture_file import CaptureFileWriter, capture_file_kind
from ..live.namespace import made_in_netns
from ..live.recorder import LiveRecorder, RecordingProgress

COUNT_SETTLE = 0.5  # seconds recorded after the last counted session ended, for its last ACKs
NONTTY_PROGRESS_EVERY = 10.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "record",
        help="record a service's TCP traffic (a host port or a container's) into a pcap/pcapng file",
        description="Capture the TCP traffic of --port(s) on --iface, on this host or inside the network "
        "namespace of --container (needs CAP_NET_RAW, and root for a container), and write it to -o FILE "
        "as it arrives. Stops after --duration seconds, after --count sessions have ended, or at Ctrl-C. "
        "At the end it prints what the file holds: sessions, exchanges, packets.",
    )
    parser.add_argument(
        "--container",
        metavar="NAME|ID",
        help="record inside this running Docker container's network namespace "
        "(default interface eth0, default ports the container's exposed TCP ports)",
    )
    parser.add_argument("--iface", metavar="IF", help="interface to capture on (e.g. eth0, lo, br-1a2b3c; `ip link`)")
    parser.add_argument(
        "--port",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="the service's TCP port (repeatable; required unless --container exposes some)",
    )
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument(
        "--count",
        type=int,
        metavar="N",
        help=f"stop once N sessions have ended (closed by FIN or RST; {COUNT_SETTLE:g} s more for their last ACKs)",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="the capture file: *.pcap or *.pcapng, either with .gz after it to compress",
    )
    parser.add_argument(
        "--snaplen",
        type=int,
        default=DEFAULT_SNAPLEN,
        metavar="BYTES",
        help=f"bytes kept of each packet (default {DEFAULT_SNAPLEN}: whole packets)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    parser.add_argument(
        "--progress",
        type=float,
        metavar="S",
        help=f"seconds between progress lines on stderr (default 1 on a terminal, {NONTTY_PROGRESS_EVERY:g} "
        "otherwise; 0: none)",
    )
    parser.set_defaults(func=run)


@dataclass(frozen=True, slots=True)
class Target:
    """Where to capture: an interface, in this namespace or a container's."""

    iface: str
    ports: tuple[int, ...]
    netns: str | None = None  # /proc/PID/ns/net of the container
    container: str | None = None  # the container's name

    def __str__(self) -> str:
        where = f"{self.iface} in container {self.container}" if self.container else self.iface
        return f"TCP port{'s' if len(self.ports) > 1 else ''} {', '.join(map(str, self.ports))} on {where}"


def _target(args: argparse.Namespace) -> Target:
    for port in args.port:
        if not 0 < port < 65536:
            raise UsageError(f"--port {port}: expected 1..65535")
    if args.duration is not None and not args.duration > 0:
        raise UsageError(f"--duration {args.duration:g}: expected a positive number of seconds")
    if args.progress is not None and args.progress < 0:
        raise UsageError(f"--progress {args.progress:g}: expected seconds (0 for no progress lines)")
    if args.count is not None and args.count < 1:
        raise UsageError(f"--count {args.count}: expected at least 1 session")
    capture_file_kind(args.output)  # a bad name fails before anything is captured
    if args.container is None:
        if args.iface is None:
            raise UsageError("--iface is required without --container: the interface to capture on "
                             "(e.g. eth0, or lo for a service on 127.0.0.1; `ip link` lists them)")  # fmt: skip
        if not args.port:
            raise UsageError("--port is required: the service's TCP port(s)")
        return Target(args.iface, tuple(sorted(set(args.port))))
    name, pid, exposed = _container(args.container)
    ports = tuple(sorted(set(args.port or exposed)))
    if not ports:
        raise UsageError(f"container {name} exposes no TCP port; say which with --port")
    return Target(args.iface or "eth0", ports, f"/proc/{pid}/ns/net", name)


def _container(ref: str) -> tuple[str, int, list[int]]:
    """The running container ``ref``'s name, main process id and exposed TCP ports."""
    import docker.errors

    from ..backends.docker.runs import docker_client

    try:
        container = docker_client().containers.get(ref)
    except docker.errors.NotFound:
        raise UsageError(f"--container {ref}: no such container (`docker ps` lists the running ones)") from None
    state = container.attrs.get("State") or {}
    if not state.get("Running") or not state.get("Pid"):
        raise UsageError(f"--container {ref}: container {container.name} is {state.get('Status', 'not running')}")
    exposed = (container.attrs.get("Config") or {}).get("ExposedPorts") or {}
    ports = [int(spec.split("/")[0]) for spec in exposed if spec.endswith("/tcp")]
    return container.name, int(state["Pid"]), ports


class SessionTally:
    """Counts the sessions of the recorded segments as they arrive; done once ``count`` of them
    have ended (and ``COUNT_SETTLE`` seconds have passed since)."""

    def __init__(self, ports: tuple[int, ...], count: int | None) -> None:
        self.assembler = FlowAssembler(ports, keep_streams=False, server_coverage=False)
        self.count = count
        self.sessions = 0
        self.ended = 0
        self._open: set[int] = set()
        self._reached_at: float | None = None

    def observe(self, packets: list[Packet]) -> None:
        feed = self.assembler.feed
        for packet in packets:
            route = feed(packet)
            if route is None:
                continue
            session = route[0]
            if session.index >= self.sessions:
                self.sessions = session.index + 1
                self._open.add(session.index)
            if session.closed and session.index in self._open:
                self._open.discard(session.index)
                self.ended += 1
        if self.assembler.has_finished():
            self.assembler.pop_finished()
        if self.count is not None and self.ended >= self.count and self._reached_at is None:
            self._reached_at = time.monotonic()

    def done(self) -> bool:
        return self._reached_at is not None and time.monotonic() - self._reached_at >= COUNT_SETTLE


@dataclass(slots=True)
class RecordingSummary:
    """What a recorded file holds, read back with the package's own readers."""

    path: str
    format: str
    packets: int
    bytes: int
    seconds: float
    stopped: str
    kernel_dropped: int
    sessions: int = 0
    whole_sessions: int = 0  # handshake and close captured, no gap
    exchanges: int = 0
    exchanges_by_codec: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        codecs = ", ".join(f"{codec} {n}" for codec, n in sorted(self.exchanges_by_codec.items()))
        lines = [
            (
                f"recorded {self.path} ({self.format}): {self.sessions} session(s), {self.whole_sessions} of them "
                f"whole (handshake and close seen), {self.exchanges} exchange(s){f' ({codecs})' if codecs else ''}, "
                f"{self.packets} packets, {self.bytes} bytes in {self.seconds:.1f} s; stopped: {self.stopped}"
            ),
        ]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def summarize(path: str, ports: tuple[int, ...], progress: RecordingProgress, stopped: str) -> RecordingSummary:
    """The file at ``path`` read back: its sessions and their exchanges, and what went wrong."""
    try:
        from ..compare.pairing import exchanges_from_capture
    except ImportError as exc:  # the agent image runs the CLI without the comparison's packages
        exchanges_from_capture = None
        missing = exc.name
    summary = RecordingSummary(path, str(capture_file_kind(path)), progress.packets, progress.bytes,
                               round(progress.seconds, 3), stopped, progress.kernel_dropped)  # fmt: skip
    codecs: Counter[str] = Counter()
    open_at_end = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureTruncatedWarning)
        with open_capture(path) as reader:
            for session in assemble_sessions(reader, ports):
                summary.sessions += 1
                summary.whole_sessions += bool(session.handshake and session.closed and not session.gaps)
                open_at_end += not session.closed
                if exchanges_from_capture is not None:
                    codecs.update(exchange.codec for exchange in exchanges_from_capture(session))
    summary.exchanges = sum(codecs.values())
    summary.exchanges_by_codec = dict(codecs)
    if exchanges_from_capture is None:
        summary.notes.append(f"exchanges not counted: this installation lacks {missing} (pip install pytest-tcpcopy)")
    if not summary.packets:
        summary.notes.append(f"nothing was captured on port(s) {', '.join(map(str, ports))}: is the service "
                             "listening there, on this interface, and did traffic reach it?")  # fmt: skip
    if open_at_end:
        summary.notes.append(f"{open_at_end} session(s) still open when recording stopped (kept as far as recorded)")
    if summary.kernel_dropped:
        summary.notes.append(f"the kernel dropped {summary.kernel_dropped} packet(s) (the socket's buffer was full): "
                             "their sessions have gaps")  # fmt: skip
    return summary


def run(args: argparse.Namespace) -> int:
    target = _target(args)

    def open_live() -> LiveCapture:
        return LiveCapture(target.iface, target.ports, snaplen=args.snaplen)

    tty = sys.stderr.isatty()
    capture = open_live() if target.netns is None else _in_container(target, open_live)
    try:
        with CaptureFileWriter(args.output, snaplen=args.snaplen, iface=target.iface) as writer:
            tally = SessionTally(target.ports, args.count)
            recorder = LiveRecorder(capture, writer, tally)
            previous = {signum: signal.signal(signum, lambda *_: recorder.stop())
                        for signum in (signal.SIGINT, signal.SIGTERM)}  # fmt: skip
            try:
                limits = [
                    f"{args.duration:g} s" if args.duration else "",
                    f"{args.count} sessions" if args.count else "",
                ]
                until = " or ".join(filter(None, limits)) or "Ctrl-C"
                print(f"record: recording {target} into {args.output} until {until}", file=sys.stderr, flush=True)
                every = args.progress if args.progress is not None else 1.0 if tty else NONTTY_PROGRESS_EVERY
                progress = recorder.run(args.duration, report=_reporter(tally, tty) if every else None,
                                        every=every or 1.0)  # fmt: skip
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
            if every and tty:
                print(file=sys.stderr)  # past the progress line
    finally:
        capture.close()
    summary = summarize(args.output, target.ports, progress, recorder.stop_reason)
    print(json.dumps(asdict(summary)) if args.json else summary.render(), flush=True)
    return 0


def _in_container(target: Target, open_live):
    try:
        return made_in_netns(target.netns, open_live)
    except EnvironmentProblem as exc:
        raise EnvironmentProblem(f"recording in container {target.container}: {exc}") from None


def _reporter(tally: SessionTally, tty: bool):
    end = "\r" if tty else "\n"

    def report(progress: RecordingProgress) -> None:
        dropped = f", {progress.kernel_dropped} dropped by the kernel" if progress.kernel_dropped else ""
        print(f"record: {progress.seconds:6.1f} s  {progress.packets} packets  {progress.bytes} bytes  "
              f"{tally.sessions} sessions ({tally.ended} ended){dropped}", end=end, file=sys.stderr, flush=True)  # fmt: skip

    return report
