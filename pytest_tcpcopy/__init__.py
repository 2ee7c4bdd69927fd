"""pytest-tcpcopy: replay captured production TCP traffic against a system under test.

The package is a library first (capture ingest, TCP flow assembly, a sans-IO session
translator, a raw-socket copier and an NFQUEUE intercept) with a CLI and a pytest plugin on top.
"""

__version__ = "0.1.0"

from .speedups import prefer_source, pure_python_requested

if pure_python_requested():
    prefer_source()
