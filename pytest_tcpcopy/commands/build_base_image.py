"""``pytest-tcpcopy build-base-image``: a Debian base image made with debootstrap, for machines
without a registry (root once); with ``--agent``, the agent image on top of it too.

Idempotent: an image already present is kept unless ``--force``. The Docker SDK is imported when
the command runs, never when the CLI starts (the agent image runs the CLI without the SDK).
"""

from __future__ import annotations

import argparse

from ..backends.docker import images


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "build-base-image",
        help="make a Debian bookworm base image with debootstrap (root; no registry needed)",
        description="Build a Debian bookworm image with python3, venv, iptables and iproute2 using "
        "debootstrap and `docker import`, so that the agent image can be built without pulling "
        "python:3.11-slim. Skips an image that is already present unless --force.",
    )
    parser.add_argument(
        "--tag", default=images.BASE_IMAGE, metavar="T", help=f"image tag (default {images.BASE_IMAGE})"
    )
    parser.add_argument("--mirror", metavar="URL", help="Debian mirror (default: the one apt uses here)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the image exists")
    parser.add_argument(
        "--agent",
        action="store_true",
        help="then build the agent image for the installed package FROM it, unless present",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..backends.docker.runs import docker_client

    client = docker_client()
    if images.image_exists(client, args.tag) and not args.force:
        print(f"{args.tag} is present; --force rebuilds it")
    else:
        image_id = images.build_base_image(client, args.tag, mirror=args.mirror)
        print(f"built {args.tag} ({image_id})")
    if args.agent:
        print(images.ensure_agent_image(client, base_image=args.tag))
    return 0
