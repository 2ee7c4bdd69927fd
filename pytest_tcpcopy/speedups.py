"""Which of the package's modules run compiled, and the switch that ignores the compiled ones.

setup.py compiles the modules of ``COMPILED_MODULES`` (Cython, pure-Python mode: the ``.py`` is the
one source; a ``.pxd`` beside it, where there is one, adds C types) when Cython and a C compiler
are there. Either way the behaviour is the same; compiled, the copier's hot path costs less CPU.
The byte codecs live in ``pytest_tcpcopy.kernel``; the rest of the list is plain Python that runs
faster compiled.

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
COMPILED_MODULES = (
    "pytest_tcpcopy.kernel.codecs",
    "pytest_tcpcopy.kernel.packet",
    "pytest_tcpcopy.capture.pcap",
    "pytest_tcpcopy.capture.reader",
    "pytest_tcpcopy.channel.client",
    "pytest_tcpcopy.channel.protocol",
    "pytest_tcpcopy.flows.assembler",
    "pytest_tcpcopy.flows.session",
    "pytest_tcpcopy.flows.stream",
    "pytest_tcpcopy.intercept.queue",
    "pytest_tcpcopy.intercept.routing",
    "pytest_tcpcopy.intercept.server",
    "pytest_tcpcopy.replay.copier",
    "pytest_tcpcopy.replay.engine",
    "pytest_tcpcopy.tcp._state",
    "pytest_tcpcopy.tcp.addressing",
    "pytest_tcpcopy.tcp.config",
    "pytest_tcpcopy.tcp.cursor",
    "pytest_tcpcopy.tcp.events",
    "pytest_tcpcopy.tcp.gate",
    "pytest_tcpcopy.tcp.handshake",
    "pytest_tcpcopy.tcp.output",
    "pytest_tcpcopy.tcp.receiver",
    "pytest_tcpcopy.tcp.recovery",
    "pytest_tcpcopy.tcp.seq",
    "pytest_tcpcopy.tcp.translator",
)
_COMPILER_DIRECTIVES = {
    "language_level": 3,
    # Annotations are for readers and type checkers: an annotation does not change behaviour
    # (``x: float`` does not make a C double). The kernel's modules say otherwise in their first
    # line, to type their locals where they stand.
    "annotation_typing": False,
    # A None where a typed object is expected raises AttributeError, as it does in Python, where
    # compiled code would read the fields of a null object.
    "nonecheck": True,
}
_PACKAGE = "pytest_tcpcopy"  # not __name__'s: setup.py runs this file by path
_ROOT = Path(__file__).resolve().parent


def pure_python_requested() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def compilable_modules() -> list[str]:
    """Modules setup.py compiles when it can: ``COMPILED_MODULES``."""
    return list(COMPILED_MODULES)


def source_of(module: str, package: Path = _ROOT) -> Path:
    """The ``.py`` of one of the package's modules, under ``package`` (the package's folder)."""
    return package.joinpath(*module.split(".")[1:]).with_suffix(".py")


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
    sources = [str(source_of(module, project / _PACKAGE).relative_to(project)) for module in COMPILED_MODULES]
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
