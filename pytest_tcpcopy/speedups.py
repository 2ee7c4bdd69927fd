"""Which of the package's modules run compiled, and the switch that ignores the compiled ones.

setup.py compiles every module that has a ``.pxd`` beside its ``.py`` (Cython, pure-Python mode:
the ``.py`` is the one source, the ``.pxd`` adds C types), when Cython and a C compiler are
there. Either way the behaviour is the same; compiled, the copier's hot path costs less CPU.

PYTEST_TCPCOPY_PURE_PYTHON=1 in the environment makes the package import its ``.py`` sources
even where compiled modules are installed (to rule them out when chasing a bug, and to test the
pure-Python path); at build time the same variable skips compiling.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

ENV = "PYTEST_TCPCOPY_PURE_PYTHON"
_COMPILER_DIRECTIVES = {
    "language_level": 3,
    # The .py files carry annotations for readers and type checkers; C types come from the .pxd
    # files only, so an annotation never changes behaviour (`x: float` does not make a C double).
    "annotation_typing": False,
}
_PACKAGE = "pytest_tcpcopy"  # not __name__'s: setup.py runs this file by path
_ROOT = Path(__file__).resolve().parent


def pure_python_requested() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def compilable_modules() -> list[str]:
    """Modules setup.py compiles when it can: those with a ``.pxd`` beside their ``.py``."""
    return [_module_name(source) for source in _compilable_sources(_ROOT)]


def _compilable_sources(package: Path) -> list[Path]:
    return sorted(pxd.with_suffix(".py") for pxd in package.rglob("*.pxd") if pxd.with_suffix(".py").exists())


def compiled_modules() -> list[str]:
    """Compilable modules that are imported (or would be) from a compiled extension file."""
    compiled = []
    for name in compilable_modules():
        module = sys.modules.get(name)
        if module is not None:
            origin = getattr(module, "__file__", "") or ""
        else:
            spec = importlib.util.find_spec(name)
            origin = (spec.origin if spec else "") or ""
        if origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            compiled.append(name)
    return compiled


def extensions(project: Path) -> list:
    """setuptools extensions for the compilable modules of the package in ``project`` (the
    directory holding ``pytest_tcpcopy/``); none when compiling is off or Cython is missing.
    Used by setup.py and by the agent image's build."""
    if pure_python_requested():
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    sources = [str(source.relative_to(project)) for source in _compilable_sources(project / _PACKAGE)]
    built = cythonize(sources, compiler_directives=_COMPILER_DIRECTIVES, build_dir="build/cython", quiet=True,
                      nthreads=os.cpu_count() or 1)  # fmt: skip
    for extension in built:
        extension.optional = True  # a compiler error leaves that one module pure Python
    return built


class _SourceFirst:
    """A meta-path finder that loads this package's modules from their ``.py`` files."""

    @staticmethod
    def find_spec(fullname: str, path=None, target=None):
        if not fullname.startswith(_PACKAGE + "."):
            return None
        relative = Path(*fullname.split(".")[1:])
        source = _ROOT / relative.with_suffix(".py")
        if source.exists():
            return importlib.util.spec_from_file_location(fullname, source)
        return None  # a subpackage: its __init__.py is found the usual way


def prefer_source() -> None:
    """From now on, import this package's modules from source (idempotent)."""
    if not any(isinstance(f, _SourceFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFirst())


def _module_name(source: Path) -> str:
    return ".".join((_PACKAGE, *source.relative_to(_ROOT).with_suffix("").parts))
