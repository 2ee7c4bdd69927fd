"""``pytest-tcpcopy mirror``: run on a production host, stream its TCP traffic to the test runner.

Captures the given ports on one interface (AF_PACKET, both directions) and sends the packets to a
runner's MirrorListener (``--to``), reconnecting with backoff while the runner is away, holding at
most ``--buffer`` packets meanwhile, and stopping by itself after ``--duration`` seconds. stdout
carries one JSON line at exit with the counters; logs go to stderr. docs/mirror.md has the protocol.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys

from ..endpoint import Endpoint
from ..errors import UsageError
from ..live.agent import MirrorAgent
from ..live.capture import DEFAULT_SNAPLEN, LiveCapture
from ..live.protocol import DEFAULT_PORT


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mirror",
        help="stream a production host's TCP traffic on some ports to the test runner",
        description="Capture TCP segments on --port(s) of --iface (both directions, needs CAP_NET_RAW) "
        "and stream them to the test runner at --to, for --duration seconds.",
    )
    parser.add_argument("--iface", required=True, metavar="IF", help="interface to capture on (e.g. eth0, lo)")
    parser.add_argument(
        "--port",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="service port whose traffic to capture (repeatable, at least one)",
    )
    parser.add_argument(
        "--to",
        required=True,
        metavar="HOST:PORT",
        help=f"the runner's mirror listener (port {DEFAULT_PORT} by default)",
    )
    parser.add_argument(
        "--buffer",
        type=int,
        default=100_000,
        metavar="N",
        help="packets held while the runner is slow or away; newer ones are dropped and counted (default 100000)",
    )
    parser.add_argument(
        "--duration", type=float, default=3600.0, metavar="S", help="stop after this many seconds (default 3600)"
    )
    parser.add_argument(
        "--snaplen",
        type=int,
        default=DEFAULT_SNAPLEN,
        metavar="BYTES",
        help=f"bytes kept of each frame (default {DEFAULT_SNAPLEN})",
    )
    parser.add_argument("--name", default=None, help="agent name the runner reports (default HOST/IFACE)")
    parser.set_defaults(func=run)


def _validate(args: argparse.Namespace) -> Endpoint:
    if not args.port:
        raise UsageError("--port is required: the service port(s) whose traffic to mirror")
    for port in args.port:
        if not 0 < port < 65536:
            raise UsageError(f"--port {port}: expected 1..65535")
    if args.buffer < 1:
        raise UsageError(f"--buffer {args.buffer}: expected at least 1 packet")
    if not args.duration > 0:
        raise UsageError(f"--duration {args.duration:g}: expected a positive number of seconds")
    to = args.to if ":" in args.to and not args.to.endswith("]") else f"{args.to}:{DEFAULT_PORT}"
    try:
        endpoint = Endpoint.parse(to)
    except ValueError as exc:
        raise UsageError(f"--to: {exc}") from None
    if endpoint.port in args.port:
        raise UsageError(f"--to {endpoint}: port {endpoint.port} is also a --port, so the agent would "
                         "capture its own stream; give the runner another port")  # fmt: skip
    return endpoint


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="mirror: %(message)s")
    to = _validate(args)
    name = args.name or f"{socket.gethostname()}/{args.iface}"
    with LiveCapture(args.iface, args.port, snaplen=args.snaplen) as capture:
        agent = MirrorAgent(capture, to, name=name, duration=args.duration, buffer=args.buffer)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: agent.stop())
        print(json.dumps({"event": "capturing", "iface": args.iface, "ports": sorted(set(args.port)),
                          "to": str(to)}), flush=True)  # fmt: skip
        counters = agent.run()
    summary = {"event": "stopped", "reason": agent.stop_reason, "unsent": agent.unsent,
               **{field: getattr(counters, field) for field in counters.__slots__}}  # fmt: skip
    logging.getLogger("pytest_tcpcopy.mirror").info(
        "stopped (%s): %s", agent.stop_reason, " ".join(f"{k}={v}" for k, v in summary.items() if k != "event")
    )
    print(json.dumps(summary), flush=True)
    return 0
