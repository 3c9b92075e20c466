"""The one table every `vigil ... list` prints: aligned columns under an upper-case header."""

from __future__ import annotations

from typing import Any

WIDE = 60
"""Cells longer than this are cut, so one row stays one line."""


def render_table(rows: list[dict[str, Any]], columns: list[str], *, wide: int | None = WIDE) -> str:
    """Aligned columns with a header; empty cells show `-`, cells longer than `wide` end in
    `…` (`wide=None` keeps every character, for a detail view such as an incident's events)."""
    if not rows:
        return "(none)"
    cells = [[cell(row.get(c), wide) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def cell(value: Any, wide: int | None = WIDE) -> str:
    """One cell's text: `-` for nothing, whitespace folded, at most `wide` characters."""
    text = "-" if value is None or value == "" else str(value)
    text = " ".join(text.split())
    return text if wide is None or len(text) <= wide else text[: wide - 1] + "…"
