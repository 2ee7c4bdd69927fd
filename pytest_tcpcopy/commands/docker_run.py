"""``pytest-tcpcopy docker-run``: netns-run's twin with Docker: SUTs from images, no root.

The capture is read through first (``capture.check``) and every image made ready
(``docker.prepare``: ``build:PATH[:TARGET]`` built, others checked present, pulled only with
``--pull``), so a mistyped image is one line before anything starts; then the candidate image (and, with
``--baseline-image``, a baseline beside it) runs on a fresh internal Docker network with the
intercept as a sidecar; the capture is replayed into every SUT at once, one result document
printed per SUT, and everything removed, also on failure, Ctrl-C and SIGTERM (and by the run's
reaper when this process is killed outright). Exit status 1 when a SUT died during the replay.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..backends.base import SutSpec
from ..backends.docker.prepare import ImagePreparer
from ..capture.check import check_capture
from ..errors import UsageError
from ..replay.contract import CopierSettings
from ..settings import Settings, add_argument
from .replay import add_replay_arguments, exit_status, print_progress, print_summary, sut_logs_on_error


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "docker-run",
        help="replay a capture into SUT containers (candidate and optional baseline) with Docker",
        description="Start --image (and --baseline-image) on a fresh internal Docker network, each with "
        "the intercept as a sidecar, replay CAPTURE into all of them concurrently, print one result per "
        "SUT (with --json: a JSON list of `replay --json` documents, candidate first, each naming its SUT).",
    )
    parser.add_argument("capture", metavar="CAPTURE")
    for name in ("image", "port"):
        add_argument(parser, name, required=True)
    parser.add_argument("--baseline-image", metavar="IMG", help="a baseline SUT image, replayed into side by side")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="SUT environment (repeatable)")
    for name in ("http_path", "ready_timeout", "keep"):
        add_argument(parser, name, default=getattr(Settings(), name))
    parser.add_argument("--agent-image", metavar="IMG", help="agent image to use (default: built for this package)")
    for name in ("sut_cap_add", "sut_new_privileges", "build_arg", "pull"):
        add_argument(parser, name)
    add_replay_arguments(parser)
    parser.set_defaults(func=run, command_after_dashes=[])
    parser.usage = "pytest-tcpcopy docker-run CAPTURE --image IMG --port N [options] [-- SUT_COMMAND...]"


def run(args: argparse.Namespace) -> int:
    from ..backends.docker.backend import DockerBackend  # the Docker SDK only when the command runs

    settings = CopierSettings.from_namespace(args)
    refs = [("candidate", args.image)] + ([("baseline", args.baseline_image)] if args.baseline_image else [])
    check_capture(args.capture)
    with sut_logs_on_error():
        say = lambda line: print(f"pytest-tcpcopy: {line}", file=sys.stderr, flush=True)  # noqa: E731
        preparer = ImagePreparer(buildargs=dict(a.partition("=")[::2] for a in args.build_arg), pull=args.pull, log=say)
        images = [(name, _resolve(preparer, name, ref)) for name, ref in refs]  # every image, before anything starts
    with sut_logs_on_error(), DockerBackend(keep=args.keep, agent_image=args.agent_image) as backend:
        for name, image in images:
            spec = SutSpec(name, args.port, image=image, command=tuple(args.command_after_dashes),
                           environment=tuple(args.env), ready_timeout=args.ready_timeout, http_path=args.http_path,
                           capture_responses=settings.capture_responses,
                           cap_add=tuple(args.sut_cap_add), new_privileges=args.sut_new_privileges)  # fmt: skip
            backend.start_sut(spec)
        replays = backend.replay(args.capture, settings, progress=print_progress if args.progress else None)
    if args.json:
        docs = [{**r.result.to_json(), "sut": {"name": r.sut, "image": image},
                 **({"sut_logs": r.sut_logs} if r.sut_logs is not None else {}),
                 **({"sut_exit": {"status": r.sut_exit[0], "code": r.sut_exit[1]}} if r.sut_exit else {})}
                for r, (_, image) in zip(replays, images)]  # fmt: skip
        json.dump(docs, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return exit_status(replays)
    for replayed, (name, image) in zip(replays, images):
        print(f"--- {name} ({image}) ---")
        print_summary(replayed.result)
        if replayed.sut_logs is not None:
            print(f"--- {name} logs (tail) ---\n{replayed.sut_logs}")
    return exit_status(replays)


def _resolve(preparer: ImagePreparer, name: str, ref: str) -> str:
    try:
        return preparer.resolve(ref)
    except UsageError as exc:
        raise UsageError(f"{name} {exc}") from None
