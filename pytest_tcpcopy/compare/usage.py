"""Which ignore paths matched something in a run: a mistyped ``body.timestmap`` is reported, not
silently accepted.

An ignore path matches when the place it names exists in a compared response: in its normalised
tree, or, for ``headers.<name>`` and ``trailers.<name>``, among the response's own header names
(volatile headers are left out of the tree, yet a path naming one names a real place). A regex
path matches when it finds a deepdiff-form path of the tree. Observing walks the trees, so a path
is no longer looked for once it matched; the diff observes every exchange it compares
structurally, and of the exchanges its fast path settles (byte-identical after normalisation)
the first ``sample`` while some path is still unmatched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from .config import DiffConfig, Segment, Wildcard, parse_path

SAMPLE = 1000  # fast-path exchanges observed while a path is unmatched


class IgnoreUsage:
    """Collects, over a run, which of a ``DiffConfig``'s ignore paths matched a place."""

    def __init__(self, config: DiffConfig, sample: int = SAMPLE) -> None:
        self._paths = {p: parse_path(p) for p in config.ignore_paths}
        self._regexes = {p: re.compile(p) for p in config.ignore_regex_paths}
        self._order = (*config.ignore_paths, *config.ignore_regex_paths)
        self._matched: set[str] = set()
        self._sample = sample
        self._sampled = 0

    @property
    def hungry(self) -> bool:
        """True while some ignore path has matched nothing."""
        return len(self._matched) < len(self._order)

    def take_sample(self) -> bool:
        """True when an exchange the fast path settles should still be observed (and counts it)."""
        if not self.hungry or self._sampled >= self._sample:
            return False
        self._sampled += 1
        return True

    def observe(self, trees: Iterable[dict], header_names: Iterable[str] = ()) -> None:
        """Mark the paths that name a place of ``trees`` or a header in ``header_names``."""
        if not self.hungry:
            return
        trees = list(trees)
        names = {n.lower() for n in header_names}
        for path, segments in self._paths.items():
            if path in self._matched:
                continue
            if _names_header(segments, names) or any(_exists(tree, segments) for tree in trees):
                self._matched.add(path)
        pending = [p for p in self._regexes if p not in self._matched]
        if not pending:
            return
        for place in _places(trees, names):
            for path in pending:
                if path not in self._matched and self._regexes[path].search(place):
                    self._matched.add(path)
            if all(p in self._matched for p in pending):
                return

    def unused(self) -> tuple[str, ...]:
        """The ignore paths (then regex paths) that matched nothing, as the user wrote them."""
        return tuple(p for p in self._order if p not in self._matched)


def _names_header(segments: tuple[Segment, ...], names: set[str]) -> bool:
    if len(segments) != 2 or segments[0] not in ("headers", "trailers") or not names:
        return False
    name = segments[1]
    return name is Wildcard.KEY or (isinstance(name, str) and name.lower() in names)


def _exists(node: object, segments: tuple[Segment, ...]) -> bool:
    if not segments:
        return True
    head, rest = segments[0], segments[1:]
    if isinstance(node, dict):
        if head is Wildcard.KEY:
            return any(_exists(v, rest) for v in node.values())
        return isinstance(head, str) and head in node and _exists(node[head], rest)
    if isinstance(node, list):
        if head is Wildcard.INDEX:
            return any(_exists(v, rest) for v in node)
        return isinstance(head, int) and -len(node) <= head < len(node) and _exists(node[head], rest)
    return False


def _places(trees: list[dict], header_names: set[str]) -> Iterator[str]:
    """Every place of the trees in deepdiff's form (``root['body']['items'][0]``)."""
    for name in sorted(header_names):
        yield f"root['headers'][{name!r}]"
    for tree in trees:
        stack: list[tuple[str, object]] = [("root", tree)]
        while stack:
            path, node = stack.pop()
            yield path
            if isinstance(node, dict):
                stack.extend((f"{path}[{k!r}]", v) for k, v in node.items())
            elif isinstance(node, list):
                stack.extend((f"{path}[{i}]", v) for i, v in enumerate(node))
