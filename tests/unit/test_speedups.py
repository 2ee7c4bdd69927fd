"""The compiled hot path and the pure-Python one behave the same; CI runs the compiled one.

The rest of the suite runs whichever modules are installed (compiled in CI). Here the core's
unit tests run once more in a subprocess with PYTEST_TCPCOPY_PURE_PYTHON=1, so the ``.py``
sources stay tested as they run on machines without a compiler. The list of compiled modules is
held to the files: a ``.pxd`` beside a module that is not compiled would type nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import require

from pytest_tcpcopy import speedups

UNIT = Path(__file__).resolve().parent
PACKAGE = Path(speedups.__file__).resolve().parent
CORE_SUITES = ("tcp", "flows", "capture", "channel")


def test_the_copier_hot_path_is_compilable():
    modules = speedups.compilable_modules()
    for hot in ("kernel.codecs", "kernel.packet", "capture.reader", "flows.assembler", "tcp.translator",
                "replay.engine", "replay.copier", "intercept.server"):
        assert f"pytest_tcpcopy.{hot}" in modules


def test_the_compiled_modules_are_listed_once_and_exist():
    listed = speedups.COMPILED_MODULES
    assert len(set(listed)) == len(listed)
    missing = [name for name in listed if not speedups.source_of(name).is_file()]
    assert not missing, f"listed for compiling, but no such module: {missing}"


def test_every_pxd_types_a_listed_module():
    sources = {speedups.source_of(name) for name in speedups.COMPILED_MODULES}
    stray = [str(pxd.relative_to(PACKAGE)) for pxd in PACKAGE.rglob("*.pxd") if pxd.with_suffix(".py") not in sources]
    assert not stray, f"C types of modules that are not compiled (add them to COMPILED_MODULES or drop these): {stray}"


def test_only_the_kernel_types_locals():
    """C types of locals stand at the locals, in the kernel only: no ``cython.locals`` by name in a
    .pxd, no C-typed annotations outside pytest_tcpcopy/kernel."""
    kernel = PACKAGE / "kernel"
    by_name = [str(pxd.relative_to(PACKAGE)) for pxd in PACKAGE.rglob("*.pxd") if "cython.locals" in pxd.read_text()]
    typed = [str(py.relative_to(PACKAGE)) for py in PACKAGE.rglob("*.py")
             if kernel not in py.parents and re.search(r"^\s*import cython$", py.read_text(), re.M)]  # fmt: skip
    assert not by_name and not typed, (by_name, typed)


def test_every_compilable_module_is_compiled():
    """In CI a failed Cython build must not pass unnoticed as a slower copier."""
    missing = sorted(set(speedups.compilable_modules()) - set(speedups.compiled_modules()))
    require(not missing and not speedups.pure_python_requested(),
            f"compiled modules (pip install -e . with Cython and a C compiler); pure Python: {missing}")


def _pure_python_run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, speedups.ENV: "1"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          check=False, cwd=UNIT.parent)  # fmt: skip


def test_the_switch_loads_every_module_from_source():
    done = _pure_python_run(
        "import importlib, pytest_tcpcopy.speedups as s\n"
        "for name in s.compilable_modules():\n"
        "    assert importlib.import_module(name).__file__.endswith('.py'), name\n"
        "assert s.compiled_modules() == []\n"
        "print(len(s.compilable_modules()))"
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(speedups.compilable_modules())


def test_core_unit_tests_pass_in_pure_python():
    suites = [str(UNIT / name) for name in CORE_SUITES]
    done = _pure_python_run(
        "import sys, pytest, pytest_tcpcopy.speedups as s\n"
        "assert s.compiled_modules() == []\n"
        f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', *{suites!r}]))"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
