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

COMMANDS = ("inspect",)


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
    args = build_parser().parse_args(argv)
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
