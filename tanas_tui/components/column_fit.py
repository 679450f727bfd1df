"""Which columns of a table fit a width: whole columns are left out by priority, so a narrow terminal never shows a
number cut at the table's edge (the DataTable would scroll and cut the last visible column)."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from rich.text import Text

PADDING = 2      # a DataTable cell's padding, both sides together
SCROLLBAR = 2    # room kept for the vertical scrollbar


def cell_width(value: Any) -> int:
    if isinstance(value, Text):
        return value.cell_len
    return Text(str(value)).cell_len


def column_widths(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> dict[str, int]:
    widths = {c: cell_width(c) for c in columns}
    for row in rows:
        for c, value in zip(columns, row):
            widths[c] = max(widths[c], cell_width(value))
    return {c: w + PADDING for c, w in widths.items()}


def fit_columns(columns: Sequence[str], rows: Iterable[Sequence[Any]], available: int,
                priority: Sequence[str]) -> tuple[str, ...]:
    """The columns to show, in `columns` order: by `priority`, each one that still fits in `available` cells (the
    first always). Columns not named in `priority` come last, in their order."""
    widths = column_widths(columns, rows)
    ranked = list(priority) + [c for c in columns if c not in priority]
    chosen: set[str] = set()
    used = 0
    for c in ranked:
        if c in widths and (not chosen or used + widths[c] <= available):
            chosen.add(c)
            used += widths[c]
    return tuple(c for c in columns if c in chosen)


def hidden_note(columns: Sequence[str], shown: Sequence[str]) -> str:
    hidden = [c for c in columns if c not in shown]
    return f"hidden at this width: {', '.join(hidden)}" if hidden else ""
