"""The ``pytest-tcpcopy`` command: one subcommand per module in ``pytest_tcpcopy.commands``.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. Errors of ours become a one-line message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import TcpcopyError

COMMANDS = ("inspect", "intercept", "replay", "netns_run", "mirror", "record", "build_base_image", "docker_run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-tcpcopy",
        description="Replay captured production TCP traffic against a system under test.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after the first "--" is a command to run (netns-run's SUT), never our options.
    rest: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, rest = argv[:at], argv[at + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    if rest and not hasattr(args, "command_after_dashes"):
        parser.error(f"{args.command} takes no command after --")
    args.command_after_dashes = rest
    try:
        return int(args.func(args) or 0)
    except TcpcopyError as exc:
        print(f"pytest-tcpcopy {args.command}: error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pytest-tcpcopy {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
