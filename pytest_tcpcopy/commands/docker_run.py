"""``pytest-tcpcopy docker-run``: netns-run's twin with Docker: SUTs from images, no root.

The capture is read through first (``capture.check``); then the candidate image (and, with
``--baseline-image``, a baseline beside it) runs on a fresh internal Docker network with the
intercept as a sidecar; the capture is replayed into every SUT at once, one result document
printed per SUT, and everything removed, also on failure, Ctrl-C and SIGTERM (and by the run's
reaper when this process is killed outright). Exit status 1 when a SUT died during the replay.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..capture.check import check_capture
from .netns_run import report_dead_suts, sut_logs_on_error
from .replay import add_replay_arguments, copier_arguments, exit_status, print_result


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "docker-run",
        help="replay a capture into SUT containers (candidate and optional baseline) with Docker",
        description="Start --image (and --baseline-image) on a fresh internal Docker network, each with "
        "the intercept as a sidecar, replay CAPTURE into all of them concurrently, print one result per "
        "SUT (with --json: a JSON list of `replay --json` documents, candidate first, each naming its SUT).",
    )
    parser.add_argument("capture", metavar="CAPTURE")
    parser.add_argument("--image", required=True, metavar="IMG", help="the candidate SUT image")
    parser.add_argument("--port", type=int, required=True, metavar="N", help="the port the SUT listens on")
    parser.add_argument("--baseline-image", metavar="IMG", help="a baseline SUT image, replayed into side by side")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="SUT environment (repeatable)")
    parser.add_argument(
        "--http-path", metavar="PATH", help="also require GET PATH to answer below 400 before replaying"
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a SUT may take to accept connections (default 30)",
    )
    parser.add_argument(
        "--capture-port",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="the capture's server port(s) (default: from each connection's SYN)",
    )
    parser.add_argument("--agent-image", metavar="IMG", help="agent image to use (default: built for this package)")
    parser.add_argument(
        "--keep", action="store_true", help="leave the containers and network running, and say how to reach them"
    )
    parser.add_argument("--sut-cap-add", action="append", default=[], metavar="CAP",
                        help="give the SUT containers a capability back (repeatable; they run without NET_RAW)")
    parser.add_argument("--sut-new-privileges", action="store_true",
                        help="let the SUT gain privileges through set-uid binaries (off: no-new-privileges)")
    add_replay_arguments(parser)
    parser.set_defaults(func=run, command_after_dashes=[])
    parser.usage = "pytest-tcpcopy docker-run CAPTURE --image IMG --port N [options] [-- SUT_COMMAND...]"


def run(args: argparse.Namespace) -> int:
    from ..backends.docker import DockerBackend  # the Docker SDK only when the command runs

    images = [("candidate", args.image)] + ([("baseline", args.baseline_image)] if args.baseline_image else [])
    check_capture(args.capture)
    with sut_logs_on_error(), DockerBackend(keep=args.keep, agent_image=args.agent_image) as backend:
        suts = [
            backend.start_sut(
                image,
                args.port,
                name=name,
                command=args.command_after_dashes or None,
                environment=args.env,
                ready_timeout=args.ready_timeout,
                http_path=args.http_path,
                capture_responses=args.capture_responses,
                cap_add=args.sut_cap_add,
                new_privileges=args.sut_new_privileges,
            )
            for name, image in images
        ]
        docs = backend.replay(
            args.capture,
            suts,
            *copier_arguments(args),
            *(f"--port={p}" for p in args.capture_port),
            timeout=args.max_duration + 60,
        )
    if args.json:
        json.dump(docs, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return report_dead_suts(docs) or max(exit_status(data) for data in docs)
    for data in docs:
        print(f"--- {data['sut']['name']} ({data['sut']['image']}) ---")
        print_result(data, as_json=False)
        if "sut_logs" in data:
            print(f"--- {data['sut']['name']} logs (tail) ---\n{data['sut_logs']}")
    return report_dead_suts(docs) or max(exit_status(data) for data in docs)
