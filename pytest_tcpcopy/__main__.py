"""``python -m pytest_tcpcopy`` is the ``pytest-tcpcopy`` command."""

import sys

from .cli import main

sys.exit(main())
