"""The compare view (`c`): a full-screen view of the comparison's arms side by side, read from the store.

One row per arm: test error mean ± std with its 95 % t-interval (and the bootstrap interval over test samples ×
seeds), its paired difference from FUSE in the task-aware space with the p-value and verdict, params, cost as a
duration and device-hours, the budget it got. The arm column is pinned while the others scroll; every column sorts
(click its header, or `o` for the next one, `O` to reverse); the highlighted arm's verdict is spelled out on a line
below the table that never scrolls away. Below: the arm's runs (one per seed; enter opens one in the FUSE tab, space
marks two for `v`, the side-by-side view) and the per-arm error plot (one point per seed, with the interval).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from engine.results.stats import NOT_DISTINGUISHABLE
from engine.results.table import budget_text, duration_text, format_interval, format_number, format_p
from tanas_tui.components.column_fit import SCROLLBAR, fit_columns, hidden_note
from tanas_tui.components.error_strip import error_strips

ARM_COLUMNS = ("arm", "verdict", "test error %", "Δ vs ref (pp)", "p", "95 % CI", "boot CI", "n", "params M",
               "cost", "device-h", "budget")
# the columns a narrow terminal keeps first (`w` shows them all, scrolling with the arm pinned)
PRIORITY = ("arm", "verdict", "test error %", "Δ vs ref (pp)", "p", "95 % CI", "n", "cost", "params M", "device-h",
            "budget", "boot CI")
RUN_COLUMNS = ("✓", "run", "seed", "test error %", "params M", "cost")
RUN_PRIORITY = ("run", "test error %", "✓", "seed", "cost", "params M")
VERDICT_STYLE = {NOT_DISTINGUISHABLE: "bold yellow", "distinguishable": "bold green"}
# what each column sorts by: a field of the arm's row (numbers by value, missing ones last)
SORT_FIELD = {"arm": "arm", "verdict": "verdict", "test error %": "test_error_mean", "Δ vs ref (pp)": "diff_vs_reference",
              "p": "p_value", "95 % CI": "test_error_t_lo", "boot CI": "test_error_boot_lo", "n": "repeats", "params M": "params_m_mean",
              "cost": "device_seconds", "device-h": "cost_device_hours_mean", "budget": "budget_epochs"}


def read_comparison(store_path: Path | str, target: str | None = None) -> tuple[dict[str, Any], dict[str, dict]]:
    """(the table as plain data, {run id: its result} for the table's runs), from a read-only store."""
    from engine.results.collect import result_table
    from store import Store

    with Store.open(store_path, mode="r") as store:
        table = result_table(store, target).to_dict()
        wanted = {rid for row in table["rows"] for rid in row.get("run_ids", [])}
        runs = {s["id"]: {"seed": s.get("seed"), **(s.get("result") or {})}
                for s in store.list_searches() if s["id"] in wanted}
    return table, runs


def _diff(row: dict[str, Any]) -> str:
    if row.get("diff_vs_reference") is None:
        return "—"
    return (f"{format_number(row['diff_vs_reference'], 2, signed=True)} "
            f"{format_interval(row.get('diff_lo'), row.get('diff_hi'), signed=True)}")


def arm_cells(row: dict[str, Any]) -> tuple:
    """The row's cells in ARM_COLUMNS order."""
    verdict = row.get("verdict") or "—"
    boot = "—" if row.get("test_error_boot_lo") is None else format_interval(row["test_error_boot_lo"],
                                                                            row["test_error_boot_hi"])
    return (
        Text(str(row["arm"]), style="bold"), Text(verdict, style=VERDICT_STYLE.get(verdict, "dim")),
        f"{format_number(row.get('test_error_mean'), 2)} ± {format_number(row.get('test_error_std'), 2)}",
        _diff(row), format_p(row.get("p_value")), format_interval(row.get("test_error_t_lo"), row.get("test_error_t_hi")),
        boot, str(row.get("repeats", "")),
        f"{format_number(row.get('params_m_mean'), 3)} ± {format_number(row.get('params_m_std'), 3)}",
        duration_text(row.get("device_seconds")), format_number(row.get("cost_device_hours_mean"), 4),
        budget_text(row),
    )


def verdict_line(row: dict[str, Any], reference: str) -> Text:
    """The highlighted arm's result in one sentence: what the table says across its columns."""
    verdict = row.get("verdict") or "—"
    t = Text()
    t.append(f"▶ {row['arm']}", style="bold")
    t.append(f"  {format_number(row.get('test_error_mean'), 2)} ± {format_number(row.get('test_error_std'), 2)} % "
             f"over {row.get('repeats', '?')} seeds  ")
    if verdict == "reference":
        t.append("the reference", style="bold")
        t.append(" (the other arms are tested against it)", style="dim")
        return t
    t.append(verdict, style=VERDICT_STYLE.get(verdict, "dim"))
    t.append(f" from {reference}: Δ {_diff(row)} pp, p {format_p(row.get('p_value'))}", style="")
    return t


def _sort_key(row: dict[str, Any], field: str) -> tuple:
    value = row.get(field)
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return (0, float(value), "")
    if value in (None, "", "—"):
        return (2, 0.0, "")
    return (1, 0.0, str(value).lower())


class CompareScreen(Screen[str | None]):
    """Dismissed with the run id to open, or None."""

    # the footer holds these and the app's ? and j at 60 columns: r and O are in the help screen
    BINDINGS = [Binding("escape,q,c", "close", "Close"), Binding("r", "reload", "Reload", show=False),
                Binding("o", "sort", "Sort"), Binding("O", "reverse", "Reverse", show=False),
                Binding("w", "all_columns", "Cols"), Binding("space", "mark", "Mark", show=False),
                Binding("v", "pair", "Pair")]
    DEFAULT_CSS = """
    CompareScreen { layout: vertical; }
    CompareScreen #compare-title { height: auto; padding: 0 1; background: $panel; }
    CompareScreen #compare-arms { height: auto; max-height: 45%; }
    CompareScreen #compare-hidden { height: auto; padding: 0 1; }
    CompareScreen #compare-verdict { height: auto; padding: 0 1; background: $boost; }
    CompareScreen #compare-lower { height: 1fr; }
    CompareScreen #compare-runs { height: auto; max-height: 12; }
    CompareScreen #compare-plot, CompareScreen #compare-notes { height: auto; padding: 0 1; }
    """

    def __init__(self, store_path: Path | str, target: str | None = None) -> None:
        super().__init__()
        self.store_path, self.target = Path(store_path), target
        self.table: dict[str, Any] | None = None
        self.runs: dict[str, dict] = {}
        self.order: list[int] = []               # row indices of table["rows"] in the shown order
        self.sort: tuple[str, bool] | None = None
        self.marked: list[str] = []              # runs marked for the side-by-side view (at most two)
        self._arm: int | None = None
        self.all_columns = False                 # w: every column, scrolling with the arm pinned
        self.shown: tuple[str, ...] = ()         # the arm columns on screen

    def compose(self) -> ComposeResult:
        yield Static("reading the store…", id="compare-title")
        yield DataTable(id="compare-arms", cursor_type="row", zebra_stripes=True)
        yield Static("", id="compare-hidden")
        yield Static("", id="compare-verdict")
        with VerticalScroll(id="compare-lower"):
            yield DataTable(id="compare-runs", cursor_type="row")
            yield Static("", id="compare-plot")
            yield Static("", id="compare-notes")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#compare-arms", DataTable).fixed_columns = 1
        self.action_reload()

    def action_reload(self) -> None:
        self._read()

    @work(thread=True, exclusive=True, group="compare")
    def _read(self) -> None:
        try:
            table, runs = read_comparison(self.store_path, self.target)
        except Exception as exc:  # noqa: BLE001 - no runs yet, several targets, a locked store: shown, not raised
            self.app.call_from_thread(self._failed, exc)
            return
        self.app.call_from_thread(self._show, table, runs)

    def _failed(self, exc: Exception) -> None:
        self.query_one("#compare-title", Static).update(Text(f"no comparison: {exc}", style="bold red"))

    def _show(self, table: dict[str, Any], runs: dict[str, dict]) -> None:
        self.table, self.runs = table, runs
        prov = table.get("provenance") or {}
        self.query_one("#compare-title", Static).update(Text.assemble(
            (f"Result: {prov.get('target', '?')}", "bold"),
            f"   reference {table['reference']} · α = {table['alpha']} · seeds {prov.get('seeds')} · "
            f"config {prov.get('config_hash')}"))
        self.query_one("#compare-notes", Static).update(Text("\n".join(table.get("notes") or []), style="dim"))
        self.order = list(range(len(table["rows"])))
        self._fill_arms()
        self._draw_plot()
        self.query_one("#compare-arms", DataTable).focus()

    def _fill_arms(self) -> None:
        """The arm rows in the current order; the cursor stays on the arm it was on."""
        assert self.table is not None
        rows = self.table["rows"]
        if self.sort is not None:
            column, reverse = self.sort
            field = SORT_FIELD[column]
            ranked = sorted(self.order, key=lambda i: _sort_key(rows[i], field))
            missing = [i for i in ranked if _sort_key(rows[i], field)[0] == 2]
            ranked = [i for i in ranked if i not in missing]
            self.order = (ranked[::-1] if reverse else ranked) + missing
        arms = self.query_one("#compare-arms", DataTable)
        keep = self._arm
        cells = {i: arm_cells(rows[i]) for i in self.order}
        labels = [c + ("" if self.sort is None or self.sort[0] != c else (" ▼" if self.sort[1] else " ▲"))
                  for c in ARM_COLUMNS]
        width = (arms.size.width or self.size.width) - SCROLLBAR
        self.shown = ARM_COLUMNS if self.all_columns else fit_columns(
            ARM_COLUMNS, [labels, *cells.values()], width, PRIORITY)
        arms.clear(columns=True)
        for c, label in zip(ARM_COLUMNS, labels):
            if c in self.shown:
                arms.add_column(Text(label, style="bold" if label != c else ""), key=c)
        for i in self.order:
            arms.add_row(*(cell for c, cell in zip(ARM_COLUMNS, cells[i]) if c in self.shown), key=str(i))
        note = hidden_note(ARM_COLUMNS, self.shown)
        self.query_one("#compare-hidden", Static).update(Text(note + " (w: all columns)" if note else "", style="dim"))
        self.query_one("#compare-hidden", Static).display = bool(note)
        if self.order:
            arms.move_cursor(row=self.order.index(keep) if keep in self.order else 0)
            self._show_arm(self.order[arms.cursor_row])

    def _show_arm(self, index: int) -> None:
        assert self.table is not None
        self._arm = index
        row = self.table["rows"][index]
        self.query_one("#compare-verdict", Static).update(verdict_line(row, str(self.table["reference"])))
        runs = self.query_one("#compare-runs", DataTable)
        cells = {}
        for rid in row.get("run_ids", []):
            r = self.runs.get(rid, {})
            cells[rid] = ("✓" if rid in self.marked else " ", rid, str(r.get("seed", "—")),
                          format_number(r.get("test_error"), 2), format_number(r.get("params_m"), 3),
                          duration_text(r.get("seconds")))
        shown = fit_columns(RUN_COLUMNS, [RUN_COLUMNS, *cells.values()], (runs.size.width or self.size.width) - SCROLLBAR,
                            RUN_PRIORITY)
        runs.clear(columns=True)
        for c in shown:
            runs.add_column(c, key=c)
        for rid, values in cells.items():
            runs.add_row(*(v for c, v in zip(RUN_COLUMNS, values) if c in shown), key=rid)

    def _draw_plot(self) -> None:
        if self.table:
            width = max(24, self.size.width - 3)
            self.query_one("#compare-plot", Static).update(error_strips(self.table["rows"], self.runs, width))

    def on_resize(self, event: events.Resize) -> None:
        self._draw_plot()
        if self.table is not None:
            self._fill_arms()

    def action_all_columns(self) -> None:
        self.all_columns = not self.all_columns
        if self.table is not None:
            self._fill_arms()

    # -- sorting --------------------------------------------------------------------------------------------------
    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if self.table is None:
            return
        if reverse is None:
            reverse = bool(self.sort and self.sort[0] == column and not self.sort[1])
        self.sort = (column, reverse)
        self._fill_arms()

    @on(DataTable.HeaderSelected, "#compare-arms")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by(str(event.column_key.value))

    def action_sort(self) -> None:
        column = ARM_COLUMNS[(ARM_COLUMNS.index(self.sort[0]) + 1) % len(ARM_COLUMNS)] if self.sort else "test error %"
        self.sort_by(column, reverse=False)

    def action_reverse(self) -> None:
        if self.sort:
            self.sort_by(self.sort[0], reverse=not self.sort[1])

    # -- runs -----------------------------------------------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#compare-arms")
    def _arm_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None and self.table:
            self._show_arm(int(event.row_key.value))

    @on(DataTable.RowSelected, "#compare-arms")
    def _arm_selected(self, event: DataTable.RowSelected) -> None:
        if self.table and event.row_key.value is not None:
            ids = self.table["rows"][int(event.row_key.value)].get("run_ids") or []
            if ids:
                self.dismiss(ids[0])

    @on(DataTable.RowSelected, "#compare-runs")
    def _run_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.dismiss(str(event.row_key.value))

    def action_mark(self) -> None:
        """Marks (or unmarks) the run under the runs table's cursor for the side-by-side view."""
        runs = self.query_one("#compare-runs", DataTable)
        if self.focused is not runs or not runs.row_count:
            self.app.notify("move to the runs table (tab) to mark a run", severity="warning", timeout=3)
            return
        rid = str(runs.coordinate_to_cell_key((runs.cursor_row, 0)).row_key.value)
        if rid in self.marked:
            self.marked.remove(rid)
        else:
            self.marked = (self.marked + [rid])[-2:]
        if self._arm is not None:
            cursor = runs.cursor_row
            self._show_arm(self._arm)
            runs.move_cursor(row=cursor)
        self.app.notify("marked: " + (", ".join(self.marked) or "none") +
                        (" · v shows them side by side" if len(self.marked) == 2 else ""), timeout=3)

    def action_pair(self) -> None:
        if len(self.marked) != 2:
            self.app.notify("mark two runs first (space in the runs table, on any arm)", severity="warning")
            return
        from tanas_tui.components.run_pair import RunPairScreen

        self.app.push_screen(RunPairScreen(self.store_path, *self.marked))

    def action_close(self) -> None:
        self.dismiss(None)
