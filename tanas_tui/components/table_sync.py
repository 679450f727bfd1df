"""Update a DataTable by diff: changed cells via `update_cell`, new rows via `add_row`, gone rows via `remove_row`.

The table is never cleared and rebuilt, so the cursor, scroll position and sort order survive live updates.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from tanas_tui.safe_text import plain

# Columns grow with their content up to this many cells; longer values end in "…" (the panels' detail lines show
# them whole).
MAX_CELL = 32


def capped(value: Any, limit: int = MAX_CELL) -> Any:
    if isinstance(value, Text):
        if value.cell_len <= limit:
            return value
        out = value.copy()
        out.truncate(limit - 1)
        out.append("…")
        return out
    if isinstance(value, str) and len(value) > limit:
        return value[:limit - 1] + "…"
    return value


def sync_rows(table: DataTable, columns: Sequence[str], rows: Mapping[str, Sequence[Any]],
              rendered: dict[str, tuple], cap: int = MAX_CELL) -> bool:
    """Make `table` show `rows` (row key -> cells in `columns` order). `rendered` is the caller's memory of what the
    table holds (updated in place); cells longer than `cap` end in "…". Returns True when rows were added or
    removed."""
    structural = False
    for key in [k for k in rendered if k not in rows]:
        try:
            table.remove_row(key)
        except (CellDoesNotExist, KeyError):
            pass
        del rendered[key]
        structural = True
    for key, cells in rows.items():
        # a str cell would be parsed as markup by the DataTable: user text ("[/x]") must show as it is
        cells = tuple(capped(plain(c) if isinstance(c, str) else c, cap) for c in cells)
        old = rendered.get(key)
        if old is None:
            table.add_row(*cells, key=key)
            structural = True
        elif old != cells:
            for col, new, before in zip(columns, cells, old):
                if new != before:
                    # update_width: a column widens when a live value outgrows it (never past MAX_CELL)
                    table.update_cell(key, col, new, update_width=True)
        rendered[key] = cells
    return structural
