"""``python -m pytest_tcpcopy.live mirror ...``: the mirror agent until the main CLI lists it."""

import argparse
import sys

from ..commands import mirror
from ..errors import TcpcopyError

parser = argparse.ArgumentParser(prog="python -m pytest_tcpcopy.live")
mirror.register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
args = parser.parse_args()
try:
    sys.exit(args.func(args))
except TcpcopyError as exc:
    print(f"pytest-tcpcopy mirror: error: {exc}".splitlines()[0], file=sys.stderr)
    sys.exit(2)
