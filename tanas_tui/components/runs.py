"""Runs panel: past and running searches; opening one replays it in the FUSE panel."""
from __future__ import annotations

import time
from typing import Any, Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from engine.service import protocol as P
from tanas_tui.components.dialogs import ConfirmScreen
from tanas_tui.components.messages import OpenRun, SubmitJob
from tanas_tui.components.table_sync import sync_rows
from tanas_tui.model import SEARCHES, TASKS, SearchRun, UiModel
from tanas_tui.units import test_error

COLUMNS = ("run", "target", "space", "status", "steps", "updated", "result")
STATUS_STYLE = {"running": "bold green", "paused": "yellow", "done": "cyan", "failed": "bold red", "stopped": "yellow"}


def age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def result_text(s: SearchRun) -> str:
    r = s.result
    if not r:
        return "—"
    err = r.get("test_error")
    return f"{r.get('hash', '?')}  err {test_error(err)}" if isinstance(err, (int, float)) else str(r.get("hash", "?"))


class RunsPanel(Vertical):
    BINDINGS = [Binding("enter", "open", "Open run", show=True),
                Binding("r", "resume", "Resume"),
                Binding("n", "rerun", "Re-run"),
                Binding("d", "delete", "Delete")]

    def __init__(self, state: UiModel, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state, self.clock = state, clock
        self._rendered: dict[str, tuple] = {}

    def compose(self) -> ComposeResult:
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static(Text("enter: open in the FUSE tab · r: resume a stopped run · n: re-run (next seed) · d: delete",
                          style="dim"), id="runs-hint")

    def on_mount(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        for col in COLUMNS:
            table.add_column(col, key=col)
        self.set_interval(5.0, self._tick_ages)

    def _tick_ages(self) -> None:
        self.refresh_state({SEARCHES})

    def refresh_state(self, topics: set[str]) -> None:
        if SEARCHES not in topics and TASKS not in topics:
            return
        now = self.clock()
        rows = {}
        for s in self.state.searches.values():
            space = (s.space or {}).get("kind", "—")
            updated = s.updated
            rows[s.id] = (
                s.id, self.state.task_name(s.target) if s.target in self.state.tasks else s.target_name or "—", space,
                Text(self.state.search_status(s), style=STATUS_STYLE.get(s.status, "")),
                str(s.steps) if s.loaded or s.steps else str(s.attrs.get("committed_steps", "—")),
                age(now - updated) if updated is not None else "—",
                result_text(s),
            )
        sync_rows(self.query_one("#runs-table", DataTable), COLUMNS, rows, self._rendered)

    @on(DataTable.RowSelected, "#runs-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.post_message(OpenRun(str(event.row_key.value)))

    def _cursor_run(self) -> SearchRun | None:
        table = self.query_one("#runs-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return self.state.searches.get(str(key))

    def _search_fields(self, s: SearchRun) -> dict[str, Any]:
        return {"target": s.target_name or self.state.task_name(s.target),
                "space": (s.space or {}).get("kind") or s.attrs.get("space_kind")}

    def _fuse_run(self) -> SearchRun | None:
        """The highlighted run when it is a FUSE search (random search and fixed networks are the comparison's:
        `tanas-tui run` makes and reuses them)."""
        s = self._cursor_run()
        if s is not None and not s.is_fuse:
            self.app.notify(f"{s.id} is a {s.method} run of the comparison: `tanas-tui run` makes and reuses those",
                            severity="warning")
            return None
        return s

    def action_resume(self) -> None:
        """A stopped or failed search continues from its last checkpoint (same run id)."""
        s = self._fuse_run()
        if s is None:
            return
        if s.status not in ("stopped", "failed"):
            self.app.notify(f"{s.id} is {s.status}: only a stopped or failed search resumes", severity="warning")
            return
        self.post_message(SubmitJob(P.StartSearch(run_id=s.id, seed=s.attrs.get("seed"), **self._search_fields(s))))

    def action_delete(self) -> None:
        s = self._cursor_run()
        if s is None:
            return
        if s.status in ("running", "paused") and self.state.job_for_run(s.id):
            self.app.notify(f"{s.id} is {s.status}: stop it first", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.post_message(SubmitJob(P.RemoveSearch(run=s.id)))

        self.app.push_screen(ConfirmScreen(f"Delete search {s.id} ({s.status})?\nIts α history, candidates, "
                                           f"checkpoint and result are removed from the store.",
                                           yes="Delete", no="Keep"), answer)

    def action_rerun(self) -> None:
        """The same target and space again with the next unused seed: a new run beside the old one."""
        s = self._fuse_run()
        if s is None:
            return
        fields = self._search_fields(s)
        seeds = [int(o.attrs["seed"]) for o in self.state.searches.values()
                 if isinstance(o.attrs.get("seed"), int) and self._search_fields(o) == fields]
        seed = max(seeds, default=-1) + 1
        self.post_message(SubmitJob(P.StartSearch(seed=seed, **fields)))
        self.app.notify(f"re-running {fields['target']} ({fields['space']} space) with seed {seed}", timeout=4)

    def action_open(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
            self.post_message(OpenRun(str(key)))
