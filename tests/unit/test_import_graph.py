"""Checks of the package's shape anyone can run: arrows point down.

Every ``import`` statement of every module counts, wherever it stands: at the top, inside a
function, or under ``if TYPE_CHECKING:``; a lazy import hides a cycle from the interpreter, not
from a reader. A package's ``__init__`` being imported implicitly by its submodules does not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest_tcpcopy

PACKAGE = Path(pytest_tcpcopy.__file__).resolve().parent
NAME = "pytest_tcpcopy"
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The package's modules that module ``name`` imports (by any import statement)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from a import b``: b may be a module of a, or a name in a
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # ``import a.b.c`` of a name c: the module a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_every_module():
    assert len(MODULES) > 80
    assert "pytest_tcpcopy.replay.results" in GRAPH["pytest_tcpcopy.replay.contract"]
    assert "pytest_tcpcopy.model" in GRAPH["pytest_tcpcopy.load.figures"]


def test_no_import_cycles_not_even_under_type_checking():
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_command_line_imports_the_commands():
    allowed = {f"{NAME}.cli"} | {name for name in MODULES if name.startswith(f"{NAME}.commands")}
    allowed |= {name for name, path in MODULES.items() if path.name == "__main__.py"}  # entry points
    offenders = {name: sorted(t for t in targets if t.startswith(f"{NAME}.commands"))
                 for name, targets in GRAPH.items() if name not in allowed}  # fmt: skip
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_host_contract_does_not_load_the_copier_engine():
    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in GRAPH[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    heavy = {f"{NAME}.replay.engine", f"{NAME}.replay.copier", f"{NAME}.tcp.translator"}
    for light in ("replay.contract", "backends.base", "runner", "plugin", "model"):
        assert reach(f"{NAME}.{light}") & heavy == set(), light


def test_only_the_plugin_imports_pytest():
    """The plugin's glue: ``plugin`` and its parts, ``plugin_*``."""
    importers = set()
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])  # fmt: skip
            if any(n == "pytest" or n.startswith(("pytest.", "_pytest")) for n in names):
                importers.add(name)
    assert importers == {f"{NAME}.plugin", f"{NAME}.plugin_items", f"{NAME}.plugin_state"}


# The one module over the limit today; the translator's split into collaborators removes it.
OVER_THE_LIMIT = {f"{NAME}.tcp.translator"}


def test_no_module_is_over_the_size_limit():
    over = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert set(over) <= OVER_THE_LIMIT, over
