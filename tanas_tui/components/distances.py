"""Distances panel: the task-distance matrix as a heat-shaded table (source rows, target columns), filled live.

The colour scale spans the off-diagonal computed values; every cell also carries a bar glyph for its band, so the
table reads without colour. A chosen target column (enter / n) marks its k nearest rows; `f` moves that column
first and pins it, `o` sorts the rows by their distance to it."""
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

from tanas_tui.components.heat import Scale, glyph, heat_style
from tanas_tui.components.line import Line
from tanas_tui.components.similarity_summary import SimilaritySummary
from tanas_tui.model import DISTANCES, METHODS, TASKS, Matrix, UiModel
from tanas_tui.units import distance

LABEL_WIDTH = 7
CELL_WIDTH = 9


def short(name: str, width: int = LABEL_WIDTH) -> str:
    """Names of one family share a prefix ("sketch-circle", "sketch-square"): keep its first letters and the end."""
    if len(name) <= width:
        return name
    return name[:2] + "…" + name[-(width - 3):]


class DistancesPanel(Vertical):
    BINDINGS = [
        Binding("m", "switch_method", "Method"),
        Binding("n", "nearest", "Nearest"),
        Binding("f", "pin_target", "First"),
        Binding("o", "sort_by_target", "Sort"),
    ]

    def __init__(self, state: UiModel, k: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = state
        self.k = k
        self.method = METHODS[0]
        self.pin = False                    # chosen target column first (and fixed while scrolling)
        self.sort = False                   # rows ordered by their distance to the chosen target
        self._cols: list[str] = []          # target task ids, in column order
        self._rows: list[str] = []          # source task ids, in row order
        self._rendered: dict[str, list] = {}  # row (source id) -> cell renderables as shown
        self._target: str | None = None     # chosen target column: its k nearest rows are marked
        self._cursor: tuple[str, str] | None = None
        self._widths = (10, LABEL_WIDTH, CELL_WIDTH)   # row label, column label, column width: see _fit_names

    def compose(self) -> ComposeResult:
        yield Line("", id="dist-header")
        yield Line("", id="dist-legend")
        yield DataTable(id="distance-table", cursor_type="cell", zebra_stripes=False)
        yield Line("", id="dist-detail")
        yield SimilaritySummary(id="dist-quality")

    def on_mount(self) -> None:
        table = self.query_one("#distance-table", DataTable)
        table.show_row_labels = True

    def on_resize(self) -> None:
        self._refresh_keep_cursor()

    def _fit_names(self, ids: list[str]) -> tuple[int, int, int]:
        """Task names whole where the width allows: (row label width, column label width, column width). Only a
        matrix too wide for whole names shortens them (their family prefix and their end)."""
        width = self.query_one("#distance-table", DataTable).size.width or self.size.width
        longest = max((len(self.state.task_name(t)) for t in ids), default=0)
        label = min(longest, max(10, width // 4))
        column = max(CELL_WIDTH, longest)
        if width and label + 2 + len(ids) * (column + 2) <= width - 2:
            return label, longest, column
        return label, LABEL_WIDTH, CELL_WIDTH

    @property
    def matrix(self) -> Matrix:
        return self.state.matrices.get(self.method) or Matrix(self.method)

    def _fmt(self, v: float) -> str:
        return distance(v, self.method)

    def _cell(self, v: float, scale: Scale, near: bool, diagonal: bool) -> Text:
        if diagonal:
            return Text("—".center(CELL_WIDTH), style="dim")
        if math.isnan(v):
            return Text("·".center(CELL_WIDTH), style="dim")
        f = scale.fraction(v)
        text = Text(("▶" if near else " ") + self._fmt(v).rjust(CELL_WIDTH - 3) + " " + glyph(f),
                    style=heat_style(f))
        if near:
            text.stylize("bold underline")
        return text

    def scale(self) -> Scale:
        m = self.matrix
        n = len(m.ids)
        off = m.value[~np.eye(n, dtype=bool)] if n else np.zeros(0)
        return Scale(float(v) for v in off)

    def _order(self, ids: list[str]) -> tuple[list[str], list[str]]:
        """(row order, column order) for the current target / pin / sort choices."""
        m = self.matrix
        cols, rows = list(ids), list(ids)
        target = self._target if self._target in ids else None
        if target and self.pin:
            cols.remove(target)
            cols.insert(0, target)
        if target and self.sort:
            j = m.index(target)

            def key(src: str) -> tuple:
                v = float(m.value[m.index(src), j])
                return (src == target, math.isnan(v), 0.0 if math.isnan(v) else v)

            rows.sort(key=key)
        return rows, cols

    # -- refresh --------------------------------------------------------------------------------------------------
    def refresh_state(self, topics: set[str]) -> None:
        if DISTANCES not in topics and TASKS not in topics:
            return
        table = self.query_one("#distance-table", DataTable)
        m = self.matrix
        ids = list(m.ids)
        rows, cols = self._order(ids)
        widths = self._fit_names(ids)
        if rows[:len(self._rows)] != self._rows or cols[:len(self._cols)] != self._cols or \
                len(rows) < len(self._rows) or widths != self._widths:
            # an order change (or a removed task): rebuild once, the cursor follows its cell
            table.clear(columns=True)
            self._cols, self._rows, self._rendered = [], [], {}
            self._widths = widths
        label_w, col_label_w, col_w = widths
        for new in cols[len(self._cols):]:
            table.add_column(Text(short(self.state.task_name(new), col_label_w), style="bold"), key=new, width=col_w)
            self._cols.append(new)
            for row in self._rendered.values():
                row.append(None)
        table.fixed_columns = 1 if (self.pin and self._target in ids) else 0
        scale = self.scale()
        near = {s for s, _ in m.nearest(self._target, self.k)} if self._target in ids else set()
        for src in rows:
            i = m.index(src)
            cells = [self._cell(float(m.value[i, m.index(t)]), scale, t == self._target and src in near, src == t)
                     for t in cols]
            old = self._rendered.get(src)
            if old is None:
                table.add_row(*cells, key=src, label=Text(short(self.state.task_name(src), label_w), style="bold"))
                self._rows.append(src)
            else:
                for t, new, before in zip(cols, cells, old):
                    if new != before:
                        table.update_cell(src, t, new)
            self._rendered[src] = cells
        self._update_header(m)
        self.query_one("#dist-legend", Line).set(scale.legend(self._fmt))
        self._update_detail()
        self.query_one(SimilaritySummary).show(self.state, self.method)

    def _update_header(self, m: Matrix) -> None:
        n = len(m.ids)
        header = Text()
        for method in METHODS:
            header.append(f" {method} ", style="reverse bold" if method == self.method else "dim")
        done = m.computed() - n if n else 0
        header.append(f"  d(row → column) {max(0, done)}/{n * (n - 1)} computed", style="dim")
        if self._target in m.ids:
            header.append(f"  ▶ {self.k} nearest to {self.state.task_name(self._target)}", style="bold")
            if self.pin:
                header.append(" · first", style="dim")
            if self.sort:
                header.append(" · sorted", style="dim")
        self.query_one("#dist-header", Line).set(header)

    def _update_detail(self) -> None:
        detail = self.query_one("#dist-detail", Line)
        m = self.matrix
        if not m.ids:
            detail.set(Text(f"No {self.method} distances in the store yet.", style="dim"))
            return
        if self._cursor is None or self._cursor[0] not in m.ids or self._cursor[1] not in m.ids:
            detail.set(Text("enter/n: a target's nearest · f: target column first · o: sort by it · m: method",
                            style="dim"))
            return
        s, t = self._cursor
        i, j = m.index(s), m.index(t)
        v, sd = float(m.value[i, j]), float(m.std[i, j])
        source, target = self.state.task_name(s), self.state.task_name(t)
        text = Text()
        text.append(f"d({source} → {target})", style="bold")
        if i == j:
            text.append(" = 0 (a task to itself)", style="dim")
        elif math.isnan(v):
            text.append(" = not computed yet", style="dim")
        else:
            text.append(f" = {self._fmt(v)}")
            if not math.isnan(sd) and sd > 0:
                text.append(f" ± {self._fmt(sd)}")
            column = [float(m.value[r, j]) for r in range(len(m.ids)) if r != j]
            rank = 1 + sum(1 for x in column if not math.isnan(x) and x < v)
            text.append(f"  rank {rank}/{sum(1 for x in column if not math.isnan(x))} for {target}", style="dim")
            back = float(m.value[j, i])
            if not math.isnan(back):
                text.append(f"   reverse d({target} → {source}) = {self._fmt(back)}", style="dim")
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
        self._refresh_keep_cursor()

    def _refresh_keep_cursor(self) -> None:
        cursor = self._cursor
        self.refresh_state({DISTANCES})
        if cursor and cursor[0] in self._rows and cursor[1] in self._cols:
            table = self.query_one("#distance-table", DataTable)
            table.cursor_coordinate = (self._rows.index(cursor[0]), self._cols.index(cursor[1]))

    def action_nearest(self) -> None:
        if self._cursor:
            self.choose_target(self._cursor[1])

    def _need_target(self) -> bool:
        if self._target is None and self._cursor:
            self._target = self._cursor[1]
        if self._target is None:
            self.app.notify("choose a target column first (enter or n on a cell)", severity="warning")
            return False
        return True

    def action_pin_target(self) -> None:
        if self._need_target():
            self.pin = not self.pin
            self._refresh_keep_cursor()

    def action_sort_by_target(self) -> None:
        if self._need_target():
            self.sort = not self.sort
            self._refresh_keep_cursor()

    def action_switch_method(self) -> None:
        self.method = METHODS[(METHODS.index(self.method) + 1) % len(METHODS)]
        table = self.query_one("#distance-table", DataTable)
        table.clear(columns=True)
        self._cols, self._rows, self._rendered, self._cursor = [], [], {}, None
        self.refresh_state({DISTANCES})
