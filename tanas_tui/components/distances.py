"""Distances panel: the task-distance matrix as a heat-shaded table (source rows, target columns), filled live."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from tanas_tui.components.line import Line
from tanas_tui.components.plots import heat_style
from tanas_tui.components.similarity_summary import SimilaritySummary
from tanas_tui.ui_state import DISTANCES, METHODS, TASKS, Matrix, UiState

LABEL_WIDTH = 7


def short(name: str, width: int = LABEL_WIDTH) -> str:
    """Names of one family share a prefix ("sketch-circle", "sketch-square"): keep its first letters and the end."""
    if len(name) <= width:
        return name
    return name[:2] + "…" + name[-(width - 3):]


class DistancesPanel(Vertical):
    BINDINGS = [
        Binding("m", "switch_method", "Method"),
        Binding("n", "nearest", "k nearest"),
    ]

    def __init__(self, state: UiState, k: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = state
        self.k = k
        self.method = METHODS[0]
        self._cols: list[str] = []          # target task ids, in column order
        self._rendered: dict[str, list] = {}  # row (source id) -> cell renderables as shown
        self._target: str | None = None     # chosen target column: its k nearest rows are marked
        self._cursor: tuple[str, str] | None = None

    def compose(self) -> ComposeResult:
        yield Line("", id="dist-header")
        yield DataTable(id="distance-table", cursor_type="cell", zebra_stripes=False)
        yield Line("", id="dist-detail")
        yield SimilaritySummary(id="dist-quality")

    def on_mount(self) -> None:
        table = self.query_one("#distance-table", DataTable)
        table.show_row_labels = True

    @property
    def matrix(self) -> Matrix:
        return self.state.matrices.get(self.method) or Matrix(self.method)

    def _fmt(self, v: float) -> str:
        return f"{v:.1f}" if self.method == "transfer" else f"{v:.3f}"

    def _cell(self, v: float, scale: float, near: bool) -> Text:
        if math.isnan(v):
            return Text("·".center(LABEL_WIDTH), style="grey42")
        style = heat_style(v / scale if scale > 0 else 0.0)
        text = Text(("▶" if near else " ") + self._fmt(v).rjust(LABEL_WIDTH - 1), style=style)
        if near:
            text.stylize("bold underline")
        return text

    # -- refresh --------------------------------------------------------------------------------------------------
    def refresh_state(self, topics: set[str]) -> None:
        if DISTANCES not in topics and TASKS not in topics:
            return
        table = self.query_one("#distance-table", DataTable)
        m = self.matrix
        ids = [i for i in m.ids]
        self._sync_columns(table, ids)
        off = m.value[~np.eye(len(ids), dtype=bool)] if len(ids) else np.zeros(0)
        finite = off[~np.isnan(off)]
        scale = float(finite.max()) if finite.size else 1.0
        near = {s for s, _ in m.nearest(self._target, self.k)} if self._target else set()
        tcol = m.ids.index(self._target) if self._target in m.ids else -1
        for i, src in enumerate(ids):
            cells = [self._cell(float(m.value[i, j]), scale, j == tcol and src in near) for j in range(len(ids))]
            old = self._rendered.get(src)
            if old is None:
                table.add_row(*cells, key=src, label=Text(short(self.state.task_name(src), 10), style="bold"))
            else:
                for j, (new, before) in enumerate(zip(cells, old)):
                    if new != before:
                        table.update_cell(src, ids[j], new)
            self._rendered[src] = cells
        for src in [s for s in self._rendered if s not in ids]:
            table.remove_row(src)
            del self._rendered[src]
        self._update_header(m)
        self._update_detail()
        self.query_one(SimilaritySummary).show(self.state, self.method)

    def _sync_columns(self, table: DataTable, ids: list[str]) -> None:
        for gone in [c for c in self._cols if c not in ids]:
            idx = self._cols.index(gone)
            try:
                table.remove_column(gone)
            except (CellDoesNotExist, KeyError):
                pass
            self._cols.pop(idx)
            for row in self._rendered.values():
                if idx < len(row):
                    row.pop(idx)
        for new in [c for c in ids if c not in self._cols]:
            table.add_column(Text(short(self.state.task_name(new)), style="bold"), key=new, width=LABEL_WIDTH)
            self._cols.append(new)
            for row in self._rendered.values():
                row.append(None)
        if self._cols != ids:
            # order differs (should not happen: the store appends); rebuild once
            table.clear(columns=True)
            self._cols, self._rendered = [], {}
            self._sync_columns(table, ids)

    def _update_header(self, m: Matrix) -> None:
        n = len(m.ids)
        header = Text()
        for method in METHODS:
            header.append(f" {method} ", style="reverse bold" if method == self.method else "dim")
        done = m.computed() - n if n else 0
        header.append(f"  d(source row → target column)  {max(0, done)}/{n * (n - 1)} computed", style="dim")
        if self._target:
            header.append(f"  ▶ = {self.k} nearest to {self.state.task_name(self._target)}", style="bold")
        self.query_one("#dist-header", Line).set(header)

    def _update_detail(self) -> None:
        detail = self.query_one("#dist-detail", Line)
        m = self.matrix
        if not m.ids:
            detail.set(Text(f"No {self.method} distances in the store yet.", style="dim"))
            return
        if self._cursor is None or self._cursor[0] not in m.ids or self._cursor[1] not in m.ids:
            detail.set(Text("Move the cursor over a cell; enter or n marks a target's nearest tasks; m switches "
                               "method.", style="dim"))
            return
        s, t = self._cursor
        i, j = m.index(s), m.index(t)
        v, sd = float(m.value[i, j]), float(m.std[i, j])
        text = Text()
        text.append(f"d({self.state.task_name(s)} → {self.state.task_name(t)})", style="bold")
        if math.isnan(v):
            text.append(" = not computed yet", style="dim")
        else:
            text.append(f" = {self._fmt(v)}")
            if not math.isnan(sd) and sd > 0:
                text.append(f" ± {self._fmt(sd)}")
            back = float(m.value[j, i])
            if i != j and not math.isnan(back):
                text.append(f"   reverse d({self.state.task_name(t)} → {self.state.task_name(s)}) = {self._fmt(back)}",
                            style="dim")
        detail.set(text)

    # -- events ---------------------------------------------------------------------------------------------------
    @on(DataTable.CellHighlighted, "#distance-table")
    def _highlighted(self, event: DataTable.CellHighlighted) -> None:
        key = event.cell_key
        if key.row_key.value is not None and key.column_key.value is not None:
            self._cursor = (str(key.row_key.value), str(key.column_key.value))
            self._update_detail()

    @on(DataTable.CellSelected, "#distance-table")
    def _selected(self, event: DataTable.CellSelected) -> None:
        self.choose_target(str(event.cell_key.column_key.value))

    @on(DataTable.HeaderSelected, "#distance-table")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        self.choose_target(str(event.column_key.value))

    def choose_target(self, target: str | None) -> None:
        self._target = None if target == self._target else target
        self.refresh_state({DISTANCES})

    def action_nearest(self) -> None:
        if self._cursor:
            self.choose_target(self._cursor[1])

    def action_switch_method(self) -> None:
        self.method = METHODS[(METHODS.index(self.method) + 1) % len(METHODS)]
        table = self.query_one("#distance-table", DataTable)
        table.clear(columns=True)
        self._cols, self._rendered, self._cursor = [], {}, None
        self.refresh_state({DISTANCES})
