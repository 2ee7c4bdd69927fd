"""Optional compiled hot path (pytest_tcpcopy/speedups.py says what and how); metadata lives in
pyproject.toml. Without Cython or a C compiler the package installs as pure Python."""

from pathlib import Path
from runpy import run_path

from setuptools import setup

here = Path(__file__).resolve().parent
setup(ext_modules=run_path(str(here / "pytest_tcpcopy" / "speedups.py"))["extensions"](here))
