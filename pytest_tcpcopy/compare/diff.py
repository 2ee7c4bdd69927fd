"""Differences between a baseline exchange and a candidate one: ``diff_exchange`` -> ``ExchangeDiff``.

Responses are normalised (``normalize``) and compared with deepdiff; each difference becomes a
``Change`` at a path of the normalised tree (``body.user.email``, ``headers.x-api-version``).
Exchange-level differences use the paths ``exchange`` (one side has no such exchange) and
``response`` (one side has no response, or a malformed one). Changes hold display values only,
already redacted: the real values of secrets are compared but never stored in a diff.

Fast path: two responses whose normalised forms are byte-identical (equal messages; or, for HTTP,
the same status, version, compared headers, content type and coding and body bytes) have no
difference, and neither their bodies are parsed nor deepdiff runs.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from .config import DiffConfig
from .exchange import Exchange, HttpResponse, RawMessage
from .normalize import header_names, normalize_response, same_normal_form
from .usage import IgnoreUsage
from .window import pair_lines, shown

_DEFAULT = DiffConfig()
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_SECTIONS = {
    "exchange": 0,
    "response": 1,
    "version": 2,
    "status": 3,
    "reason": 4,
    "interim": 5,
    "headers": 6,
    "body": 7,
    "trailers": 8,
}


class ChangeKind(enum.Enum):
    CHANGED = "changed"
    ADDED = "added"  # only in the candidate
    REMOVED = "removed"  # only in the baseline


_KIND_OF_REPORT = {
    "dictionary_item_added": ChangeKind.ADDED,
    "iterable_item_added": ChangeKind.ADDED,
    "set_item_added": ChangeKind.ADDED,
    "attribute_added": ChangeKind.ADDED,
    "dictionary_item_removed": ChangeKind.REMOVED,
    "iterable_item_removed": ChangeKind.REMOVED,
    "set_item_removed": ChangeKind.REMOVED,
    "attribute_removed": ChangeKind.REMOVED,
}


@dataclass(frozen=True, slots=True)
class Change:
    """One difference at ``path``; ``old``/``new`` are display values (None on the missing side)."""

    path: tuple
    kind: ChangeKind
    old: object = None
    new: object = None
    redacted: bool = False

    @property
    def where(self) -> str:
        """The path as text: ``body.items[2].id``, ``headers.set-cookie``, ``body['a b']``."""
        return _path_text(self.path, index=True)

    @property
    def template(self) -> str:
        """The path with list indices as ``[*]``: the place this kind of change has in any
        response of its endpoint (``body.items[*].id``)."""
        return _path_text(self.path, index=False)

    def render(self) -> str:
        """The change as text; a long changed value as a window around its first difference
        (several lines, the later ones indented)."""
        if self.redacted:
            what = {ChangeKind.CHANGED: "value differs", ChangeKind.ADDED: "added", ChangeKind.REMOVED: "removed"}[
                self.kind
            ]
            return f"{self.where}: {what} (redacted)"
        if self.kind is ChangeKind.ADDED:
            return f"{self.where}: added {shown(self.new)}"
        if self.kind is ChangeKind.REMOVED:
            return f"{self.where}: removed {shown(self.old)}"
        first, *rest = pair_lines(self.old, self.new)
        return "\n".join([f"{self.where}: {first}", *("  " + line for line in rest)])

    def to_json(self) -> dict:
        doc = {"path": self.where, "kind": self.kind.value}
        if self.redacted:
            doc["redacted"] = True
        else:
            if self.kind is not ChangeKind.ADDED:
                doc["old"] = self.old
            if self.kind is not ChangeKind.REMOVED:
                doc["new"] = self.new
        return doc


@dataclass(frozen=True, slots=True)
class ExchangeDiff:
    """The changes found for one exchange, in a stable order (status, headers, body)."""

    exchange_id: str
    changes: tuple[Change, ...]

    @property
    def paths(self) -> tuple[tuple, ...]:
        return tuple(c.path for c in self.changes)

    def render(self, limit: int = 50) -> str:
        """One line per change (the first ``limit`` of them), under a line naming the exchange."""
        lines = [f"{self.exchange_id}: {len(self.changes)} difference(s)"]
        lines += ["  " + line for change in self.changes[:limit] for line in change.render().splitlines()]
        if len(self.changes) > limit:
            lines.append(f"  ... and {len(self.changes) - limit} more")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"exchange": self.exchange_id, "changes": [c.to_json() for c in self.changes]}


def diff_exchange(
    baseline: Exchange | None,
    candidate: Exchange | None,
    config: DiffConfig = _DEFAULT,
    usage: IgnoreUsage | None = None,
) -> ExchangeDiff | None:
    """How ``candidate``'s response differs from ``baseline``'s, or None when it does not.

    Either side may be None (no such exchange on that side): that is a difference itself.
    ``usage`` records which ignore paths name a place of the responses.
    """
    if baseline is None and candidate is None:
        return None
    changes = _changes(baseline, candidate, config, usage)
    if not changes:
        return None
    changes.sort(key=_order)
    return ExchangeDiff((baseline or candidate).id, tuple(changes))


def _summary(exchange: Exchange) -> str:
    """A one-line description of an exchange's response, for exchange-level changes."""
    response = exchange.response
    if exchange.malformed:
        return exchange.malformed
    if isinstance(response, HttpResponse):
        return f"{response.status} {response.reason}".rstrip()
    if isinstance(response, RawMessage):
        return f"{len(response.data)} bytes"
    return "no response" if response is None else type(response).__name__


def _changes(
    baseline: Exchange | None, candidate: Exchange | None, config: DiffConfig, usage: IgnoreUsage | None
) -> list[Change]:
    if baseline is None:
        return [Change(("exchange",), ChangeKind.ADDED, new=f"{candidate.id}: {_summary(candidate)}")]
    if candidate is None:
        return [Change(("exchange",), ChangeKind.REMOVED, old=f"{baseline.id}: {_summary(baseline)}")]
    b_resp, c_resp = baseline.response, candidate.response
    if b_resp is None and c_resp is None:
        return []
    if b_resp is None or c_resp is None or bool(baseline.malformed) != bool(candidate.malformed):
        return [Change(("response",), ChangeKind.CHANGED, old=_summary(baseline), new=_summary(candidate))]
    if same_normal_form(b_resp, c_resp, config):
        if usage is not None and usage.take_sample():
            usage.observe((normalize_response(b_resp, config),), header_names(b_resp) + header_names(c_resp))
        return []
    key = _memo_key(b_resp, c_resp)
    memo = _DIFFS.get(key) if key is not None else None
    if memo is not None and memo[0] is config:
        return list(memo[1])
    old, new = normalize_response(b_resp, config), normalize_response(c_resp, config)
    if usage is not None:
        usage.observe((old, new), header_names(b_resp) + header_names(c_resp))
    changes = _tree_changes(old, new, config)
    if key is not None:
        if len(_DIFFS) >= _MAX_DIFFS:
            _DIFFS.clear()
        _DIFFS[key] = (config, tuple(changes))
    return changes


# The changes of response pairs already diffed, by what their normal forms are made of: one
# regression across many exchanges is diffed once (the pairs differ only in volatile headers).
_DIFFS: dict[tuple, tuple[DiffConfig, tuple[Change, ...]]] = {}
_MAX_DIFFS = 256
_MAX_MEMO_BODY = 64 * 1024


def _memo_key(a: object, b: object) -> tuple | None:
    """What two responses' normal forms depend on, config aside; None when not worth keeping."""
    if isinstance(a, RawMessage) and isinstance(b, RawMessage):
        if len(a.data) + len(b.data) > _MAX_MEMO_BODY:
            return None
        return ("raw", a.data, b.data)
    if not (isinstance(a, HttpResponse) and isinstance(b, HttpResponse)):
        return None
    if len(a.body) + len(b.body) > _MAX_MEMO_BODY:
        return None
    return ("http", _response_key(a), _response_key(b))


def _response_key(r: HttpResponse) -> tuple:
    """Every part of an HTTP response its normal form reads (headers whole: volatile ones too, so
    the key is never shared by responses that normalise apart; a few more misses, never a wrong hit)."""
    return (r.version, r.status, r.reason, tuple(i.status for i in r.interim), r.headers, r.trailers, r.body)


def _tree_changes(old: dict, new: dict, config: DiffConfig) -> list[Change]:
    hidden = (_secret_lines(old, config), _secret_lines(new, config))
    old, new, same = _prune(old, new)
    if same:
        return []
    options = {
        "view": "tree",
        "ignore_order": config.ignore_order,
        "ignore_numeric_type_changes": not config.strict_number_types,
        "threshold_to_diff_deeper": 0,
        "exclude_regex_paths": config.excluded_path_regexes() or None,
    }
    if config.float_tolerance is not None:
        options["math_epsilon"] = config.float_tolerance
    from deepdiff import DeepDiff  # here: importing it (numpy, pydantic) costs 0.2 s, and most runs never differ

    tree = DeepDiff(old, new, **options)
    value_patterns = [re.compile(p) for p in config.ignore_value_patterns]
    redaction = config.redaction
    changes = []
    for report, levels in tree.items():
        kind = _KIND_OF_REPORT.get(report, ChangeKind.CHANGED)
        for level in levels:
            path = tuple(level.path(output_format="list"))
            before = None if kind is ChangeKind.ADDED else level.t1
            after = None if kind is ChangeKind.REMOVED else level.t2
            if (
                kind is ChangeKind.ADDED
                and config.ignore_added_headers
                and len(path) == 2
                and path[0] in ("headers", "trailers")
            ):
                continue
            if kind is ChangeKind.CHANGED and _both_match(value_patterns, before, after):
                continue
            in_secret_lines = len(path) == 2 and (
                (before is not None and path[1] in hidden[0]) or (after is not None and path[1] in hidden[1])
            )
            secret = (
                in_secret_lines
                or redaction.secret_path(path)
                or any(v is not None and redaction.secret_value(path, v) for v in (before, after))
            )
            shown_before, shown_after = redaction.scrub(before), redaction.scrub(after)
            scrubbed = shown_before != before or shown_after != after
            if secret or (scrubbed and kind is ChangeKind.CHANGED and shown_before == shown_after):
                changes.append(Change(path, kind, None, None, redacted=True))  # only a secret part differs
            else:
                changes.append(Change(path, kind, shown_before, shown_after))
    return changes


def _secret_lines(tree: dict, config: DiffConfig) -> frozenset:
    """The lines of a text body holding part of a secret that spans lines (see ``Redaction.secret_lines``)."""
    body = tree.get("body")
    if not isinstance(body, list) or not all(isinstance(line, str) for line in body):
        return frozenset()
    return config.redaction.secret_lines(body)


def _prune(old: object, new: object) -> tuple[object, object, bool]:
    """Both trees without the parts that are equal (type for type), and whether all of it was.

    deepdiff visits every node, which costs seconds on a large JSON body; most of a body is
    usually equal. Equal dict entries are dropped from both sides (no other path moves); equal
    items of equal-length lists become None on both sides (indices stay); the rest is kept whole.
    """
    if type(old) is not type(new):
        return old, new, False
    if isinstance(old, dict):
        kept_old, kept_new = {}, {}
        for key, value in old.items():
            if key not in new:
                kept_old[key] = value
                continue
            a, b, same = _prune(value, new[key])
            if not same:
                kept_old[key], kept_new[key] = a, b
        for key, value in new.items():
            if key not in old:
                kept_new[key] = value
        return kept_old, kept_new, not kept_old and not kept_new
    if isinstance(old, list):
        if len(old) != len(new):
            return old, new, False
        kept_old, kept_new, all_same = [], [], True
        for a, b in zip(old, new):
            same = _prune(a, b)[2]
            kept_old.append(None if same else a)
            kept_new.append(None if same else b)
            all_same = all_same and same
        return kept_old, kept_new, all_same
    return old, new, old == new


def _both_match(patterns: list[re.Pattern], before: object, after: object) -> bool:
    if not (isinstance(before, str) and isinstance(after, str)):
        return False
    return any(p.fullmatch(before) and p.fullmatch(after) for p in patterns)


def _path_text(path: tuple, index: bool) -> str:
    out = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]" if index else "[*]")
        elif _PLAIN_KEY.fullmatch(str(part)):
            out.append(f".{part}" if out else str(part))
        else:
            out.append(f"[{str(part)!r}]")
    return "".join(out)


def _order(change: Change) -> tuple:
    head = change.path[0] if change.path else ""
    rest = tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in change.path[1:])
    return (_SECTIONS.get(head, len(_SECTIONS)), str(head), rest)
