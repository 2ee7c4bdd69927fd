"""``python -m pytest_tcpcopy.intercept ARGS``: the intercept command on its own, for agent images and
``ip netns exec`` where the ``pytest-tcpcopy`` script may not be on the PATH. Same options and exit
statuses as ``pytest-tcpcopy intercept``.
"""

from __future__ import annotations

import argparse
import sys

from ..commands import intercept
from ..errors import TcpcopyError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_tcpcopy.intercept")
    intercept.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["intercept", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except TcpcopyError as exc:
        print(f"intercept: error: {exc}".splitlines()[0], file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
