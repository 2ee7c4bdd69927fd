"""``pytest-tcpcopy netns-run``: the whole rig in one command, as root.

The capture is read through first (``capture.check``); then the SUT command starts in a fresh
network namespace, the intercept beside it, and the copier in a second namespace joined by a veth
pair; the capture is replayed, the results printed, and everything torn down, also on failure,
Ctrl-C and SIGTERM (and by the rig's supervisor when this process is killed outright). Exit status
1 when the SUT died during the replay (said on stderr, with the tail of its output).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ..backends.netns import NetnsBackend
from ..capture.check import check_capture
from ..errors import SutError, UsageError
from .replay import add_replay_arguments, copier_arguments, exit_status, print_result

LOG_TAIL = 3000


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "netns-run",
        help="replay a capture into a SUT command run in a fresh network namespace (root)",
        description="Start SUT_COMMAND in a fresh network namespace listening on --port, run the "
        "intercept beside it and the copier in a second namespace, replay CAPTURE, print the results.",
    )
    parser.add_argument("capture", metavar="CAPTURE")
    parser.add_argument("--port", type=int, required=True, metavar="N", help="the port the SUT listens on")
    parser.add_argument("--capture-port", type=int, action="append", default=[], metavar="N",
                        help="the capture's server port(s) (default: from each connection's SYN)")
    parser.add_argument("--ready-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long the SUT may take to accept connections (default 10)")
    parser.add_argument("--steer-receive", action=argparse.BooleanOptionalAction, default=None,
                        help="pin the copier to one CPU and steer the SUT side's receive processing to "
                             "the others (default: with 3 CPUs or more; on 2 CPUs a fifth to a third more "
                             "short sessions, 10-20 %% less keep-alive: docs/benchmarks.md)")
    parser.add_argument("--receive-thread", action=argparse.BooleanOptionalAction, default=True,
                        help="run the SUT side's receive processing in a kernel thread (threaded NAPI, "
                             "GRO on at the SUT's end) instead of inside the copier's sends (default: on)")
    add_replay_arguments(parser)
    parser.set_defaults(func=run, command_after_dashes=[])
    parser.usage = "pytest-tcpcopy netns-run CAPTURE --port N [options] -- SUT_COMMAND..."


def run(args: argparse.Namespace) -> int:
    command = args.command_after_dashes
    if not command:
        raise UsageError("give the SUT command after --, e.g. -- python3 -m http.server 8080")
    check_capture(args.capture)
    with sut_logs_on_error(), NetnsBackend(
        command,
        args.port,
        capture_responses=args.capture_responses,
        ready_timeout=args.ready_timeout,
        steer_receive=args.steer_receive,
        receive_thread=args.receive_thread,
    ) as backend:
        data = backend.replay(
            args.capture,
            *copier_arguments(args),
            *(f"--port={p}" for p in args.capture_port),
            timeout=args.max_duration + 60,
        )
    print_result(data, as_json=args.json)
    if "sut_logs" in data and not args.json:
        print(f"--- SUT logs (tail) ---\n{data['sut_logs']}")
    return report_dead_suts([data]) or exit_status(data)


@contextmanager
def sut_logs_on_error() -> Iterator[None]:
    """Print a SutError's SUT output (its tail) on stderr before the error's one-line message."""
    try:
        yield
    except SutError as error:
        if error.logs:
            print(f"--- SUT logs (tail) ---\n{error.logs[-LOG_TAIL:]}", file=sys.stderr)
        raise


def report_dead_suts(docs: list[dict]) -> int:
    """Say on stderr which SUT died during the replay (the first note of its document); the
    command's exit status: 1 if one did, else 0."""
    dead = [doc for doc in docs if "sut_exit" in doc]
    for doc in dead:
        print(f"pytest-tcpcopy: {doc['notes'][0]}", file=sys.stderr)
    return 1 if dead else 0
