"""Dictionary panel: the task table (sortable, filterable), the highlighted task's details and a sample preview.

The detail pane always shows the task of the highlighted row: after a sort or a filter the cursor follows the task
it was on, or, when a filter hides that task, the detail follows the row the cursor lands on."""
from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static
from textual.widgets.data_table import RowDoesNotExist
from textual.worker import get_current_worker

from tanas_tui.components.messages import AddTaskRequested, RemoveTaskRequested
from tanas_tui.components.column_fit import SCROLLBAR, fit_columns
from tanas_tui.components.table_sync import capped, sync_rows
from tanas_tui.model import DISTANCES, TASKS, TaskInfo, UiModel, task_definition
from tanas_tui.preview import task_preview
from tanas_tui.safe_text import printable
from tanas_tui.units import distance, pct

# status early: it is the column that moves while probes train
COLUMNS = ("name", "status", "val acc", "ε", "source", "rule", "samples", "genotype")
# a narrow table leaves whole columns out, the last of these first (never a number cut at its edge)
PRIORITY = ("name", "val acc", "status", "ε", "samples", "source", "rule", "genotype")
NAME_CAP = 64   # task names show whole up to this many cells (the detail pane shows any name whole)


def _sort_key(value: Any) -> tuple:
    """Missing values sort last; numbers by value; text case-insensitively."""
    if isinstance(value, Text):
        value = value.plain
    if value in (None, "", "—"):
        return (2, "")
    try:
        return (0, float(value))
    except (TypeError, ValueError):
        return (1, str(value).lower())


def task_cells(info: TaskInfo) -> tuple:
    acc = info.val_acc
    rep = info.representative
    eps = Text("—", style="dim") if rep is None else Text("✓", style="green") if rep else Text("✗", style="bold red")
    return (
        info.name,
        info.status or "—",
        pct(acc),
        eps,
        info.source or "—",
        info.rule,
        str(info.samples) if info.samples is not None else "—",
        info.genotype_hash or "—",
    )


def shared_body(state: UiModel, config: Any = None) -> int | None:
    """The shared body's epochs (`shared_epochs`) when the probes are heads on one shared body, else None: from the
    config, else from the Fisher matrix's recorded parameters."""
    if config is not None:
        d = config.dictionary
        return d.shared_epochs if d.fisher_body == "shared" else None
    params = getattr(state.matrices.get("fisher"), "params", None) or {}
    if params.get("fisher_body") == "shared" and isinstance(params.get("shared_epochs"), int):
        return params["shared_epochs"]
    return None


def task_details(info: TaskInfo, state: UiModel, config: Any = None) -> Text:
    t = Text()
    t.append(printable(info.name), style="bold")
    t.append(f"  ({info.id})\n", style="dim")
    d = task_definition(info.attrs)
    rows = [("source", info.source or "—"), ("rule", info.rule), ("role", info.role)]
    for key in ("balance", "limit", "seed", "val_fraction", "test_fraction"):
        if d.get(key) is not None:
            rows.append((key, str(d[key])))
    a = info.attrs
    if any(isinstance(a.get(k), int) for k in ("n_train", "n_val", "n_test")):
        rows.append(("train/val/test", f"{a.get('n_train', '?')} / {a.get('n_val', '?')} / {a.get('n_test', '?')}"))
    if a.get("class_names"):
        rows.append(("classes", ", ".join(map(str, a["class_names"]))))
    probe = a.get("probe_arch") or a.get("probe")
    shared = shared_body(state, config)
    if probe and shared is not None:
        rows.append(("probe", f"{probe} shared body ({shared} shared_epochs on every source's classes) + a linear "
                              f"head for this task"))
    elif probe:
        epochs = f", {a['epochs']} epochs" if isinstance(a.get("epochs"), int) else ""
        rows.append(("probe", f"{probe}{epochs}"))
    if info.val_acc is not None:
        rows.append(("probe val acc", pct(info.val_acc)))
    if info.representative is not None:
        rows.append(("ε-represent.", "yes" if info.representative else "NO: below 1 − ε"))
    if info.genotype_hash:
        g = info.genotype or {}
        rows.append(("genotype", f"{info.genotype_hash}  C={g.get('channels', '?')} layers={g.get('layers', '?')}"))
        origin = a.get("genotype_source")
        if isinstance(origin, dict):
            how = {"inherited": f"inherited from {origin.get('from_name', origin.get('from'))}",
                   "given": "given in the config (not searched)"}.get(origin.get("kind"),
                                                                      f"searched ({origin.get('run_id', '?')})")
            rows.append(("genotype from", how))
    premise = a.get("premise")
    if isinstance(premise, dict) and isinstance(premise.get("stats"), dict):
        st = premise["stats"]
        diff = (st.get("near_minus_far") or {}).get("mean")
        rows.append(("premise", f"{'supported' if st.get('supported') else 'not supported'}: τ "
                                f"{st.get('kendall_tau', float('nan')):+.2f} (p {st.get('p', float('nan')):.2g})"
                                + (f", near − far {diff:+.2f} points" if diff is not None else "")))
    if a.get("unseen_source"):
        rows.append(("source", f"{a.get('source')} is not among the shared body's training sources "
                               f"({', '.join(a.get('body_sources') or [])}): its distances may mislead"))
    rows.append(("status", info.status or "—"))
    for method, matrix in state.matrices.items():
        near = matrix.nearest(info.id, 3)
        if near:
            rows.append((f"near ({method})", ", ".join(f"{state.task_name(s)} {distance(v, method)}"
                                                        for s, v in near)))
    for key, value in rows:
        t.append(f"{key:>14} ", style="cyan")
        t.append(f"{printable(value)}\n")
    return t


class DictionaryPanel(Vertical):
    BINDINGS = [
        Binding("a", "add_task", "Add"),
        Binding("d", "remove_task", "Remove"),
        Binding("o", "sort", "Sort"),
        Binding("slash", "focus_filter", "Filter", key_display="/"),
    ]

    def __init__(self, state: UiModel, config: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state, self.config = state, config
        self._rendered: dict[str, tuple] = {}
        self._sort: tuple[str, bool] | None = None
        self._selected: str | None = None
        self._preview_for: str | None = None
        self.shown: tuple[str, ...] = COLUMNS    # the columns that fit the table's width

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="dict-left"):
                yield Input(placeholder="filter tasks (name, source, rule, status)…", id="task-filter")
                yield DataTable(id="tasks", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="dict-right"):
                yield Static("No task selected.", id="task-detail")
                yield Static("", id="task-preview")

    def on_mount(self) -> None:
        table = self.query_one("#tasks", DataTable)
        for col in self.shown:
            table.add_column(col, key=col)

    def on_resize(self) -> None:
        self.refresh_state({TASKS})

    def _fit(self, rows: dict[str, tuple]) -> tuple[str, ...]:
        """The columns that fit: whole ones, by PRIORITY; the table is rebuilt when the set changes."""
        table = self.query_one("#tasks", DataTable)
        width = table.size.width
        if width <= 0:
            return self.shown
        shown = fit_columns(COLUMNS, [tuple(capped(c, NAME_CAP) for c in r) for r in rows.values()],
                            width - SCROLLBAR, PRIORITY)
        if shown != self.shown:
            self.shown = shown
            table.clear(columns=True)
            self._rendered.clear()
            for col in shown:
                table.add_column(col, key=col)
        return shown

    # -- refresh --------------------------------------------------------------------------------------------------
    def refresh_state(self, topics: set[str]) -> None:
        if TASKS not in topics and DISTANCES not in topics:
            return
        table = self.query_one("#tasks", DataTable)
        needle = self.query_one("#task-filter", Input).value.strip().lower()
        rows = {}
        for info in self.state.tasks.values():
            cells = task_cells(info)
            if needle and needle not in " ".join(c.plain if isinstance(c, Text) else str(c) for c in cells).lower():
                continue
            rows[info.id] = cells
        shown = self._fit(rows)
        index = [COLUMNS.index(c) for c in shown]
        rows = {k: tuple(cells[i] for i in index) for k, cells in rows.items()}
        if sync_rows(table, shown, rows, self._rendered, cap=NAME_CAP):
            if self._sort and self._sort[0] in shown:
                table.sort(self._sort[0], key=_sort_key, reverse=self._sort[1])
            elif [k.value for k in table.rows] != list(rows):
                # rows a filter brought back were appended at the end: restore the dictionary's order
                table.clear()
                self._rendered.clear()
                sync_rows(table, shown, rows, self._rendered, cap=NAME_CAP)
                if self._selected in rows:
                    table.move_cursor(row=table.get_row_index(self._selected))
        if self._selected is not None and self._selected not in rows:
            # the detail pane follows the filter: the selected task is hidden, show the first one that is not
            self._selected = None
            if not rows:
                self.query_one("#task-detail", Static).update(Text(f"No task matches {needle!r}.", style="dim"))
                self.query_one("#task-preview", Static).update("")
                return
        if self._selected is None and table.row_count:
            self._show(self._row_key(table.cursor_row))
        elif self._selected is not None:
            self._show(self._selected, preview=False)
            self._cursor_to_selected()

    def _cursor_to_selected(self) -> None:
        """After rows moved (a sort, a filter, new rows): the cursor goes to the task the detail pane shows."""
        table = self.query_one("#tasks", DataTable)
        try:
            row = table.get_row_index(self._selected) if self._selected is not None else None
        except RowDoesNotExist:
            row = None
        if row is None:
            if table.row_count:
                self._show(self._row_key(table.cursor_row))
        elif row != table.cursor_row:
            table.move_cursor(row=row)

    def _row_key(self, index: int) -> str | None:
        table = self.query_one("#tasks", DataTable)
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key((min(index, table.row_count - 1), 0)).row_key.value
        except Exception:  # noqa: BLE001 - cursor moved past a removed row
            return None

    def selected_task(self) -> TaskInfo | None:
        return self.state.tasks.get(self._selected) if self._selected else None

    def _show(self, task_id: str | None, preview: bool = True) -> None:
        info = self.state.tasks.get(task_id) if task_id else None
        detail = self.query_one("#task-detail", Static)
        if info is None:
            self._selected = None
            detail.update("No task selected." if self.state.tasks else "The dictionary is empty: press a to add a task.")
            self.query_one("#task-preview", Static).update("")
            return
        self._selected = info.id
        detail.update(task_details(info, self.state, self.config))
        if preview and self._preview_for != info.id:
            self._preview_for = info.id
            self.query_one("#task-preview", Static).update(Text("loading samples…", style="dim"))
            self.load_preview(info.id, dict(info.attrs))

    # -- events ---------------------------------------------------------------------------------------------------
    @on(Input.Changed, "#task-filter")
    def _filter(self, event: Input.Changed) -> None:
        self.refresh_state({TASKS})

    @on(Input.Submitted, "#task-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.query_one("#tasks", DataTable).focus()

    def on_key(self, event) -> None:
        focused = self.app.focused
        if event.key == "escape" and isinstance(focused, Input) and focused.id == "task-filter":
            event.stop()
            self.query_one("#tasks", DataTable).focus()

    @on(DataTable.RowHighlighted, "#tasks")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None:
            self._show(event.row_key.value)

    @on(DataTable.HeaderSelected, "#tasks")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        self._sort_by(str(event.column_key.value))

    def _sort_by(self, column: str) -> None:
        reverse = bool(self._sort and self._sort[0] == column and not self._sort[1])
        self._sort = (column, reverse)
        self.query_one("#tasks", DataTable).sort(column, key=_sort_key, reverse=reverse)
        self._cursor_to_selected()
        self.app.notify(f"sorted by {column}{' (descending)' if reverse else ''}", timeout=2)

    def action_sort(self) -> None:
        table = self.query_one("#tasks", DataTable)
        self._sort_by(self.shown[max(0, min(table.cursor_column, len(self.shown) - 1))])

    def action_focus_filter(self) -> None:
        self.query_one("#task-filter", Input).focus()

    def action_add_task(self) -> None:
        self.post_message(AddTaskRequested())

    def action_remove_task(self) -> None:
        info = self.selected_task()
        if info is None:
            self.app.notify("select a task to remove first", severity="warning")
            return
        self.post_message(RemoveTaskRequested(info.id, info.name))

    # -- preview --------------------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="preview")
    def load_preview(self, task_id: str, attrs: dict[str, Any]) -> None:
        worker = get_current_worker()
        painted = getattr(self.app, "painted", None)
        if painted is not None:
            painted.wait(5.0)   # loading samples imports torch: never before the first screen is up
        try:
            text = task_preview(attrs, self.config)
        except Exception as exc:  # noqa: BLE001 - any data problem is shown inline, never raised
            text = Text(f"samples unavailable: {exc}", style="yellow")
        if not worker.is_cancelled:
            self.app.call_from_thread(self._set_preview, task_id, text)

    def _set_preview(self, task_id: str, text: Any) -> None:
        if self._selected == task_id:
            for widget in self.query("#task-preview"):   # gone when the app is closing
                widget.update(text)
