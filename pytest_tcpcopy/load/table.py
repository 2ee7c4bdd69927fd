"""Plain-text tables for the load figures: the first column left-aligned, the others right-aligned."""

from __future__ import annotations


def format_table(header: list[str], rows: list[list[str]], indent: str = "", align: str = "") -> list[str]:
    """Columns padded to their widest cell; ``align`` has one ``l`` or ``r`` per column (default:
    the first left, the others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(w) if a == "l" else cell.rjust(w) for cell, w, a in zip(row, widths, align)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def ms(seconds: float | None) -> str:
    """Seconds as milliseconds with microsecond resolution (the copier's), or "-" for none."""
    return "-" if seconds is None else f"{seconds * 1000:.3f}"


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:.2f}%"
