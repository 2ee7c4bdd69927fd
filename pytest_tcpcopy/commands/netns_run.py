"""``pytest-tcpcopy netns-run``: the whole rig in one command, as root.

The capture is read through first (``capture.check``); then the SUT command starts in a fresh
network namespace, the intercept beside it, and the copier in a second namespace joined by a veth
pair; the capture is replayed, the results printed, and everything torn down, also on failure,
Ctrl-C and SIGTERM (and by the rig's supervisor when this process is killed outright). Exit status
1 when the SUT died during the replay (said on stderr, with the tail of its output).
"""

from __future__ import annotations

import argparse
import json
import sys

from ..backends.base import SutSpec
from ..backends.netns.backend import NetnsBackend
from ..capture.check import check_capture
from ..errors import UsageError
from ..replay.contract import CopierSettings
from ..settings import Settings, add_argument
from .replay import add_replay_arguments, exit_status, print_progress, print_summary, sut_logs_on_error


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "netns-run",
        help="replay a capture into a SUT command run in a fresh network namespace (root)",
        description="Start SUT_COMMAND in a fresh network namespace listening on --port, run the "
        "intercept beside it and the copier in a second namespace, replay CAPTURE, print the results.",
    )
    parser.add_argument("capture", metavar="CAPTURE")
    add_argument(parser, "port", required=True)
    add_argument(parser, "ready_timeout", default=Settings().ready_timeout)
    parser.add_argument("--steer-receive", action=argparse.BooleanOptionalAction, default=None,
                        help="pin the copier to one CPU and steer the SUT side's receive processing to "
                             "the others (default: with 3 CPUs or more; on 2 CPUs, with the receive thread, short "
                             "sessions even and keep-alive about 10 %% slower: docs/benchmarks.md)")
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
    settings = CopierSettings.from_namespace(args)
    spec = SutSpec("candidate", args.port, command=tuple(command), ready_timeout=args.ready_timeout,
                   capture_responses=settings.capture_responses)  # fmt: skip
    check_capture(args.capture)
    with sut_logs_on_error(), NetnsBackend(steer_receive=args.steer_receive, receive_thread=args.receive_thread) as backend:
        backend.start_sut(spec)
        [replayed] = backend.replay(args.capture, settings, progress=print_progress if args.progress else None)
    if args.json:
        doc = replayed.result.to_json()
        if replayed.sut_exit is not None:
            doc.update(sut_logs=replayed.sut_logs, sut_exit={"status": replayed.sut_exit[0], "code": replayed.sut_exit[1]})
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        print_summary(replayed.result)
        if replayed.sut_logs is not None:
            print(f"--- SUT logs (tail) ---\n{replayed.sut_logs}")
    return exit_status([replayed])
