"""The compare view (`c`): the comparison's arms side by side, read from the store.

One row per arm: test error mean ± std with its 95 % t-interval (and the bootstrap interval over test samples ×
seeds), params, cost as a duration and device-hours, the budget it got, and its paired difference from FUSE in the
task-aware space with the p-value; arms the paired test cannot separate from it are marked "not distinguishable".
Below, the highlighted arm's runs (one per seed); enter opens a run in the FUSE tab.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from engine.results.stats import NOT_DISTINGUISHABLE
from engine.results.table import budget_text, duration_text, format_interval, format_number, format_p

ARM_COLUMNS = ("arm", "n", "test error %", "95 % CI", "params M", "cost", "device-h", "budget", "Δ vs ref (pp)",
               "p", "verdict")
RUN_COLUMNS = ("run", "seed", "test error %", "params M", "cost")


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


def arm_cells(row: dict[str, Any]) -> tuple:
    verdict = row.get("verdict") or "—"
    diff = "—" if row.get("diff_vs_reference") is None else (
        f"{format_number(row['diff_vs_reference'], 2, signed=True)} "
        f"{format_interval(row.get('diff_lo'), row.get('diff_hi'), signed=True)}")
    ci = format_interval(row.get("test_error_t_lo"), row.get("test_error_t_hi"))
    if row.get("test_error_boot_lo") is not None:
        ci += f" boot {format_interval(row['test_error_boot_lo'], row['test_error_boot_hi'])}"
    return (
        str(row["arm"]), str(row.get("repeats", "")),
        f"{format_number(row.get('test_error_mean'), 2)} ± {format_number(row.get('test_error_std'), 2)}", ci,
        f"{format_number(row.get('params_m_mean'), 3)} ± {format_number(row.get('params_m_std'), 3)}",
        duration_text(row.get("device_seconds")), format_number(row.get("cost_device_hours_mean"), 4),
        budget_text(row), diff, format_p(row.get("p_value")),
        Text(verdict, style="bold yellow" if verdict == NOT_DISTINGUISHABLE else
             ("bold green" if verdict == "distinguishable" else "dim")),
    )


class CompareScreen(ModalScreen[str | None]):
    """Dismissed with the run id to open, or None."""

    BINDINGS = [Binding("escape,q", "close", "Close"), Binding("r", "reload", "Reload")]
    DEFAULT_CSS = """
    CompareScreen { align: center middle; }
    CompareScreen .dialog.compare { width: 98%; height: 90%; }
    CompareScreen #compare-arms { height: auto; max-height: 60%; }
    CompareScreen #compare-runs { height: auto; max-height: 30%; }
    CompareScreen #compare-title { margin-bottom: 1; }
    """

    def __init__(self, store_path: Path | str, target: str | None = None) -> None:
        super().__init__()
        self.store_path, self.target = Path(store_path), target
        self.table: dict[str, Any] | None = None
        self.runs: dict[str, dict] = {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog compare"):
            yield Static("reading the store…", id="compare-title")
            yield DataTable(id="compare-arms", cursor_type="row", zebra_stripes=True)
            yield Static("", id="compare-notes")
            yield DataTable(id="compare-runs", cursor_type="row")
            yield Static(Text("enter opens a run in the FUSE tab · r reloads · escape closes", style="dim"))

    def on_mount(self) -> None:
        for table, columns in (("#compare-arms", ARM_COLUMNS), ("#compare-runs", RUN_COLUMNS)):
            for column in columns:
                self.query_one(table, DataTable).add_column(column, key=column)
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
        arms = self.query_one("#compare-arms", DataTable)
        arms.clear()
        for i, row in enumerate(table["rows"]):
            arms.add_row(*arm_cells(row), key=str(i))
        self.query_one("#compare-notes", Static).update(Text("\n".join(table.get("notes") or []), style="dim"))
        self._show_runs(0)
        arms.focus()

    def _show_runs(self, index: int) -> None:
        runs = self.query_one("#compare-runs", DataTable)
        runs.clear()
        if not self.table or not 0 <= index < len(self.table["rows"]):
            return
        for rid in self.table["rows"][index].get("run_ids", []):
            r = self.runs.get(rid, {})
            runs.add_row(rid, str(r.get("seed", "—")), format_number(r.get("test_error"), 2),
                         format_number(r.get("params_m"), 3), duration_text(r.get("seconds")), key=rid)

    @on(DataTable.RowHighlighted, "#compare-arms")
    def _arm_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_runs(int(event.row_key.value)) if event.row_key.value is not None else None

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

    def action_close(self) -> None:
        self.dismiss(None)
