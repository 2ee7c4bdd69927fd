"""Long values shown where they differ: a window around the first differing character.

A value longer than ``SHORT`` characters is never cut to a prefix (a change after the cut would
print identical text on both sides). Two differing values are shown from ``CONTEXT`` characters
before their first difference to ``CONTEXT`` characters past its end (the common suffix is
found too), at most ``WIDTH`` characters of each, with the offsets of what is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

SHORT = 200  # values up to this many characters are shown whole
CONTEXT = 40  # characters shown around the differing part
WIDTH = 160  # characters of each side shown at most


@dataclass(frozen=True, slots=True)
class Window:
    """Where two texts first differ and the part of each around it: ``old[old_start:old_end]``."""

    at: int
    old_size: int
    new_size: int
    old_start: int
    old_end: int
    new_start: int
    new_end: int
    old: str
    new: str


def common_prefix(a: str, b: str) -> int:
    """The length of the common prefix (slices compared in C, halving the range)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def window(old: str, new: str, width: int = WIDTH, context: int = CONTEXT) -> Window:
    """The window of ``old`` and ``new`` around their first difference; see the module comment."""
    at = common_prefix(old, new)
    tail = common_prefix(old[at:][::-1], new[at:][::-1])
    start = max(0, at - context)
    old_end = min(len(old), len(old) - tail + context, start + width)
    new_end = min(len(new), len(new) - tail + context, start + width)
    return Window(at, len(old), len(new), start, old_end, start, new_end, old[start:old_end], new[start:new_end])


def shown(value: object) -> str:
    """A value as text (``repr``), whole when short, else its first ``SHORT`` characters and size."""
    text = repr(value)
    if len(text) <= SHORT:
        return text
    return f"{text[: SHORT - 1]}… ({len(text)} characters)"


def pair_lines(old: object, new: object) -> list[str]:
    """``old -> new`` as text: one line when both are short, else a header and a window each.

    Strings are windowed on their own characters (offsets count them), other values on their
    ``repr``.
    """
    old_text, new_text = repr(old), repr(new)
    if len(old_text) <= SHORT and len(new_text) <= SHORT:
        return [f"{old_text} -> {new_text}"]
    if isinstance(old, str) and isinstance(new, str):
        w, unit = window(old, new), "characters"
    else:
        w, unit = window(old_text, new_text), "characters of text"
    return [
        f"differs from character {w.at} (baseline {w.old_size} {unit}, candidate {w.new_size})",
        f"baseline  [{w.old_start}:{w.old_end}] {w.old!r}",
        f"candidate [{w.new_start}:{w.new_end}] {w.new!r}",
    ]
