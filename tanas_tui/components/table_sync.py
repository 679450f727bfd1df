"""Update a DataTable by diff: changed cells via `update_cell`, new rows via `add_row`, gone rows via `remove_row`.

The table is never cleared and rebuilt, so the cursor, scroll position and sort order survive live updates.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from tanas_tui.safe_text import plain


def sync_rows(table: DataTable, columns: Sequence[str], rows: Mapping[str, Sequence[Any]],
              rendered: dict[str, tuple]) -> bool:
    """Make `table` show `rows` (row key -> cells in `columns` order). `rendered` is the caller's memory of what the
    table holds (updated in place). Returns True when rows were added or removed."""
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
        cells = tuple(plain(c) if isinstance(c, str) else c for c in cells)
        old = rendered.get(key)
        if old is None:
            table.add_row(*cells, key=key)
            structural = True
        elif old != cells:
            for col, new, before in zip(columns, cells, old):
                if new != before:
                    table.update_cell(key, col, new, update_width=False)
        rendered[key] = cells
    return structural
